"""k-fold fits of one algorithm on training rows: the record and the loop that cross-validation
(tuning.py: a score per fold) and cross-fitting (crossfit.py: every row predicted by a model that
did not see it) share, so the two take one signature and fit a fold alike."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from mlgate.columns import Column
from mlgate.registry.model import Task
from mlgate.schema import feature_columns
from mlgate.training.catalogue import Algorithm
from mlgate.training.evaluate import Outputs, outputs_of
from mlgate.training.preprocess import build_pipeline, layout_of


@dataclass(frozen=True)
class FoldFit:
    """An algorithm with its parameters on training rows, to be fitted fold by fold."""

    algorithm: Algorithm
    task: Task
    columns: Sequence[Column]
    X: pd.DataFrame
    y: pd.Series
    params: dict[str, Any] | None
    n_classes: int
    seed: int


def splits(fit: FoldFit, folds: int, *, stratify: bool) -> Iterator[tuple[Any, Any]]:
    """The (train, test) row positions of each fold, shuffled by the seed; `stratify` keeps each
    class's share in every fold."""
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=fit.seed)
        if stratify
        else KFold(folds, shuffle=True, random_state=fit.seed)
    )
    return splitter.split(fit.X, fit.y)  # type: ignore[no-any-return]


def outputs_on(fit: FoldFit, train: Any, test: Any) -> Outputs:
    """Fit the algorithm's pipeline on the `train` rows; what it says about the `test` rows, its
    probabilities over every class (a fold's rows may lack some)."""
    features = feature_columns(fit.columns)
    X_train, y_train = fit.X.iloc[train], fit.y.iloc[train]
    layout = layout_of(features, X_train)
    pipeline = build_pipeline(features, fit.algorithm.build(fit.task, layout, fit.params),
                              fit.algorithm)  # fmt: skip
    fit_params = fit.algorithm.fit_params(layout) if fit.algorithm.fit_params else {}
    pipeline.fit(X_train, y_train, **{f"model__{k}": v for k, v in fit_params.items()})
    outputs = outputs_of(fit.task, pipeline, fit.X.iloc[test])
    if outputs.probabilities is None:
        return outputs
    return Outputs(
        outputs.predictions, full_proba(outputs.probabilities, pipeline[-1], fit.n_classes)
    )


def full_proba(proba: np.ndarray, model: Any, n_classes: int) -> np.ndarray:
    """Probabilities over all classes, when a fold's model saw only some of them."""
    if proba.shape[1] == n_classes:
        return proba
    seen = np.asarray(getattr(model, "classes_", range(proba.shape[1])), dtype="int64")
    full = np.full((len(proba), n_classes), 1e-12)
    full[:, seen] = proba
    return np.asarray(full / full.sum(axis=1, keepdims=True))
