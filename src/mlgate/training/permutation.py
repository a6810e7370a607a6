"""Permutation importance, scored in a few large batches.

The statistic is the usual one (Breiman 2001; scikit-learn's `permutation_importance`): the drop
in the model's score on the holdout when one input column is shuffled, averaged over `repeats`
shuffles. Computed one shuffle at a time, a report with 60 columns and 5 repeats calls the model
300 times on a few hundred rows, and most of that time is each call's fixed cost (the pipeline's
column transforms, calibration, the scorer), not the rows. Here every shuffled copy is stacked
into one frame (up to `BATCH_ROWS` rows at a time) and the model is called once per batch; the
score of each copy is then read off its slice. Same statistic, a fraction of the calls.
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
    baseline = _score(task, truth, pipeline.predict(X))
    rng = np.random.default_rng(seed)
    # Every (column, repeat) pair is one copy of the holdout with that column shuffled.
    copies = [(j, rng.permutation(n)) for j in range(X.shape[1]) for _ in range(repeats)]
    drops = np.empty(len(copies))
    per_batch = max(1, BATCH_ROWS // max(n, 1))
    for start in range(0, len(copies), per_batch):
        batch = copies[start : start + per_batch]
        predicted = np.asarray(pipeline.predict(_stacked(X, batch)))
        for k in range(len(batch)):
            drops[start + k] = baseline - _score(task, truth, predicted[k * n : (k + 1) * n])
    return drops.reshape(X.shape[1], repeats)


def _stacked(X: pd.DataFrame, batch: list[tuple[int, np.ndarray]]) -> pd.DataFrame:
    """len(batch) copies of X, one under the other, copy k with column batch[k][0] reordered
    by the permutation batch[k][1]. Each column keeps its dtype (categories included)."""
    n = len(X)
    plain = np.tile(np.arange(n), len(batch))
    columns: dict[Any, pd.Series] = {}
    for j, name in enumerate(X.columns):
        rows = plain
        for k, (column, order) in enumerate(batch):
            if column == j:
                if rows is plain:
                    rows = plain.copy()
                rows[k * n : (k + 1) * n] = order
        columns[name] = X.iloc[:, j].take(rows).reset_index(drop=True)
    return pd.DataFrame(columns)


def _score(task: Task, truth: np.ndarray, predicted: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(predicted == truth))
    residual = float(np.sum((truth - predicted) ** 2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0.0:  # a constant target: R² is 1 for a perfect fit, else undefined (sklearn: 0)
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total
