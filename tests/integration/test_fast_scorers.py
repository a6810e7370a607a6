"""The fast scorers of serving/scorers.py give the library's own answers, or are not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from mlgate.serving.scorers import fast_scorer

RNG = np.random.default_rng(3)
X = RNG.normal(size=(400, 6))
BINARY = (X[:, 0] + 0.5 * X[:, 1] + RNG.normal(scale=0.5, size=400) > 0).astype(int)
THREE = np.digitize(X[:, 0] + X[:, 2], [-0.7, 0.7])
VALUES = 2 * X[:, 0] - X[:, 3] + RNG.normal(scale=0.1, size=400)
UNSEEN = np.random.default_rng(11).normal(scale=2.0, size=(300, 6))


def _check_classifier(model: Any, x: np.ndarray) -> None:
    scorer = fast_scorer(model, True, threads=1)
    assert scorer is not None, type(model).__name__
    proba, codes = scorer(x)
    np.testing.assert_allclose(proba, model.predict_proba(x), rtol=1e-12, atol=1e-12)
    got = codes if codes is not None else proba.argmax(axis=1)
    np.testing.assert_array_equal(got, model.predict(x))


@pytest.mark.parametrize("y", [BINARY, THREE], ids=["binary", "three classes"])
def test_logistic_regression(y: np.ndarray) -> None:
    _check_classifier(LogisticRegression(max_iter=500).fit(X, y), UNSEEN)


@pytest.mark.parametrize("y", [BINARY, THREE], ids=["binary", "three classes"])
def test_xgboost_classifier_with_missing_values(y: np.ndarray) -> None:
    model = xgb.XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1).fit(X, y)
    x = UNSEEN.copy()
    x[::4, 1] = np.nan
    _check_classifier(model, x)


def test_xgboost_with_early_stopping_scores_with_the_best_iteration() -> None:
    model = xgb.XGBClassifier(n_estimators=200, early_stopping_rounds=3, n_jobs=1)
    model.fit(X[:300], BINARY[:300], eval_set=[(X[300:], BINARY[300:])], verbose=False)
    assert model.best_iteration < 199
    _check_classifier(model, UNSEEN)


@pytest.mark.parametrize(
    "model",
    [
        LinearRegression(),
        Ridge(alpha=0.5),
        Lasso(alpha=0.01),
        ElasticNet(alpha=0.01),
        xgb.XGBRegressor(n_estimators=30, n_jobs=1),
    ],
    ids=lambda m: type(m).__name__,
)
def test_regressors(model: Any) -> None:
    model.fit(X, VALUES)
    scorer = fast_scorer(model, False, threads=1)
    assert scorer is not None
    values, codes = scorer(UNSEEN)
    assert codes is None
    np.testing.assert_allclose(values, model.predict(UNSEEN), rtol=1e-12, atol=1e-12)


def test_other_models_keep_their_library_path() -> None:
    assert fast_scorer(GaussianNB().fit(X, BINARY), True, threads=1) is None
    assert fast_scorer(DecisionTreeClassifier().fit(X, BINARY), True, threads=1) is None
    softmax = xgb.XGBClassifier(n_estimators=5, objective="multi:softmax", n_jobs=1)
    assert fast_scorer(softmax.fit(X, THREE), True, threads=1) is None


def test_a_scorer_that_disagrees_with_its_library_is_refused() -> None:
    model = LogisticRegression(max_iter=500).fit(X, BINARY)
    model.coef_ = model.coef_.copy()  # what the scorer captures...

    class Drifting(LogisticRegression):  # ...and a predict_proba that no longer matches it
        def predict_proba(self, x: Any) -> Any:
            return super().predict_proba(x) * 0.5 + 0.25

    drifting = Drifting(max_iter=500).fit(X, BINARY)
    assert fast_scorer(drifting, True, threads=1) is None
    assert fast_scorer(model, True, threads=1) is not None
