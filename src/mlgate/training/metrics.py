"""Metrics as plain numpy functions of (truth, predictions, probabilities), fast enough to
recompute on a thousand bootstrap resamples. Each equals scikit-learn's to 1e-9 (tested).

Classification truth and predictions are class codes 0..k-1; probabilities are (n, k).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray
ClassMetric = Callable[[Array, Array, Array, int], float]
RegressionMetric = Callable[[Array, Array], float]


def accuracy(y: Array, pred: Array, proba: Array, k: int) -> float:
    return float(np.mean(y == pred))


def balanced_accuracy(y: Array, pred: Array, proba: Array, k: int) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(recalls))


def f1(y: Array, pred: Array, proba: Array, k: int) -> float:
    """Binary: F1 of class 1. Multiclass: the unweighted mean of each class's F1."""
    labels = [1] if k == 2 else range(k)
    scores = []
    for c in labels:
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def roc_auc(y: Array, pred: Array, proba: Array, k: int) -> float:
    """Binary: area under the ROC curve. Multiclass: mean one-vs-rest AUC (NaN if a class is
    absent from `y`)."""
    if k == 2:
        return _binary_auc(y == 1, proba[:, 1])
    return float(np.mean([_binary_auc(y == c, proba[:, c]) for c in range(k)]))


def log_loss(y: Array, pred: Array, proba: Array, k: int) -> float:
    eps = np.finfo(proba.dtype).eps
    p = np.clip(proba / proba.sum(axis=1, keepdims=True), eps, 1 - eps)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def brier(y: Array, pred: Array, proba: Array, k: int) -> float:
    """Binary: mean squared error of P(class 1). Multiclass: mean over rows of the squared
    distance between the probabilities and the one-hot truth."""
    if k == 2:
        return float(np.mean((proba[:, 1] - (y == 1)) ** 2))
    onehot = np.eye(k)[y]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def rmse(y: Array, pred: Array) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def mae(y: Array, pred: Array) -> float:
    return float(np.mean(np.abs(y - pred)))


def r2(y: Array, pred: Array) -> float:
    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else float("nan")


def mape(y: Array, pred: Array) -> float:
    """Mean absolute percentage error, as a fraction; NaN when a true value is zero."""
    if np.any(y == 0):
        return float("nan")
    return float(np.mean(np.abs((y - pred) / y)))


def _binary_auc(positive: Array, score: Array) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: Array) -> Array:
    """Ranks from 1, ties sharing their mean rank (scipy's rankdata(method="average"), without
    its per-call checks: a report's bootstrap ranks thousands of small columns)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(starts) - 1
    bounds = np.concatenate((np.flatnonzero(starts), [len(values)]))
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2  # of positions start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks


CLASSIFICATION: dict[str, ClassMetric] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "f1": f1,
    "roc_auc": roc_auc,
    "log_loss": log_loss,
    "brier": brier,
}
REGRESSION: dict[str, RegressionMetric] = {"rmse": rmse, "mae": mae, "r2": r2, "mape": mape}
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape"})
