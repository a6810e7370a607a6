"""Shapley values by sampling, for models with no exact method (kernels, neighbours, naive Bayes,
networks): permutation sampling (Štrumbelj & Kononenko 2014, "Explaining prediction models and
individual predictions with feature contributions"), with antithetic permutations.

One walk starts from a background row (a stored training row) and switches the explained row's
columns in one at a time, in a random order; each column's contribution in that walk is the change
of the model's output when it was switched. The walks' contributions add up, column by column, to
the output at the row minus the output at the walk's background row, so their means add up to
the row's output minus the mean output over the background rows used: that mean is the base,
and base plus contributions equals the output exactly. Only each contribution is estimated; its
standard error (over pairs of antithetic walks) is given with it.

A switch of a column whose value in the explained row is its value in the background row (a blank
pixel in both, the same plan) leaves the row as it was: its output is the previous step's, and the
model is asked only for the rows a switch changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlgate.schema import Table

WALKS = 32  # per explained row: 16 background rows, each with a permutation and its reverse
SEED = 0


@dataclass(frozen=True)
class Sampled:
    base: np.ndarray  # (n,)
    values: np.ndarray  # (n, columns)
    errors: np.ndarray  # (n, columns): standard errors of the values
    walks: int
    background_rows: int


def evaluations_per_row(n_columns: int) -> int:
    """Model outputs computed to explain one row: each walk's start and each switch."""
    return WALKS * (n_columns + 1)


def shapley(
    rows: Table,
    background: Table,
    groups: list[list[str]],
    output: Callable[[Table, np.ndarray], np.ndarray],
) -> Sampled:
    """Contributions of each group of Table keys (a caller's column; a datetime is several
    keys) to `output` (one number per row) for every row of `rows`. `output` is called once, on
    the walks' rows together (those a switch changed), with the explained row each is for."""
    n, k = rows.n_rows, len(groups)
    pairs = WALKS // 2
    rng = np.random.default_rng(SEED)
    starts = np.arange(pairs) % background.n_rows  # the same background rows for every row
    orders = np.array([rng.permutation(k) for _ in range(pairs)])
    orders = np.concatenate([orders, orders[:, ::-1]])  # antithetic: each order reversed
    starts = np.concatenate([starts, starts])
    # switched[w, s, j]: in walk w after s switches, column j comes from the explained row.
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(k)[None, :].repeat(WALKS, 0), axis=1)
    steps = np.arange(k + 1)
    switched = rank[:, None, :] < steps[None, :, None]  # (walks, k+1, k)
    # Every evaluated row: (explained row i, walk w, step s), in that order.
    row_of = np.repeat(np.arange(n), WALKS * (k + 1))
    walk_of = np.tile(np.repeat(np.arange(WALKS), k + 1), n)
    step_of = np.tile(steps, n * WALKS)
    start_of = starts[walk_of]
    # same[i, w, j]: column j of row i holds walk w's background value, so switching it in
    # changes nothing; a step whose switch changes nothing repeats the step before.
    same = np.ones((n, WALKS, k), dtype=bool)
    for j, group in enumerate(groups):
        for key in group:
            here, there = rows.data[key], background.data[key]
            same[:, :, j] &= _same(here[:, None], there[starts][None, :])
    repeats = np.zeros((n, WALKS, k + 1), dtype=bool)  # each walk's start is scored
    if k:
        repeats[:, :, 1:] = np.take_along_axis(same, orders[None, :, :].repeat(n, 0), axis=2)
    fresh = np.flatnonzero(~repeats.ravel())
    row_of, walk_of, step_of = row_of[fresh], walk_of[fresh], step_of[fresh]
    start_of = starts[walk_of]
    data = {}
    for j, group in enumerate(groups):
        take = switched[walk_of, step_of, j]
        for key in group:
            here, there = rows.data[key], background.data[key]
            data[key] = np.where(take, here[row_of], there[start_of])
    outputs = np.asarray(output(Table(data, len(fresh)), row_of), dtype="float64")
    # Every step's output: its own where scored, else the last scored step's of its walk.
    last = np.zeros(n * WALKS * (k + 1), dtype=np.int64)
    last[fresh] = np.arange(len(fresh))
    scored_at = np.zeros(n * WALKS * (k + 1), dtype=np.int64)
    scored_at[fresh] = fresh
    scored_at = np.maximum.accumulate(scored_at)  # each walk's start is scored: no spill-over
    scored = outputs[last[scored_at]].reshape(n, WALKS, k + 1)
    gains = np.diff(scored, axis=2)  # (n, walks, k): the change at each step
    per_column = np.empty((n, WALKS, k))
    np.put_along_axis(per_column, orders[None, :, :].repeat(n, 0), gains, axis=2)
    values = per_column.mean(axis=1)
    paired = (per_column[:, :pairs] + per_column[:, pairs:]) / 2
    errors = paired.std(axis=1, ddof=1) / np.sqrt(pairs)
    base = scored[:, :, 0].mean(axis=1)
    return Sampled(base, values, errors, WALKS, int(min(pairs, background.n_rows)))


def _same(here: np.ndarray, there: np.ndarray) -> np.ndarray:
    """Elementwise (broadcast): the two values are one value. Numbers bit for bit (-0.0 is not
    0.0; a missing number is missing in both), others by equality, missing only with missing."""
    here, there = np.broadcast_arrays(here, there)
    if here.dtype == there.dtype and here.dtype.kind in "fc" and here.dtype.itemsize in (4, 8):
        width = "u4" if here.dtype.itemsize == 4 else "u8"
        return np.asarray(
            np.ascontiguousarray(here).view(width) == np.ascontiguousarray(there).view(width)
        )
    if here.dtype == there.dtype and here.dtype.kind in "iub":
        return np.asarray(here == there)
    import pandas as pd

    missing_here, missing_there = pd.isna(here), pd.isna(there)
    try:
        equal = np.asarray(here == there, dtype=bool)
    except (TypeError, ValueError):  # values that do not compare: never the same
        return np.zeros(here.shape, dtype=bool)
    if equal.shape != here.shape:
        return np.zeros(here.shape, dtype=bool)
    return np.asarray((missing_here & missing_there) | (~missing_here & ~missing_there & equal))
