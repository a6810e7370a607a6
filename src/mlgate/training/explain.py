"""What is behind a fitted model: importances (permutation and the model's own) and the words
that point to each class. Coefficient tables are in training/inference.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlgate.registry.model import Task
from mlgate.training.permutation import permutation_drops

MAX_ROWS_FOR_IMPORTANCE = 2_000


def importances(
    task: Task, pipeline: Any, X: pd.DataFrame, y: pd.Series, seed: int
) -> dict[str, dict[str, float]]:
    """Permutation importance of each input column on the holdout rows (drop in the model's
    score when the column is shuffled), plus the model's native importance if it has one."""
    X, y = X.head(MAX_ROWS_FOR_IMPORTANCE), y.head(MAX_ROWS_FOR_IMPORTANCE)
    drops = permutation_drops(task, pipeline, X, y, repeats=5, seed=seed)
    out: dict[str, dict[str, float]] = {
        "permutation": {c: float(v) for c, v in zip(X.columns, drops.mean(axis=1), strict=True)}
    }
    native = getattr(pipeline[-1], "feature_importances_", None)
    if native is not None:
        names = _feature_names(pipeline)
        if len(names) == len(native):
            out["native"] = {n: float(v) for n, v in zip(names, native, strict=True)}
    return out


def indicative_terms(
    pipeline: Any, classes: tuple[Any, ...] | None, limit: int = 8
) -> dict[str, list[tuple[str, float]]]:
    """For a naive Bayes model on text: the words (and pairs of words) that point most to each
    class, scored by how much more the class's log-probability of the term exceeds the other
    classes' mean (for complement NB, the weights it scores with). Empty for other models."""
    weights = getattr(pipeline[-1], "feature_log_prob_", None)
    if weights is None or classes is None or len(classes) != weights.shape[0]:
        return {}
    names = _feature_names(pipeline)
    text = [i for i, n in enumerate(names) if n.startswith("text_")]
    if not text or len(names) != weights.shape[1]:
        return {}
    weights = np.asarray(weights)[:, text]
    out: dict[str, list[tuple[str, float]]] = {}
    for k, label in enumerate(classes):
        others = np.delete(weights, k, axis=0).mean(axis=0)
        lift = weights[k] - others
        best = np.argsort(-lift)[:limit]
        out[str(label)] = [(names[text[i]].partition("__")[2], float(lift[i])) for i in best]
    return out


def _feature_names(pipeline: Any) -> list[str]:
    try:
        return [str(n) for n in pipeline[:-1].get_feature_names_out()]
    except (AttributeError, ValueError):
        n = pipeline[-1].n_features_in_
        return [f"x{i}" for i in range(n)]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
