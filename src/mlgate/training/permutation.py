"""Permutation importance, scored in a few large batches.

The statistic is the usual one (Breiman 2001; scikit-learn's `permutation_importance`): the drop
in the model's score on the holdout when one input column is shuffled, averaged over `repeats`
shuffles. Computed one shuffle at a time, a report with 60 columns and 5 repeats calls the model
300 times on a few hundred rows, and most of that time is each call's fixed cost (the pipeline's
column transforms, calibration, the scorer), not the rows. Here every shuffled copy is stacked
into one frame (up to `BATCH_ROWS` rows at a time) and the model is called once per batch; the
score of each copy is then read off its slice. Same statistic, a fraction of the calls.

A row whose shuffled value is the value it had (a pixel that is blank in most images, a yes/no
column, a category shared by many rows) is the row the model already scored: only the rows a
shuffle changed are stacked and scored, and the others keep their holdout predictions. On
sklearn's digits (64 pixel columns) that is 60% of the rows; on continuous columns, all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlgate.registry.model import Task

BATCH_ROWS = 100_000


def permutation_drops(
    task: Task, pipeline: Any, X: pd.DataFrame, y: pd.Series, *, repeats: int, seed: int
) -> np.ndarray:
    """The score drop of each column (rows, in X's column order) for each shuffle (columns).
    The score is accuracy for classifiers, R² for regression."""
    n = len(X)
    truth = y.to_numpy()
    held = np.asarray(pipeline.predict(X))
    baseline = _score(task, truth, held)
    rng = np.random.default_rng(seed)
    # Every (column, repeat) pair is one copy of the holdout with that column shuffled; of each,
    # only the rows whose value the shuffle changed are scored.
    copies = [(j, rng.permutation(n)) for j in range(X.shape[1]) for _ in range(repeats)]
    changed = [np.flatnonzero(_moved(X.iloc[:, j], order)) for j, order in copies]
    drops = np.empty(len(copies))
    start = 0
    while start < len(copies):
        end, rows = start + 1, len(changed[start])
        while end < len(copies) and rows + len(changed[end]) <= BATCH_ROWS:
            rows += len(changed[end])
            end += 1
        batch = [(*copies[k], changed[k]) for k in range(start, end)]
        predicted = np.asarray(pipeline.predict(_stacked(X, batch))) if rows else held[:0]
        offset = 0
        for k, (_, _, moved) in enumerate(batch):
            shuffled = held.astype(np.result_type(held, predicted))  # labels keep their length
            shuffled[moved] = predicted[offset : offset + len(moved)]
            offset += len(moved)
            drops[start + k] = baseline - _score(task, truth, shuffled)
        start = end
    return drops.reshape(X.shape[1], repeats)


def _moved(column: pd.Series, order: np.ndarray) -> np.ndarray:
    """Which rows get a different value when `column` is reordered by `order`: numbers compared
    bit for bit (-0.0 is not 0.0, a missing value is its own), other values by equality, a
    missing value equal only to a missing value."""
    before = column.to_numpy()
    after = before[order]
    if before.dtype.kind in "fc" and before.dtype.itemsize in (4, 8, 16):
        width = {4: "u4", 8: "u8", 16: "u8"}[before.dtype.itemsize]
        raw_before = np.ascontiguousarray(before).view(width).reshape(len(before), -1)
        raw_after = np.ascontiguousarray(after).view(width).reshape(len(after), -1)
        return np.asarray((raw_before != raw_after).any(axis=1))
    if before.dtype.kind in "iub":
        return np.asarray(before != after)
    missing = pd.isna(before)
    same = (missing & missing[order]) | (~missing & ~missing[order] & _equal(before, after))
    return np.asarray(~same)


def _equal(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    try:
        equal = np.asarray(before == after, dtype=bool)
    except (TypeError, ValueError):  # values that do not compare: count every row as moved
        return np.zeros(len(before), dtype=bool)
    return equal if equal.shape == before.shape else np.zeros(len(before), dtype=bool)


def _stacked(X: pd.DataFrame, batch: list[tuple[int, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """One copy per (column, order, rows) of `batch`, one under the other: the rows `rows` of
    X, with column `column` taking the values `order` puts there. Each column keeps its dtype
    (categories included)."""
    plain = np.concatenate([rows for _, _, rows in batch])
    columns: dict[Any, pd.Series] = {}
    for j, name in enumerate(X.columns):
        taken, offset = plain, 0
        for column, order, rows in batch:
            if column == j:
                if taken is plain:
                    taken = plain.copy()
                taken[offset : offset + len(rows)] = order[rows]
            offset += len(rows)
        columns[name] = X.iloc[:, j].take(taken).reset_index(drop=True)
    return pd.DataFrame(columns)


def _score(task: Task, truth: np.ndarray, predicted: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(predicted == truth))
    residual = float(np.sum((truth - predicted) ** 2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0.0:  # a constant target: R² is 1 for a perfect fit, else undefined (sklearn: 0)
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total
