"""Tuning and automatic selection: cross-validated on training rows, recorded as a leaderboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.sources import demo
from mlgate.training.catalogue import CATALOGUE
from mlgate.training.folds import FoldFit
from mlgate.training.service import TrainSpec, train_model
from mlgate.training.tuning import TuneSpec, cross_validate
from tests.conftest import add_source_to, make_services


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("tuning")
    built = make_services(home / "home")
    demo.churn_frame(n_rows=600, seed=9).to_csv(home / "churn.csv", index=False)
    add_source_to(built, "d", str(home / "churn.csv"), cwd=home)
    yield built
    built.close()


def train(services: Services, **kw: object) -> ModelVersion:
    spec = TrainSpec(source="d", table="churn", target="churned", report=False, **kw)  # type: ignore[arg-type]
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def test_tuning_finds_parameters_at_least_as_good_as_the_defaults(services: Services) -> None:
    version = train(
        services, model_name="tuned", algorithm="lightgbm", tune=TuneSpec(trials=8, folds=3)
    )
    board = (version.report or {})["leaderboard"]
    assert len(board) == 1 and board[0]["trials"] == 8 and board[0]["metric"] == "log_loss"
    best = board[0]["params"]
    assert set(best) <= set(CATALOGUE["lightgbm"].space)
    for key, value in best.items():
        assert version.params[key] == value  # the registered model uses what the search found
    from mlgate.training import data as training_data
    from mlgate.training.service import split_rows

    frame = demo.churn_frame(n_rows=600, seed=9)
    prepared = training_data.prepare(frame, target="churned", drop=(), task="classification")
    split = split_rows(prepared, 0.2, 42)
    lightgbm = FoldFit(
        CATALOGUE["lightgbm"],
        "classification",
        prepared.columns,
        split.X_train,
        split.y_train,
        None,
        n_classes=2,
        seed=42,
    )
    default, _ = cross_validate(lightgbm, 3)
    assert board[0]["cv_score"] <= default


def test_auto_keeps_the_best_cross_validated_candidate(services: Services) -> None:
    version = train(services, model_name="auto", algorithm="auto")
    board = (version.report or {})["leaderboard"]
    names = [row["algorithm"] for row in board]
    assert {"logistic_regression", "random_forest", "lightgbm"} <= set(names)
    scores = [row["cv_score"] for row in board]
    assert scores == sorted(scores)
    assert version.algorithm == names[0]
    assert version.task == "classification"


def test_a_time_budget_ends_the_search(services: Services) -> None:
    version = train(
        services, model_name="timed", algorithm="random_forest", tune=TuneSpec(seconds=2, folds=2)
    )
    assert (version.report or {})["leaderboard"][0]["trials"] >= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trials=50", TuneSpec(trials=50)),
        ("time=5m", TuneSpec(seconds=300)),
        ("trials=20, time=90s, folds=3", TuneSpec(trials=20, seconds=90, folds=3)),
        ("time=1.5h", TuneSpec(seconds=5400)),
    ],
)
def test_tune_specs_parse(text: str, expected: TuneSpec) -> None:
    assert TuneSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["", "trials=0", "time=soon", "folds=3", "trials=5,folds=1"])
def test_bad_tune_specs_say_how_to_write_them(text: str) -> None:
    with pytest.raises(InvalidInput, match="trials="):
        TuneSpec.parse(text)


def test_cross_validated_metrics_are_reported_when_asked(services: Services) -> None:
    version = train(services, model_name="cv", algorithm="logistic_regression", cv=3)
    cv = (version.report or {})["cv"]
    assert cv["folds"] == 3
    mean, sd = cv["metrics"]["accuracy"]
    assert 0.5 < mean < 1 and 0 <= sd < 0.2
    assert set(cv["metrics"]) == set(version.metrics)
    with pytest.raises(InvalidInput, match="2 to 20 folds"):
        train(services, model_name="cv", algorithm="logistic_regression", cv=1)
