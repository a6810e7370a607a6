"""Fast scorers for the models whose libraries spend most of a small prediction on bookkeeping:
the same arithmetic, with that bookkeeping done once when the model is loaded.

- XGBoost: `Booster.inplace_predict` called directly. The scikit-learn wrapper sets a global
  config context and reads `best_iteration` and the feature count back from the booster on every
  call: about 240 µs of a one-row predict_proba when measured (XGBoost 2); XGBoost 3.2's own
  `inplace_predict` now spends ~460 µs of Python around a one-row call here.
  A small batch (at most SMALL_BATCH rows) is scored on one thread: waking the other OpenMP
  threads of `mlgate serve` (cores / workers) cost more than a few rows' trees. Up to
  COMPILED_ROWS rows are scored by the compiled trees of runtime/trees.py instead, when they
  reproduce the model (one row: ~65 µs against ~460 µs through the library's Python API).
- LightGBM: `Booster.predict` called directly, one thread for a small batch.
- Decision trees and random forests (scikit-learn): each tree's `tree_.predict` on the float32
  matrix the estimator itself would make, summed in the estimator's own order. Without the
  per-tree input checks and joblib's dispatch, a 100-tree forest scores one row in a fraction of
  the time.
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
_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor"}
_FORESTS = {"RandomForestClassifier", "RandomForestRegressor"}
SMALL_BATCH = 64  # rows scored on one model thread (measured: 2 threads win from ~128 rows)
COMPILED_ROWS = 16  # rows scored by compiled trees (measured: the library wins from ~32 rows)
EXACT = 1e-12  # how close a scorer must come to its library (compiled trees: trees.TOLERANCE)


def fast_scorer(model: Any, classifier: bool, threads: int | None) -> Scorer | None:
    """A scorer for `model`, or None for other models or on any doubt."""
    kind = type(model)
    tolerance = EXACT
    try:
        if kind.__module__ == "xgboost.sklearn":
            scorer, tolerance = _xgboost(model, classifier, threads) or (None, EXACT)
        elif kind.__module__ == "lightgbm.sklearn":
            scorer = _lightgbm(model, classifier, threads)
        elif kind.__name__ in _TREES | _FORESTS and kind.__module__.startswith("sklearn."):
            scorer = _trees(model, classifier)
        elif kind.__module__.startswith("sklearn.linear_model."):
            scorer = _linear(model, classifier)
        else:
            return None
    except Exception as exc:  # a library whose attributes changed: keep its own path
        log.warning("fast scorer not used for %s (%s)", kind.__name__, type(exc).__name__)
        return None
    if scorer is None or not _agrees(scorer, model, classifier, tolerance):
        return None
    return scorer


def _xgboost(model: Any, classifier: bool, threads: int | None) -> tuple[Scorer, float] | None:
    from mlgate.runtime import trees

    if type(model).__name__ not in ("XGBClassifier", "XGBRegressor"):
        return None
    if model.objective == "multi:softmax" or not model._can_use_inplace_predict():
        return None
    booster = model.get_booster()
    if threads:
        booster.set_param({"nthread": threads})
    alone = booster  # the booster for small batches: one thread
    if threads != 1:
        alone = booster.copy()
        alone.set_param({"nthread": 1})
    iteration_range = model._get_iteration_range(None)
    missing = model.missing
    compiled = trees.compile_xgboost(model, booster, iteration_range)

    def score(x: np.ndarray) -> Scored:
        if compiled is not None and len(x) <= COMPILED_ROWS:
            values = compiled(x)
        else:
            chosen = alone if len(x) <= SMALL_BATCH else booster
            values = np.asarray(
                chosen.inplace_predict(
                    x, iteration_range=iteration_range, predict_type="value", missing=missing
                )
            )
        if classifier and values.ndim == 1:  # binary: the wrapper's two columns
            values = np.vstack((1 - values, values)).transpose()
        return values, None  # predict() is the argmax of predict_proba() in the wrapper

    return score, (trees.TOLERANCE if compiled is not None else EXACT)


def _lightgbm(model: Any, classifier: bool, threads: int | None) -> Scorer | None:
    if type(model).__name__ not in ("LGBMClassifier", "LGBMRegressor"):
        return None
    objective = str(model.objective_)
    if classifier and objective not in ("binary", "multiclass", "softmax"):
        return None
    if not classifier and objective not in ("regression", "regression_l2", "l2"):
        return None  # other objectives transform the raw score in the wrapper: keep it
    booster = model.booster_
    many = {"num_threads": threads} if threads else {}
    binary = classifier and objective == "binary"

    def score(x: np.ndarray) -> Scored:
        options = {"num_threads": 1} if len(x) <= SMALL_BATCH else many
        values = np.asarray(booster.predict(x, **options))
        if binary:
            values = np.vstack((1 - values, values)).transpose()
        return values, None  # the wrapper's predict() is the argmax of predict_proba()

    return score


def _trees(model: Any, classifier: bool) -> Scorer | None:
    if int(getattr(model, "n_outputs_", 1)) != 1:
        return None
    trees = [e.tree_ for e in model.estimators_] if hasattr(model, "estimators_") else [model.tree_]
    forest = hasattr(model, "estimators_")
    n_classes = int(model.n_classes_) if classifier else 0

    def score(x: np.ndarray) -> Scored:
        x32 = np.ascontiguousarray(x, dtype=np.float32)  # what the estimator's check makes
        if not forest:
            out = trees[0].predict(x32)
            return (out[:, :n_classes], None) if classifier else (out[:, 0], None)
        total = np.zeros((len(x32), n_classes) if classifier else len(x32), dtype="float64")
        for tree in trees:
            out = tree.predict(x32)
            total += out[:, :n_classes] if classifier else out[:, 0]
        total /= len(trees)
        return total, None  # predict() is the argmax of predict_proba() for both

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
            proba = np.empty((len(scores), 2))
            expit(scores, out=proba[:, 1])
            np.subtract(1.0, proba[:, 1], out=proba[:, 0])
            return proba, (scores > 0).astype("int64")
        return softmax(scores.copy(), copy=False), scores.argmax(axis=1)

    return score


def _agrees(scorer: Scorer, model: Any, classifier: bool, tolerance: float) -> bool:
    """Whether the scorer gives the library's answers on probe rows: small whole numbers (valid
    codes of categorical features too); numbers between, next to a float32 rounding step and far
    out (skipped where the library itself refuses them, as XGBoost does for categorical codes);
    and a small batch, so that both the one-thread and the many-thread paths are checked. Some
    values are missing where the model takes missing values (the others never see one: it is
    imputed)."""
    n = int(model.n_features_in_)
    missing = type(model).__module__ in ("xgboost.sklearn", "lightgbm.sklearn")
    rng = np.random.default_rng(0)
    whole = rng.integers(0, 4, size=(SMALL_BATCH + 8, n)).astype("float64")
    between = rng.normal(scale=3.0, size=(SMALL_BATCH + 8, n))
    between[::5] = np.nextafter(between[::5].astype("float32").astype("float64"), np.inf)
    between[1::7] *= 1e6
    for x in (whole, between):
        if missing:
            x[::3, ::2] = np.nan
    for x, required in ((whole, True), (whole[-4:], True), (between, False)):
        try:
            want = _library_answer(model, classifier, x)
        except Exception:
            if required:
                return False
            continue
        try:
            if not _same(scorer(x), want, classifier, tolerance):
                log.warning("fast scorer not used: it disagreed with the library on probe rows")
                return False
        except Exception as exc:
            log.warning("fast scorer not used: the probe failed (%s)", type(exc).__name__)
            return False
    return True


def _library_answer(model: Any, classifier: bool, x: np.ndarray) -> Scored:
    if not classifier:
        return np.asarray(model.predict(x)), None
    return np.asarray(model.predict_proba(x)), np.asarray(model.predict(x))


def _same(got: Scored, want: Scored, classifier: bool, tolerance: float) -> bool:
    values, codes = got
    if not np.allclose(values, want[0], rtol=tolerance, atol=tolerance):
        return False
    if not classifier:
        return True
    labels = codes if codes is not None else values.argmax(axis=1)
    return want[1] is not None and bool(np.array_equal(labels, want[1]))
