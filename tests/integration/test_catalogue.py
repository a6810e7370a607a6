"""The common suite: every algorithm in the catalogue, on data sets that ship with scikit-learn.

Each (algorithm, task) is trained through mlgate, saved, loaded back in a fresh process, and must
predict exactly what it predicted in process; each matches the library called directly on the
same split; parameters round-trip and unknown ones are named.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion, Task
from mlgate.schema import rows_to_frame, rows_to_table
from mlgate.sources import demo
from mlgate.training.catalogue import CATALOGUE, FeatureLayout
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services

CASES = [
    (name, task)
    for name, a in CATALOGUE.items()
    for task in a.tasks
    if task in ("classification", "regression")
]  # the gan and the forecasters have suites of their own: test_gan.py, test_forecast.py
DATA_FOR: dict[Task, str] = {"classification": "cancer", "regression": "diabetes"}
TARGET_FOR: dict[Task, str] = {"classification": "target", "regression": "target"}


def frames() -> dict[str, pd.DataFrame]:
    cancer = datasets.load_breast_cancer(as_frame=True).frame
    diabetes = datasets.load_diabetes(as_frame=True).frame
    iris = datasets.load_iris(as_frame=True).frame
    iris["target"] = iris["target"].map(dict(enumerate(["setosa", "versicolor", "virginica"])))
    churn = demo.churn_frame(n_rows=400, seed=3)
    return {"cancer": cancer, "diabetes": diabetes, "iris": iris, "churn": churn}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalogue")


@pytest.fixture(scope="module")
def services(home: Path) -> Iterator[Services]:
    built = make_services(home / "home")
    folder = home / "data"
    folder.mkdir()
    for name, frame in frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    add_source_to(built, "data", str(folder), cwd=home)
    yield built
    built.close()


class Trained:
    """Each (algorithm, task) trained once, on first use: a test pays for its own case's
    training (none bears every algorithm's), and the fresh-process test, last in the module,
    finds them all trained."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.versions: dict[tuple[str, str], ModelVersion] = {}

    def __getitem__(self, case: tuple[str, str]) -> ModelVersion:
        if case not in self.versions:
            name, task = case
            spec = TrainSpec(
                model_name=f"{name}-{task}",
                source="data",
                target=TARGET_FOR[task],
                algorithm=name,
                table=DATA_FOR[task],
                task=task,
                report=False,  # reports have their own tests; this suite is about the models
            )
            self.versions[case] = train_model(
                self.services.uow(),
                self.services.artifacts,
                self.services.open_source,
                spec,
                now=self.services.clock,
            ).version
        return self.versions[case]

    def items(self) -> list[tuple[tuple[str, str], ModelVersion]]:
        return [(case, self[case]) for case in CASES]


@pytest.fixture(scope="module")
def trained(services: Services) -> Trained:
    return Trained(services)


def probe_rows(version: ModelVersion, table: str) -> list[dict[str, Any]]:
    frame = frames()[table].drop(columns=["target"]).head(25)
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def scores_of(services: Services, version: ModelVersion, rows: list[dict[str, Any]]) -> Any:
    frame = rows_to_frame(rows, version.columns, max_rows=1000)
    scores = services.predictors.get(version).score(frame)
    return {"predictions": scores.predictions, "probabilities": scores.probabilities}


@pytest.mark.parametrize(("name", "task"), CASES)
def test_each_algorithm_beats_or_meets_its_baseline(name: str, task: str, trained: Trained) -> None:
    version = trained[(name, task)]
    report = version.report or {}
    evaluation = report["evaluation"]
    metric = "accuracy" if task == "classification" else "rmse"
    value, baseline = evaluation["metrics"][metric], evaluation["baseline"][metric]
    low, high = evaluation["intervals"][metric]
    assert low <= value <= high
    if task == "classification":
        assert value > baseline
    else:
        assert value < baseline


def direct_estimator(name: str, task: Task) -> Any:
    """The library's estimator, built by hand with mlgate's documented defaults."""
    layout = FeatureLayout(30 if task == "classification" else 10, 0)
    estimator = CATALOGUE[name].build(task, layout)
    return (
        make_pipeline(StandardScaler(), estimator) if CATALOGUE[name].needs_scaling else estimator
    )


@pytest.mark.parametrize(("name", "task"), CASES)
def test_each_algorithm_matches_its_library_called_directly(
    name: str, task: Task, trained: Trained
) -> None:
    frame = frames()[DATA_FOR[task]]
    X = frame.drop(columns=["target"]).to_numpy(dtype="float64")
    y = frame["target"].to_numpy()
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=stratify
    )
    model = direct_estimator(name, task).fit(X_train, y_train)
    predicted = model.predict(X_test)
    metrics = trained[(name, task)].metrics
    if task == "classification":
        expected = float(np.mean(predicted == y_test))
        assert metrics["accuracy"] == pytest.approx(expected, abs=1e-9)
    else:
        expected = float(np.sqrt(np.mean((predicted - y_test) ** 2)))
        assert metrics["rmse"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("name", "task"), CASES)
