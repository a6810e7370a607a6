"""Fast scorers for the models whose libraries spend most of a small prediction on bookkeeping:
the same arithmetic, with that bookkeeping done once when the model is loaded.

- XGBoost: `Booster.inplace_predict` called directly. The scikit-learn wrapper sets a global
  config context and reads `best_iteration` and the feature count back from the booster on every
  call: about 240 µs of a one-row predict_proba here, against about 60 µs for the call itself.
- Linear models (logistic, linear, ridge, lasso, elastic net): `X @ coef.T + intercept`, then
  the same link as scikit-learn (expit, or its softmax). scikit-learn validates the input twice
  per classifier call (predict and predict_proba), about 170 µs each for one row.

A scorer is used only after it reproduced the library's own output on probe rows (labels
exactly, numbers to 1e-12); any doubt keeps the library's path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger("mlgate.serving")

# Values (class probabilities for classifiers, predictions for regressors) and, where the
# model's predict() is not the argmax of its probabilities, the class codes.
Scored = tuple[np.ndarray, np.ndarray | None]
Scorer = Callable[[np.ndarray], Scored]

_LINEAR_REGRESSORS = {"LinearRegression", "Ridge", "Lasso", "ElasticNet"}


def fast_scorer(model: Any, classifier: bool, threads: int | None) -> Scorer | None:
    """A scorer for `model`, or None for other models or on any doubt."""
    kind = type(model)
    try:
        if kind.__module__ == "xgboost.sklearn":
            scorer = _xgboost(model, classifier, threads)
        elif kind.__module__.startswith("sklearn.linear_model."):
            scorer = _linear(model, classifier)
        else:
            return None
    except Exception as exc:  # a library whose attributes changed: keep its own path
        log.warning("fast scorer not used for %s (%s)", kind.__name__, type(exc).__name__)
        return None
    if scorer is None or not _agrees(scorer, model, classifier):
        return None
    return scorer


def _xgboost(model: Any, classifier: bool, threads: int | None) -> Scorer | None:
    if type(model).__name__ not in ("XGBClassifier", "XGBRegressor"):
        return None
    if model.objective == "multi:softmax" or not model._can_use_inplace_predict():
        return None
    booster = model.get_booster()
    if threads:
        booster.set_param({"nthread": threads})
    iteration_range = model._get_iteration_range(None)
    missing = model.missing

    def score(x: np.ndarray) -> Scored:
        values = np.asarray(
            booster.inplace_predict(
                x, iteration_range=iteration_range, predict_type="value", missing=missing
            )
        )
        if classifier and values.ndim == 1:  # binary: the wrapper's two columns
            values = np.vstack((1 - values, values)).transpose()
        return values, None  # predict() is the argmax of predict_proba() in the wrapper

    return score


def _linear(model: Any, classifier: bool) -> Scorer | None:
    name = type(model).__name__
    if classifier and name != "LogisticRegression":
        return None
    if not classifier and name not in _LINEAR_REGRESSORS:
        return None
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    coef = np.asarray(model.coef_)
    coef_t = coef.T if coef.ndim == 2 else coef
    intercept = model.intercept_
    binary = classifier and len(model.classes_) <= 2

    def decision(x: np.ndarray) -> np.ndarray:
        scores: np.ndarray = x @ coef_t + intercept
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

    def score(x: np.ndarray) -> Scored:
        scores = decision(x)
        if not classifier:
            return scores, None
        if binary:
            p = expit(scores)
            return np.stack([1 - p, p], axis=1), (scores > 0).astype("int64")
        return softmax(scores.copy(), copy=False), scores.argmax(axis=1)

    return score


def _agrees(scorer: Scorer, model: Any, classifier: bool) -> bool:
    probe = _probe(int(model.n_features_in_), missing=type(model).__module__ == "xgboost.sklearn")
    try:
        values, codes = scorer(probe)
        if not classifier:
            return bool(np.allclose(values, model.predict(probe), rtol=1e-12, atol=1e-12))
        want_codes = np.asarray(model.predict(probe))
        got_codes = codes if codes is not None else values.argmax(axis=1)
        same = np.allclose(values, model.predict_proba(probe), rtol=1e-12, atol=1e-12)
        return bool(same and np.array_equal(got_codes, want_codes))
    except Exception as exc:
        log.warning("fast scorer not used: the probe failed (%s)", type(exc).__name__)
        return False


def _probe(n_features: int, *, missing: bool) -> np.ndarray:
    """Small whole numbers (valid codes of categorical features too), some of them missing
    where the model takes missing values (linear models never see one: it is imputed)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(16, n_features)).astype("float64")
    if missing:
        x[::3, ::2] = np.nan
    return x
