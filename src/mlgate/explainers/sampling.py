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
    output: Callable[[Table], np.ndarray],
) -> Sampled:
    """Contributions of each group of Table keys (a caller's column; a datetime is several
    keys) to `output` (one number per row) for every row of `rows`. `output` is called once, on
    all the walks' rows together."""
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
    data = {}
    for j, group in enumerate(groups):
        take = switched[walk_of, step_of, j]
        for key in group:
            here, there = rows.data[key], background.data[key]
            data[key] = np.where(take, here[row_of], there[start_of])
    scored = output(Table(data, len(row_of))).reshape(n, WALKS, k + 1)
    gains = np.diff(scored, axis=2)  # (n, walks, k): the change at each step
    per_column = np.empty((n, WALKS, k))
    np.put_along_axis(per_column, orders[None, :, :].repeat(n, 0), gains, axis=2)
    values = per_column.mean(axis=1)
    paired = (per_column[:, :pairs] + per_column[:, pairs:]) / 2
    errors = paired.std(axis=1, ddof=1) / np.sqrt(pairs)
    base = scored[:, :, 0].mean(axis=1)
    return Sampled(base, values, errors, WALKS, int(min(pairs, background.n_rows)))