def test_parameters_round_trip_and_unknown_ones_are_named(name: str, task: Task) -> None:
    algorithm = CATALOGUE[name]
    layout = FeatureLayout(3, 1)
    estimator = algorithm.build(task, layout)
    params = estimator.get_params(deep=False)
    rebuilt = algorithm.build(task, layout, params)
    assert rebuilt.get_params(deep=False).keys() == params.keys()
    if algorithm.library == "scikit-learn":  # CatBoost's own estimators refuse sklearn's clone
        assert clone(rebuilt).get_params(deep=False).keys() == params.keys()
    for key in algorithm.space:
        assert key in algorithm.parameter_names(task), f"{name}: space names {key!r}"
    with pytest.raises(InvalidInput, match="no parameter 'not_a_parameter'"):
        algorithm.build(task, layout, {"not_a_parameter": 1})


def test_categorical_and_missing_data_train_every_classifier(services: Services) -> None:
    compiled_or_not: dict[str, bool] = {}
    for name, algorithm in CATALOGUE.items():
        if "classification" not in algorithm.tasks or "forecast" in algorithm.tasks:
            continue  # recurrent readers need rows that are sequences: test_forecast.py
        spec = TrainSpec(
            f"churn-{name}",
            "data",
            "churned",
            name,
            table="churn",
            drop=("customer_id",),
            report=False,
        )
        version = train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        ).version
        assert version.classes == (0, 1)
        assert version.metrics["roc_auc"] > 0.6, name
        compiled_or_not[name] = _fast_path_agrees(services, version)
    # The compiled preprocessor serves every model whose steps it knows; CatBoost takes raw
    # strings and keeps scikit-learn's path.
    assert not compiled_or_not.pop("catboost")
    assert all(compiled_or_not.values()), compiled_or_not


def _fast_path_agrees(services: Services, version: ModelVersion) -> bool:
    """The served predictor's features and scores equal scikit-learn's own transform's, on rows
    with missing values and categories never seen in training."""
    rows = demo.churn_frame(n_rows=300, seed=99).drop(columns=["customer_id", "churned"])
    rows.loc[::7, "contract"] = "lifetime"  # unseen
    rows.loc[::5, "internet_service"] = None
    rows.loc[::3, "monthly_charges"] = None
    frame = rows_to_frame(
        [{k: (None if v != v else v) for k, v in r.items()} for r in rows.to_dict("records")],
        version.columns,
        max_rows=1000,
    )
    predictor = services.predictors.get(version)
    if not predictor.compiled:
        return False
    pipeline = predictor._pipeline
    want = np.asarray(pipeline[:-1].transform(frame), dtype="float64")
    got = np.asarray(predictor._transform(frame), dtype="float64")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    scores = predictor.score(frame)
    assert scores.probabilities is not None
    np.testing.assert_allclose(scores.probabilities, pipeline[-1].predict_proba(want), atol=1e-12)
    codes = np.asarray(pipeline[-1].predict(want)).astype(int)
    labels = np.asarray(version.classes, dtype=object)[codes].tolist()
    assert scores.predictions == labels
    # The serving path hands the predictor a Table (no DataFrame): the same answers.
    table = rows_to_table(
        [{k: (None if v != v else v) for k, v in r.items()} for r in rows.to_dict("records")],
        version.columns,
        max_rows=1000,
    )
    from_table = predictor.score(table)
    assert from_table.predictions == scores.predictions
    assert from_table.probabilities == scores.probabilities
    return predictor.compiled


def test_string_labels_and_multiclass(services: Services) -> None:
    spec = TrainSpec("iris", "data", "target", "lightgbm", table="iris")
    version = train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version
    assert version.task == "classification"
    assert version.classes == ("setosa", "versicolor", "virginica")
    rows = [
        {k: float(v) for k, v in r.items()}
        for r in frames()["iris"].drop(columns=["target"]).head(3).to_dict(orient="records")
    ]
    scores = services.predictors.get(version).score(
        rows_to_frame(rows, version.columns, max_rows=10)
    )
    assert scores.predictions == ["setosa"] * 3


def test_an_algorithm_that_cannot_do_the_task_says_which_can(services: Services) -> None:
    spec = TrainSpec(
        "x", "data", "target", "logistic_regression", table="diabetes", task="regression"
    )
    with pytest.raises(InvalidInput, match="cannot do regression.*try linear_regression"):
        train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        )


# Last: by now the tests above have trained every case on this worker.
def test_every_model_predicts_the_same_after_loading_in_a_fresh_process(
    services: Services, trained: Trained, home: Path
) -> None:
    probes = {
        f"{name}-{task}": probe_rows(version, DATA_FOR[task])
        for (name, task), version in trained.items()
    }
    in_process = {
        f"{name}-{task}": scores_of(services, version, probes[f"{name}-{task}"])
        for (name, task), version in trained.items()
    }
    (home / "probes.json").write_text(json.dumps(probes))
    script = f"""
import json
from pathlib import Path
from mlgate.registry.service import resolve_version
from mlgate.schema import rows_to_frame
from tests.conftest import make_services
services = make_services(Path({str(home / "home")!r}))
out = {{}}
for model, rows in json.loads(Path({str(home / "probes.json")!r}).read_text()).items():
    version = resolve_version(services.uow(), model, None)
    frame = rows_to_frame(rows, version.columns, max_rows=1000)
    scores = services.predictors.get(version).score(frame)
    out[model] = {{"predictions": scores.predictions, "probabilities": scores.probabilities}}
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stderr
    fresh = json.loads(result.stdout)
    assert fresh.keys() == in_process.keys()
    for model, expected in in_process.items():
        assert fresh[model]["predictions"] == expected["predictions"], model
        assert fresh[model]["probabilities"] == expected["probabilities"], model
