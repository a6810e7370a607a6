"""Per-row explanations (explainers/explain.py): for every algorithm and task of the catalogue, on a
table with numbers, categories and missing values, the base plus the contributions is the
model's raw output (exact methods to float32's precision, sampling exactly by construction with
errors stated), and exact methods agree with the shap package."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from mlgate.bootstrap import Services
from mlgate.explainers import shap_kernel
from mlgate.explainers.explain import Explanation
from mlgate.registry.service import resolve_version
from mlgate.schema import Table, conform
from mlgate.sources import demo
from mlgate.training.catalogue import CATALOGUE
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services

TARGETS = {"classification": ("binary", "three"), "regression": ("value",)}
CASES = [
    (name, target)
    for name, algorithm in CATALOGUE.items()
    for task in algorithm.tasks
    if task in TARGETS
    for target in TARGETS[task]
]
SMALL = {  # the catalogue's settings, made quick for a 300-row table
    "xgboost": {"n_estimators": 30},
    "lightgbm": {"n_estimators": 30},
    "catboost": {"iterations": 30},
    "random_forest": {"n_estimators": 20},
    "mlp": {"max_epochs": 5},
    "cnn": {"max_epochs": 3},
}


def table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    size = rng.choice(["S", "M", "L", "XL"], size=n).astype(object)
    signal = 1.5 * x1 - x2 + (color == "red") - 0.5 * (size == "S") + rng.normal(scale=0.5, size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "size": size})
    frame.loc[rng.random(n) < 0.1, "x2"] = np.nan
    frame.loc[rng.random(n) < 0.1, "color"] = None
    frame["binary"] = np.where(signal > 0, "yes", "no")
    frame["three"] = np.digitize(signal, [-1.0, 1.0]).astype(str)
    frame["value"] = signal
    return frame


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("explain")
    services = make_services(root / "home")
    demo.write_sqlite(root / "rows.db", table(), table="rows")
    add_source_to(services, "rows", f"sqlite:///{root / 'rows.db'}", cwd=root)
    yield services
    services.close()


def trained(services: Services, algorithm: str, target: str) -> str:
    name = f"{algorithm.replace('_', '-')}-{target}"
    drop = tuple(t for t in ("binary", "three", "value") if t != target)
    spec = TrainSpec(name, "rows", target, algorithm, table="rows", drop=drop,
                     params=SMALL.get(algorithm), report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    return name


def rows_of(services: Services, name: str, n: int = 40) -> tuple[Any, Table]:
    version = resolve_version(services.uow(), name, None)
    frame = conform(table(n, seed=7), version.columns)
    frame.loc[0, "x2"] = np.nan
    if "color" in frame.columns:
        frame.loc[1, "color"] = np.nan
        frame.loc[2, "color"] = "purple"  # never seen in training
    return version, Table({k: frame[k].to_numpy() for k in frame.columns}, len(frame))


def raw_outputs(
    services: Services, version: Any, rows: Table, explained: Explanation
) -> np.ndarray:
    """The model's raw output for the explained class, asked of the library directly."""
    predictor = services.predictors.get(version)
    model, X = predictor._pipeline[-1], predictor._transform(rows)
    algorithm, classes = version.algorithm, list(version.classes or ())
    if explained.scale == "prediction":
        return np.asarray(model.predict(X), dtype="float64").ravel()
    if explained.scale == "probability":
        out = np.asarray(model.predict_proba(X), dtype="float64")
    elif algorithm == "xgboost":
        out = np.asarray(model.predict(X, output_margin=True), dtype="float64")
    elif algorithm == "lightgbm":
        out = np.asarray(model.booster.predict(X, raw_score=True), dtype="float64")
    elif algorithm == "catboost":
        out = np.asarray(model.predict(X, prediction_type="RawFormulaVal"), dtype="float64")
    else:
        out = np.asarray(model.decision_function(X), dtype="float64")
    if out.ndim == 1:
        return out
    which = [classes.index(c) for c in explained.explained or ()]
    return out[np.arange(len(out)), which]


@pytest.mark.parametrize(("algorithm", "target"), CASES, ids=[f"{a}-{t}" for a, t in CASES])
def test_base_plus_contributions_is_the_raw_output(
    world: Services, algorithm: str, target: str
) -> None:
    name = trained(world, algorithm, target)
    version, rows = rows_of(world, name)
    explained = world.explainer(version).explain(rows)
    assert explained.columns == ("x1", "x2", "color", "size")
    total = explained.base + explained.values.sum(axis=1)
    raw = raw_outputs(world, version, rows, explained)
    scale = max(1.0, float(np.abs(raw).max()))
    np.testing.assert_allclose(total, raw, rtol=0, atol=2e-6 * scale)
    if explained.method == "sampling":
        assert explained.errors is not None and (explained.errors >= 0).all()
        assert explained.budget and explained.budget["walks_per_row"] == 32
    top = explained.rows(top=2)
    for row, full in zip(top, total, strict=True):
        assert len(row["contributions"]) == 3 and "other" in row["contributions"]
        assert row["base"] + sum(row["contributions"].values()) == pytest.approx(full, abs=1e-9)


