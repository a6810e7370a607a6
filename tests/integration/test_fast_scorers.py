"""The fast scorers of runtime/scorers.py give the library's own answers, or are not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlgate.runtime.scorers import SMALL_BATCH, fast_scorer

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


# Every tree algorithm of the catalogue that has a scorer; CatBoost keeps its own path (it reads
# raw strings, so its rows never reach a scorer as a matrix).
CODES = RNG.integers(0, 5, size=400).astype("float64")  # a categorical column, as codes
WITH_CODES = np.column_stack([X, CODES])
CATEGORICAL_EFFECT = np.isin(CODES, [1, 3])
TREE_TARGETS = {
    "binary": (BINARY ^ CATEGORICAL_EFFECT).astype(int),
    "three classes": THREE,
    "regression": VALUES + 2.0 * CATEGORICAL_EFFECT,
}


def _tree_models(task: str) -> list[Any]:
    import lightgbm as lgb

    classifier = task != "regression"
    xgb_kind = xgb.XGBClassifier if classifier else xgb.XGBRegressor
    lgb_kind = lgb.LGBMClassifier if classifier else lgb.LGBMRegressor
    return [
        (DecisionTreeClassifier if classifier else DecisionTreeRegressor)(random_state=0),
        (RandomForestClassifier if classifier else RandomForestRegressor)(
            n_estimators=40, random_state=0, n_jobs=1
        ),
        xgb_kind(
            n_estimators=40,
            max_depth=4,
            n_jobs=1,
            enable_categorical=True,
            feature_types=["q"] * 6 + ["c"],
            tree_method="hist",
        ),  # fmt: skip
        lgb_kind(n_estimators=40, n_jobs=1, verbose=-1),
    ]


@pytest.mark.parametrize("task", list(TREE_TARGETS))
@pytest.mark.parametrize("threads", [1, 2], ids=["one thread", "two threads"])
def test_tree_scorers_equal_their_library_in_small_and_large_batches(
    task: str, threads: int
) -> None:
    """Seeded rows, missing values where the library takes them, a categorical split; one row,
    a small batch and a large one (the one-thread and the many-thread paths)."""
    y = TREE_TARGETS[task]
    classifier = task != "regression"
    unseen = np.column_stack([UNSEEN, np.random.default_rng(5).integers(0, 5, 300)])
    for model in _tree_models(task):
        name = type(model).__name__
        fit: dict[str, Any] = {"categorical_feature": [6]} if name.startswith("LGBM") else {}
        model.fit(WITH_CODES, y, **fit)
        x = unseen.copy()
        if not name.startswith(("Decision", "Random")):  # the pipeline imputes for the others
            x[::4, 1] = np.nan
            x[::9, 6] = np.nan
        scorer = fast_scorer(model, classifier, threads=threads)
        assert scorer is not None, name
        for rows in (x[:1], x[:SMALL_BATCH], x):
            values, codes = scorer(rows)
            if not classifier:
                np.testing.assert_allclose(values, model.predict(rows), rtol=1e-12, atol=1e-12)
                continue
            np.testing.assert_allclose(values, model.predict_proba(rows), rtol=1e-12,
                                       atol=1e-12, err_msg=name)  # fmt: skip
            got = codes if codes is not None else values.argmax(axis=1)
            np.testing.assert_array_equal(got, model.predict(rows), err_msg=name)


def test_a_forest_scores_exactly_as_its_own_predict_proba() -> None:
    """Not only close: the same float32 inputs and the same order of summation."""
    model = RandomForestClassifier(n_estimators=25, random_state=1, n_jobs=1).fit(X, THREE)
    scorer = fast_scorer(model, True, threads=1)
    assert scorer is not None
    values, _ = scorer(UNSEEN)
    assert np.array_equal(values, model.predict_proba(UNSEEN))


@pytest.mark.parametrize("task", list(TREE_TARGETS))
def test_compiled_xgboost_trees_equal_the_library(task: str) -> None:
    """Numbers to 1e-6 (XGBoost sums in float32), labels exactly; missing values, values on a
    threshold and a float64 step either side of it (the library compares in float32)."""
    from mlgate.runtime import trees

    classifier = task != "regression"
    kind = xgb.XGBClassifier if classifier else xgb.XGBRegressor
    model = kind(n_estimators=60, max_depth=5, n_jobs=1).fit(X, TREE_TARGETS[task])
    booster = model.get_booster()
    compiled = trees.compile_xgboost(model, booster, model._get_iteration_range(None))
    assert compiled is not None
    x = UNSEEN.copy()
    x[::4, 1] = np.nan
    x[::7] = np.nan  # every input missing: each tree's default path
    thresholds = [float(v) for v in booster.trees_to_dataframe().Split.dropna()[:50]]
    on = np.resize(np.array(thresholds, dtype=np.float32).astype("float64"), x[:150].shape)
    x = np.vstack([x, on, np.nextafter(on, -np.inf), np.nextafter(on, np.inf)])
    want = np.asarray(booster.inplace_predict(x))
    got = compiled(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if classifier:
        proba = got if got.ndim == 2 else np.column_stack([1 - got, got])
        np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(x))
    # The scorer answers one row from the compiled trees, a large batch from the library.
    scorer = fast_scorer(model, classifier, threads=2)
    assert scorer is not None
    one, _ = scorer(x[:1])
    expected_one = compiled(x[:1])
    if classifier and expected_one.ndim == 1:
        expected_one = np.column_stack([1 - expected_one, expected_one])
    assert np.array_equal(one, expected_one)
    many, _ = scorer(x)
    library = model.predict_proba(x) if classifier else model.predict(x)
    np.testing.assert_allclose(many, library, rtol=1e-12, atol=1e-12)


def test_compiled_trees_follow_early_stopping_and_refuse_categorical_splits() -> None:
    from mlgate.runtime import trees

    stopped = xgb.XGBClassifier(n_estimators=200, early_stopping_rounds=3, n_jobs=1)
    stopped.fit(X[:300], BINARY[:300], eval_set=[(X[300:], BINARY[300:])], verbose=False)
    booster = stopped.get_booster()
    compiled = trees.compile_xgboost(stopped, booster, stopped._get_iteration_range(None))
    assert compiled is not None and stopped.best_iteration < 199
    np.testing.assert_allclose(compiled(UNSEEN), stopped.predict_proba(UNSEEN)[:, 1], atol=1e-6)
    types = ["q"] * 6 + ["c"]
    categorical = xgb.XGBClassifier(
        n_estimators=20, n_jobs=1, enable_categorical=True, feature_types=types, tree_method="hist"
    )
    categorical.fit(WITH_CODES, TREE_TARGETS["binary"])
    booster = categorical.get_booster()
    assert trees.compile_xgboost(categorical, booster, (0, 0)) is None
