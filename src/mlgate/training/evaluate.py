"""Holdout metrics for each task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from mlgate.registry.model import Task


def evaluate(
    task: Task, estimator: Any, X: Any, y: Any, classes: Sequence[Any] | None
) -> dict[str, float]:
    if task == "regression":
        predicted = estimator.predict(X)
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
            "mae": float(skm.mean_absolute_error(y, predicted)),
            "r2": float(skm.r2_score(y, predicted)),
        }
    predicted = estimator.predict(X)
    proba = estimator.predict_proba(X)
    labels = list(classes or [])
    out = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, predicted)),
        "f1_macro": float(skm.f1_score(y, predicted, average="macro", labels=labels)),
        "log_loss": float(skm.log_loss(y, proba, labels=labels)),
    }
    present = set(np.unique(y))
    if len(present) == len(labels) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
    elif len(present) == len(labels) > 2:
        out["roc_auc_ovr"] = float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    return out
