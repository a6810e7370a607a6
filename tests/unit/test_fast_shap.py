"""explainers/fast_shap.py: the leaf tables give XGBoost's own TreeSHAP values (pred_contribs) for
binary, multiclass and regression boosters with missing values, only the trees an early stop
kept, and refuse what they do not cover (categorical splits) rather than guess."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from mlgate.explainers import fast_shap

RNG = np.random.default_rng(5)
X = RNG.normal(size=(600, 6))
X[RNG.random(X.shape) < 0.1] = np.nan
SIGNAL = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
UNSEEN = np.random.default_rng(9).normal(scale=2, size=(40, 6))
UNSEEN[::5, 3] = np.nan


def library(model: Any) -> Any:
    booster = model.get_booster()
    first, last = model._get_iteration_range(None)

    def contribs(x: np.ndarray) -> np.ndarray:
        found = booster.predict(xgb.DMatrix(x), pred_contribs=True, iteration_range=(first, last))
        return found[:, None, :] if found.ndim == 2 else found

    return contribs


def tables_of(model: Any, n_features: int = X.shape[1]) -> fast_shap.LeafShap | None:
    document = json.loads(bytes(model.get_booster().save_raw(raw_format="json")))
    first, last = model._get_iteration_range(None)
    indptr = document["learner"]["gradient_booster"]["model"]["iteration_indptr"]
    chosen = range(indptr[first], indptr[last]) if last > 0 else None
    return fast_shap.checked(document, library(model), n_features, chosen)


@pytest.mark.parametrize(
    "model",
    [
        xgb.XGBClassifier(n_estimators=40, max_depth=5, n_jobs=1).fit(X, (SIGNAL > 0).astype(int)),
        xgb.XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1).fit(
            X, np.digitize(SIGNAL, [-1, 1])
        ),
        xgb.XGBRegressor(n_estimators=30, max_depth=6, n_jobs=1).fit(X, SIGNAL),
    ],
    ids=["binary", "three classes", "regression"],
)
def test_the_tables_give_the_librarys_contributions(model: Any) -> None:
    tables = tables_of(model)
    assert tables is not None
    want, got = library(model)(UNSEEN), tables.contributions(UNSEEN)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1, np.abs(want).max()))
    # each row's contributions and base add up to its margin, per output
    margins = model.get_booster().predict(xgb.DMatrix(UNSEEN), output_margin=True)
    np.testing.assert_allclose(got.sum(axis=2).squeeze(), margins, rtol=0, atol=1e-4)


def test_an_early_stop_keeps_only_its_trees() -> None:
    model = xgb.XGBClassifier(n_estimators=200, early_stopping_rounds=3, n_jobs=1)
    y = (SIGNAL > 0).astype(int)
    model.fit(X[:450], y[:450], eval_set=[(X[450:], y[450:])], verbose=False)
    assert model.best_iteration < 199
    tables = tables_of(model)
    assert tables is not None
    np.testing.assert_allclose(tables.contributions(UNSEEN), library(model)(UNSEEN), atol=1e-5)


def test_categorical_splits_keep_the_library() -> None:
    frame = pd.DataFrame({"a": X[:, 0], "c": pd.Categorical(np.where(SIGNAL > 0, "x", "y"))})
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(frame, (SIGNAL > 0).astype(int))
    document = json.loads(bytes(model.get_booster().save_raw(raw_format="json")))
    with pytest.raises(fast_shap.Unsupported, match="categorical"):
        fast_shap.from_booster_json(document)


@pytest.mark.parametrize("folded", [True, False], ids=["folded values", "G looked up"])
def test_the_compiled_loop_gives_the_tables_values_for_large_batches(folded: bool) -> None:
    from mlgate.explainers import shap_kernel

    model = xgb.XGBClassifier(n_estimators=10, max_depth=4, n_jobs=1)
    model.fit(X, np.digitize(SIGNAL, [-1, 1]))
    tables = tables_of(model)
    assert tables is not None and len(tables.folded) > 0
    if not folded:  # as for a model too large to fold
        tables = dataclasses.replace(tables, folded=np.empty(0), folded_starts=np.empty(0, int))
    shap_kernel.ready()
    shap_kernel._WARMING[0].join()
    assert shap_kernel.ready()
    for rows in (UNSEEN[:3], np.vstack([UNSEEN] * 15)):  # one block; several, the last partial
        np.testing.assert_allclose(
            shap_kernel.contributions(tables, rows), tables.contributions(rows), rtol=0, atol=1e-12
        )
    # compiled once, in the background, for the types every model's tables have
    assert [len(kernel.signatures) for kernel in shap_kernel._KERNELS.values()] == [1, 1]


def test_a_model_too_large_to_fold_looks_g_up(monkeypatch: pytest.MonkeyPatch) -> None:
    model = xgb.XGBRegressor(n_estimators=5, max_depth=3, n_jobs=1).fit(X, SIGNAL)
    monkeypatch.setattr(fast_shap, "FOLDED_BYTES", 100)
    tables = tables_of(model)
    assert tables is not None and len(tables.folded) == 0


def wine_booster(**params: Any) -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    model = xgb.XGBClassifier(n_estimators=60, tree_method="hist", n_jobs=1, random_state=0)
    return model.set_params(**params).fit(x, y), x


def single_leaf_trees(model: Any) -> list[int]:
    document = json.loads(bytes(model.get_booster().save_raw(raw_format="json")))
    trees = document["learner"]["gradient_booster"]["model"]["trees"]
    return [i for i, tree in enumerate(trees) if tree["left_children"][0] == -1]


@pytest.mark.parametrize("params", [{}, {"max_depth": 1}], ids=["single leaves", "depth 1"])
def test_single_leaf_trees_and_stumps_give_the_librarys_values(params: dict[str, Any]) -> None:
    """Wine's three classes separate within a few rounds: most later trees are one leaf,
    the last ones too (a leaf without features once broke the tables' reductions)."""
    from mlgate.explainers import shap_kernel

    model, x = wine_booster(**params)
    leaves = single_leaf_trees(model)
    n_trees = 3 * model.n_estimators
    if not params:
        assert leaves and leaves[-1] == n_trees - 1 and len(leaves) < n_trees
    tables = tables_of(model, x.shape[1])
    assert tables is not None
    want = library(model)(x)
    np.testing.assert_allclose(
        tables.contributions(x), want, rtol=0, atol=1e-5 * np.abs(want).max()
    )
    assert shap_kernel.compile_now()
    for rows in (x[:3], np.vstack([x] * 2)):  # one block; several
        np.testing.assert_allclose(
            shap_kernel.contributions(tables, rows), tables.contributions(rows), atol=1e-12
        )


def test_a_booster_without_any_split_keeps_the_library() -> None:
    model, _ = wine_booster(n_estimators=3, min_child_weight=1000)
    assert len(single_leaf_trees(model)) == 9
    document = json.loads(bytes(model.get_booster().save_raw(raw_format="json")))
    with pytest.raises(fast_shap.Unsupported, match="no splits"):
        fast_shap.from_booster_json(document)
