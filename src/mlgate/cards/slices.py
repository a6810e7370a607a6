"""Metrics per slice of a version's holdout rows.

Each slice is evaluated by training/evaluate.py's `evaluate`, the function that gave the
version's own holdout metrics and intervals (the same metrics, the same 95% bootstrap with the
same seed), so a slice's numbers read like the report's. A numeric column with more than
QUANTILE_BINS distinct values is cut into QUANTILE_BINS quantile bins (pandas' qcut; equal
edges merged; written [min, q1], (q1, q2], ...); other columns slice by value, missing
values in a slice of their own."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlgate.cards.model import MAX_SLICES, QUANTILE_BINS, SMALL_SLICE, Slice, SliceSet
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.training.evaluate import Evaluation, Outputs, evaluate

MISSING = "(missing)"


def check_columns(version: ModelVersion, rows: pd.DataFrame, columns: Sequence[str]) -> None:
    """InvalidInput unless every slice column is a column of the version's holdout rows."""
    unknown = [c for c in columns if c not in rows.columns or c == version.target]
    if not columns or unknown:
        known = ", ".join(c for c in rows.columns if c != version.target)
        raise InvalidInput(
            f"slice by columns of {version.ref}'s training rows ({known}); "
            f"{', '.join(unknown) or 'none'} {'is' if len(unknown) == 1 else 'are'} not one"
        )


def slice_metrics(
    version: ModelVersion,
    rows: pd.DataFrame,
    truth: np.ndarray,
    outputs: Outputs,
    columns: Sequence[str],
) -> tuple[tuple[SliceSet, ...], dict[str, float]]:
    """Each column's slices of `rows` (the holdout, `truth` its target as the model's codes,
    `outputs` what the model said of them), and the whole holdout's metrics."""
    check_columns(version, rows, columns)
    labelled = {column: _slice_labels(rows[column]) for column in columns}
    for column, (labels, _) in labelled.items():
        if (n := labels.nunique(dropna=False)) > MAX_SLICES:  # an id: as many slices as rows
            raise InvalidInput(
                f"{column} has {n} distinct values in {version.ref}'s holdout; slice by a "
                f"column with at most {MAX_SLICES} (a numeric one is cut into "
                f"{QUANTILE_BINS} quantile bins)"
            )
    whole = _evaluate(version, truth, outputs, truth)
    sets = []
    for column in columns:
        labels, binned = labelled[column]
        found = []
        for label in _ordered(labels):
            index = np.flatnonzero((labels == label).to_numpy())
            part = Outputs(
                outputs.predictions[index],
                None if outputs.probabilities is None else outputs.probabilities[index],
            )
            evaluation = _evaluate(version, truth[index], part, truth)
            found.append(
                Slice(
                    column=column,
                    value=label,
                    n_rows=len(index),
                    metrics=evaluation.metrics,
                    intervals=evaluation.intervals,
                    gaps={
                        k: v - whole.metrics[k]
                        for k, v in evaluation.metrics.items()
                        if k in whole.metrics and not math.isnan(v)
                    },
                    small=len(index) < SMALL_SLICE,
                    notes=evaluation.notes,
                )
            )
        sets.append(SliceSet(column, binned, tuple(found)))
    return tuple(sets), whole.metrics


def _evaluate(
    version: ModelVersion, y: np.ndarray, outputs: Outputs, y_all: np.ndarray
) -> Evaluation:
    n_classes = len(version.classes or ()) if version.task == "classification" else 0
    # The baseline (not shown on a card) is fitted on the whole holdout's truth.
    return evaluate(version.task, y, outputs, y_all, n_classes=n_classes)


def _slice_labels(values: pd.Series) -> tuple[pd.Series, bool]:
    """Each row's slice as text, and whether the column was cut into quantile bins."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > QUANTILE_BINS:
        bins = pd.qcut(values.astype("float64"), QUANTILE_BINS, duplicates="drop")
        low = float(values.min())  # qcut widens the first bin's edge a little below it
        names = {
            b: f"[{low:.4g}, {b.right:.4g}]" if i == 0 else f"({b.left:.4g}, {b.right:.4g}]"
            for i, b in enumerate(bins.cat.categories)
        }
        text = bins.astype(object).map(names)
        return text.where(values.notna(), MISSING), True
    return values.astype(object).where(values.notna(), MISSING).map(str), False


def _ordered(labels: pd.Series) -> list[str]:
    """The slices in the order a reader expects: bins and numbers ascending, else by name."""
    distinct = [str(x) for x in pd.unique(labels)]

    def key(label: str) -> tuple[int, float, str]:
        head = label.lstrip("[(").split(",")[0]
        try:
            return (0, float(head), label)
        except ValueError:
            return (1 if label != MISSING else 2, 0.0, label)

    return sorted(distinct, key=key)
