"""train_model over an in-memory source: what gets registered, and what is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.training.service import STAGES, TrainResult, TrainSpec, train_model
from tests.fakes import InMemorySource


def labelled(n_rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_rows)
    return pd.DataFrame(
        {
            "x": x,
            "colour": rng.choice(["red", "blue"], n_rows),
            "label": np.where(x + rng.normal(scale=0.5, size=n_rows) > 0, "yes", "no"),
        }
    )


def train(services: Services, frame: pd.DataFrame, **changes: object) -> TrainResult:
    source = InMemorySource("mem", frame)
    with services.uow() as uow:
        if uow.sources.get("mem") is None:
            uow.sources.add(SourceConfig("mem", "memory://", "sql", services.clock()))
            uow.commit()

    def opener(config: SourceConfig) -> Source:
        return source

    spec = {
        "model_name": "m",
        "source": "mem",
        "target": "label",
        "algorithm": "logistic_regression",
    }
    spec.update({"table": "rows", **changes})
    return train_model(
        services.uow(),
        services.artifacts,
        opener,
        TrainSpec(**spec),
        now=services.clock,  # type: ignore[arg-type]
    )


def test_string_labels_become_the_classes(services: Services) -> None:
    result = train(services, labelled())
    assert result.version.classes == ("no", "yes")
    assert result.version.metrics["accuracy"] > 0.7


def test_rows_without_a_target_are_left_out_and_counted(services: Services) -> None:
    frame = labelled()
    frame.loc[:9, "label"] = None
    result = train(services, frame)
    assert result.n_rows_without_target == 10
    assert result.version.lineage.n_rows == 120


def test_progress_reports_every_stage_in_order(services: Services) -> None:
    seen: list[str] = []
    train(services, labelled(), model_name="p")
    source = InMemorySource("mem", labelled())
    train_model(
        services.uow(),
        services.artifacts,
        lambda config: source,
        TrainSpec("p", "mem", "label", "logistic_regression", table="rows"),
        now=services.clock,
        progress=lambda stage, detail: seen.append(stage),
    )
    assert seen == [s for s in STAGES if s != "tune"]  # no search was asked for
    assert source.closed


def test_a_new_version_must_predict_the_same_thing(services: Services) -> None:
    train(services, labelled())
    frame = labelled().assign(other=lambda f: f.label)
    with pytest.raises(InvalidInput, match="is a classification model of 'label'"):
        train(services, frame, target="other", drop=("label",))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_name": "bad/name"}, "model names are"),
        ({"test_size": 0.9}, "holdout fraction"),
        ({"drop": ("nope",)}, "cannot drop 'nope'"),
        ({"drop": ("label",)}, "is the target"),
        ({"drop": ("x", "colour")}, "no feature columns"),
        ({"params": {"no_such_param": 1}}, "has no parameter 'no_such_param'; its parameters: C,"),
        ({"params": {"C": -1.0}}, "could not be fitted.*'C' parameter"),
    ],
)
def test_bad_specs_are_refused_before_anything_is_stored(
    services: Services, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        train(services, labelled(), **changes)
    with services.uow() as uow:
        assert uow.models.all() == []


def test_a_target_that_is_not_classes_is_refused(services: Services) -> None:
    frame = labelled().assign(label=lambda f: f.x * 3.3)
    with pytest.raises(InvalidInput, match="fractional numbers"):
        train(services, frame)
    with pytest.raises(InvalidInput, match="single class"):
        train(services, labelled().assign(label="yes"))
