"""Fitting for inference on every row (`--test-size 0`), over the in-memory fakes: metrics from
cross-fitted predictions, leave-one-out on small tables, no degenerate interval, no library
warning let loose (pytest turns any into an error), and what cannot use it says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from statsmodels.datasets import longley

from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import read_attachment
from mlgate.sources.model import SourceConfig
from mlgate.training.compare import compare_versions
from mlgate.training.evaluate import MIN_INTERVAL_ROWS
from mlgate.training.service import TrainSpec, train_model
from tests.fakes import FixedClock, InMemoryArtifactStore, InMemorySource, in_memory_uow_factory

LONGLEY = longley.load_pandas().data  # 16 rows, 6 strongly collinear predictors


class World:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.clock = FixedClock()
        self.uow = in_memory_uow_factory()
        self.artifacts = InMemoryArtifactStore()
        with self.uow() as uow:
            uow.sources.add(SourceConfig("db", "memory://db", "sql", self.clock()))
            uow.commit()
        self.source = InMemorySource("db", frame, "rows")

    def train(self, target: str, algorithm: str, **extra: object) -> ModelVersion:
        spec = TrainSpec("m", "db", target, algorithm, table="rows", **extra)  # type: ignore[arg-type]
        return train_model(
            self.uow(), self.artifacts, lambda config: self.source, spec, now=self.clock
        ).version


def test_a_16_row_table_is_fitted_on_every_row_and_evaluated_leave_one_out() -> None:
    world = World(LONGLEY)
    version = world.train("TOTEMP", "linear_regression", test_size=0.0, report=False)
    evaluation = (version.report or {})["evaluation"]
    assert evaluation["method"] == "leave-one-out predictions (16 fits)"
    assert evaluation["n_holdout"] == 16 and version.lineage.test_size == 0
    assert (version.report or {})["n_train"] == 16  # the served model learnt every row
    # The metrics are those of leave-one-out predictions, computed here with scikit-learn alone.
    X, y = LONGLEY.drop(columns="TOTEMP"), LONGLEY["TOTEMP"]
    expected = cross_val_predict(LinearRegression(), X, y, cv=LeaveOneOut())
    assert version.metrics["rmse"] == pytest.approx(np.sqrt(np.mean((expected - y) ** 2)), 1e-6)
    # The baseline is cross-fitted alike: each row's is the mean of the 15 others.
    others = (y.sum() - y) / (len(y) - 1)
    baseline_rmse = np.sqrt(np.mean((others - y) ** 2))
    assert evaluation["baseline"]["rmse"] == pytest.approx(baseline_rmse, 1e-9)
    assert evaluation["baseline_kind"].endswith("from the other folds")
    # 16 rows are too few for a bootstrap interval: none, and one note that says why.
    assert evaluation["intervals"] == {}
    assert len(evaluation["notes"]) == 1 and "too few to resample" in evaluation["notes"][0]
    assert evaluation["notes"][0] in (version.report or {})["notes"]


def test_a_larger_table_gets_five_folds_and_intervals_and_cv_sets_the_folds() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["label"] = (x @ [1.5, -1.0, 0.5] + rng.logistic(size=120) > 0).astype(int)
    world = World(frame)
    version = world.train("label", "logistic_regression", test_size=0.0, report=False)
    evaluation = (version.report or {})["evaluation"]
    assert evaluation["method"] == "5-fold cross-fitted predictions"
    assert evaluation["n_holdout"] == 120 and evaluation["notes"] == []
    low, high = evaluation["intervals"]["accuracy"]
    assert low < version.metrics["accuracy"] < high
    again = world.train("label", "logistic_regression", test_size=0.0, cv=3, report=False)
    assert (again.report or {})["evaluation"]["method"] == "3-fold cross-fitted predictions"


def test_the_report_names_the_method_and_a_tiny_holdout_gets_a_note_not_an_interval() -> None:
    world = World(LONGLEY)
    version = world.train("TOTEMP", "linear_regression", test_size=0.0)
    html = read_attachment(world.uow(), world.artifacts, version, "report.html").decode()
    assert "Metrics of leave-one-out predictions (16 fits) on all 16 rows" in html
    assert "Holdout metrics" not in html
    held = world.train("TOTEMP", "linear_regression", test_size=0.2, report=False)
    evaluation = (held.report or {})["evaluation"]
    assert evaluation["n_holdout"] == 4 and evaluation["intervals"] == {}
    [note] = evaluation["notes"]  # one note, however many metrics were undefined
    assert f"at least {MIN_INTERVAL_ROWS}" in note and "--test-size 0" in note


def test_what_cannot_fit_on_every_row_says_so() -> None:
    world = World(LONGLEY)
    with pytest.raises(InvalidInput, match="must be 0 .* or lie in"):
        world.train("TOTEMP", "linear_regression", test_size=0.01)
    with pytest.raises(InvalidInput, match="leave out --dask"):
        world.train("TOTEMP", "linear_regression", test_size=0.0, dask="local")
    first = world.train("TOTEMP", "linear_regression", test_size=0.25, report=False)
    every = world.train("TOTEMP", "linear_regression", test_size=0.0, report=False)
    with pytest.raises(InvalidInput, match="no unseen rows to compare on"):
        compare_versions(world.uow(), world.artifacts, None, "m", first.number, every.number,
                         now=world.clock())  # type: ignore[arg-type]  # fmt: skip


def test_leave_one_out_matches_scikit_learn_for_a_classifier_too() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["label"] = np.where(x[:, 0] + rng.normal(scale=0.8, size=24) > 0, "yes", "no")
    version = World(frame).train("label", "logistic_regression", test_size=0.0, report=False)
    evaluation = (version.report or {})["evaluation"]
    assert evaluation["method"] == "leave-one-out predictions (24 fits)"
    assert evaluation["n_holdout"] == 24 and version.classes == ("no", "yes")
    assert set(version.metrics) >= {"accuracy", "log_loss"}