@pytest.mark.parametrize(
    ("algorithm", "target"),
    [("xgboost", "three"), ("lightgbm", "binary"), ("catboost", "value"),
     ("random_forest", "three"), ("decision_tree", "value")],
)  # fmt: skip
def test_tree_shap_agrees_with_the_shap_package(
    world: Services, algorithm: str, target: str
) -> None:
    shap = pytest.importorskip("shap")
    name = trained(world, algorithm, target)
    version, rows = rows_of(world, name)
    explained = world.explainer(version).explain(rows)
    predictor = world.predictors.get(version)
    model, X = predictor._pipeline[-1], predictor._transform(rows)
    if algorithm == "lightgbm":
        model = model.booster
    with warnings.catch_warnings():  # shap notes that its LightGBM output shape changed
        warnings.simplefilter("ignore", UserWarning)
        values = np.asarray(shap.TreeExplainer(model).shap_values(X), dtype="float64")
    if values.ndim == 3:  # (rows, features, outputs): the explained class of each row
        classes = list(version.classes or ())
        which = [classes.index(c) for c in explained.explained or ()]
        values = values[np.arange(len(values)), :, which]
    # ordinal and string encodings: one feature per column, in the columns' order
    scale = max(1.0, float(np.abs(values).max()))
    np.testing.assert_allclose(explained.values, values, rtol=0, atol=1e-6 * scale)


def test_the_linear_closed_form_by_hand(world: Services) -> None:
    name = trained(world, "logistic_regression", "binary")
    version, rows = rows_of(world, name, n=5)
    explainer = world.explainer(version)
    assert not explainer.prepared()  # the training mean is read on the first call (a thread's)
    explained = explainer.explain(rows)
    assert explainer.prepared()
    predictor = world.predictors.get(version)
    model = predictor._pipeline[-1]
    X = predictor._transform(rows)
    mean = predictor._transform(explainer.background()).mean(axis=0)
    coef = model.coef_[0]
    # x1, x2 are the first two features (scaled numbers); color one-hot next, then size
    colors = len(predictor._pipeline[0].named_transformers_["categorical"][-1].categories_[0])
    by_hand_x1 = coef[0] * (X[:, 0] - mean[0])
    by_hand_color = (coef[2 : 2 + colors] * (X[:, 2 : 2 + colors] - mean[2 : 2 + colors])).sum(
        axis=1
    )
    np.testing.assert_allclose(explained.values[:, 0], by_hand_x1, rtol=1e-12)
    np.testing.assert_allclose(explained.values[:, 2], by_hand_color, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(explained.base, model.intercept_[0] + mean @ coef, rtol=1e-12)
    assert explained.scale == "log-odds" and explained.explained == ["yes"] * 5


def test_a_few_rows_of_numeric_xgboost_take_the_checked_tables(world: Services) -> None:
    spec = TrainSpec("xgb-numbers", "rows", "binary", "xgboost", table="rows",
                     drop=("three", "value", "color", "size"), params={"n_estimators": 20},
                     report=False)  # fmt: skip
    train_model(world.uow(), world.artifacts, world.open_source, spec, now=world.clock)
    version, rows = rows_of(world, "xgb-numbers")
    explainer = world.explainer(version)
    few = Table({k: v[:3] for k, v in rows.data.items()}, 3)
    quick = explainer.explain(few)
    assert quick.implementation.startswith("mlgate TreeSHAP tables")
    shap_kernel.ready()
    shap_kernel._WARMING[0].join()  # compiled: now every batch size takes the tables
    whole = explainer.explain(rows)
    assert whole.implementation.startswith("mlgate TreeSHAP tables")
    predictor = world.predictors.get(version)
    model, X = predictor._pipeline[-1], predictor._transform(rows)
    library = model.get_booster().predict(xgb.DMatrix(X), pred_contribs=True)
    for found in (quick, whole):
        n = len(found.base)
        np.testing.assert_allclose(found.values, library[:n, :-1], rtol=0, atol=1e-5)
        np.testing.assert_allclose(found.base, library[:n, -1], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("algorithm", "target"), [("ridge", "value"), ("logistic_regression", "binary")]
)
def test_the_linear_closed_form_agrees_with_the_shap_package(
    world: Services, algorithm: str, target: str
) -> None:
    shap = pytest.importorskip("shap")
    name = trained(world, algorithm, target)
    version, rows = rows_of(world, name)
    explainer = world.explainer(version)
    explained = explainer.explain(rows)
    predictor = world.predictors.get(version)
    background = predictor._transform(explainer.background())
    masker = shap.maskers.Independent(background, max_samples=len(background))
    found = shap.LinearExplainer(predictor._pipeline[-1], masker).shap_values(
        predictor._transform(rows)
    )
    from mlgate.explainers.explain import Subject, feature_owners

    owners = feature_owners(predictor._pipeline[0], Subject.of(version))
    per_column = np.column_stack(
        [
            found[:, [i for i, o in enumerate(owners) if o == c]].sum(axis=1)
            for c in explained.columns
        ]
    )
    np.testing.assert_allclose(explained.values, per_column, rtol=0, atol=1e-6)
