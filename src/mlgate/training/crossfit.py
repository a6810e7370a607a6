"""Fitting for inference on every row (`--test-size 0`): no rows are held out, so the metrics
come from cross-fitted predictions instead. Every row is predicted by a model fitted on the
other folds (leave-one-out on tables under LOO_BELOW rows), and those out-of-fold predictions
are evaluated like a holdout's: the same metrics, intervals and plots, over all rows."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mlgate.errors import InvalidInput
from mlgate.training.evaluate import Outputs, fit_notes
from mlgate.training.folds import FoldFit, outputs_on, splits

LOO_BELOW = 30  # rows: fewer, and each row is its own fold
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class CrossFit:
    outputs: Outputs  # what a model that did not see each row said about it, in row order
    baseline: Outputs  # the baseline, cross-fitted alike: the other folds' mean or frequencies
    method: str  # how, in words: "5-fold cross-fitted predictions", "leave-one-out …"
    folds: int
    warnings: tuple[str, ...]  # what the libraries warned about on the folds, deduplicated


def folds_for(n_rows: int, asked: int | None) -> int:
    """The folds of a fit on every row: as asked, else leave-one-out on small tables, else 5."""
    if asked is not None:
        if not 2 <= asked <= min(n_rows, 1_000):
            raise InvalidInput(
                f"cross-fitting {n_rows} rows takes 2 to {min(n_rows, 1_000)} folds, not {asked}"
            )
        return asked
    return n_rows if n_rows < LOO_BELOW else DEFAULT_FOLDS


def cross_fit(fit: FoldFit, folds: int) -> CrossFit:
    """Out-of-fold outputs for every row of fit.X."""
    task, n_classes, X, y = fit.task, fit.n_classes, fit.X, fit.y
    stratify = task == "classification" and int(y.value_counts().min()) >= folds
    predictions = np.zeros(len(X), dtype="int64" if task == "classification" else "float64")
    probabilities = np.zeros((len(X), n_classes)) if task == "classification" else None
    base_predictions = np.zeros_like(predictions)
    base_probabilities = np.zeros((len(X), n_classes)) if task == "classification" else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for train_index, test_index in splits(fit, folds, stratify=stratify):
            y_train = y.iloc[train_index]
            if task == "classification" and y_train.nunique() < 2:
                raise InvalidInput(
                    "a fold's training rows hold a single class; add rows of the others or "
                    "hold rows out with --test-size"
                )
            if base_probabilities is not None:
                counts = np.bincount(y_train.to_numpy(dtype="int64"), minlength=n_classes)
                base_probabilities[test_index] = counts / counts.sum()
                base_predictions[test_index] = int(np.argmax(counts))
            else:
                base_predictions[test_index] = float(y_train.mean())
            outputs = outputs_on(fit, train_index, test_index)
            if probabilities is not None:
                assert outputs.probabilities is not None
                probabilities[test_index] = outputs.probabilities
            predictions[test_index] = outputs.predictions
    messages = fit_notes(caught)
    method = (
        f"leave-one-out predictions ({folds} fits)"
        if folds == len(X)
        else f"{folds}-fold cross-fitted predictions"
    )
    baseline = Outputs(base_predictions, base_probabilities)
    return CrossFit(Outputs(predictions, probabilities), baseline, method, folds, messages)
