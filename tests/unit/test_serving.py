"""The training and prediction use cases over the in-memory fakes: no database, no files, no
server. A model trained from an InMemorySource into an InMemoryArtifactStore serves a consumer
through its plan; refusals are metered and never counted; the clock is the test's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pandas as pd
import pytest

from mlgate.access.accounts import create_consumer
from mlgate.access.model import Principal, Target
from mlgate.errors import (
    MlgateError,
    PayloadTooLarge,
    TooManyRequests,
    UnknownColumns,
)
from mlgate.monitoring.recorder import PredictionRecorder
from mlgate.outcomes import status_of
from mlgate.plans import service as plans
from mlgate.plans.enforce import Gate
from mlgate.plans.flusher import UsageFlusher
from mlgate.plans.limiter import MemoryCounters
from mlgate.registry.service import resolve_version
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import Column, rows_to_table
from mlgate.serving.service import Asked, Serving, predict
from mlgate.sources import demo
from mlgate.sources.model import SourceConfig
from mlgate.training.service import TrainSpec, train_model
from tests.fakes import FixedClock, InMemoryArtifactStore, InMemorySource, in_memory_uow_factory

ACME = Principal("consumer", "acme", is_admin=False, scopes=frozenset({"predict"}))
ROWS = demo.churn_frame(n_rows=300)


class World:
    """A trained churn model, a plan of three calls a minute and at most five rows, and acme
    on it; all in memory."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.uow = in_memory_uow_factory()
        self.artifacts = InMemoryArtifactStore()
        with self.uow() as uow:
            uow.sources.add(SourceConfig("crm", "memory://crm", "sql", self.clock()))
            uow.commit()
        spec = TrainSpec("churn", "crm", demo.TARGET, "logistic_regression", table=demo.TABLE,
                         drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
        source = InMemorySource("crm", ROWS, demo.TABLE)
        self.version = train_model(
            self.uow(), self.artifacts, lambda config: source, spec, now=self.clock
        ).version
        plan = plans.make_plan("small", self.clock(), per_minute=3, max_rows_per_request=5)
        plans.create_plan(self.uow(), plan, by=None)
        create_consumer(self.uow(), by=None, name="acme", description="", now=self.clock())
        plans.subscribe(self.uow(), by=None, consumer="acme", plan="small", now=self.clock())
        self.counters = MemoryCounters()
        self.serving = Serving(
            gate=Gate(self.counters, self.uow, self.clock),
            predictors=PredictorCache(self.artifacts),
            resolve=lambda name, number, alias: resolve_version(self.uow(), name, number, alias),
            recorder=PredictionRecorder(self.uow, self.clock),
            observe=lambda model, version, outcome, rows: self.seen.append(
                (status_of(outcome), rows)
            ),
        )
        self.seen: list[tuple[int, int]] = []

    def call(self, n_rows: int) -> list[object]:
        frame = ROWS.drop(columns=[demo.ID_COLUMN, demo.TARGET]).head(n_rows)

        def parse(columns: Sequence[Column]) -> pd.DataFrame:
            return frame[[c.name for c in columns]]

        result, _headers = asyncio.run(
            predict(self.serving, ACME, Asked(Target("churn"), None, None), parse, request_id="r1")
        )
        return result.predictions

    def ledger(self) -> tuple[int, int]:
        UsageFlusher(self.counters, self.uow, self.clock).flush()
        with self.uow() as uow:
            day = self.clock().replace(hour=0)
            return uow.usage.totals(day, day.replace(hour=23)).get("consumer:acme", (0, 0))


def test_a_model_trained_from_memory_is_stored_and_versioned() -> None:
    world = World()
    assert world.version.number == 1 and world.version.task == "classification"
    assert world.version.artifact.key in world.artifacts.files
    assert 0.5 < world.version.metrics["accuracy"] <= 1.0
    with world.uow() as uow:
        assert [v.number for v in uow.models.versions("churn")] == [1]
        assert uow.models.pending() == []  # the journal is cleared once the row is in


def test_a_consumer_is_served_within_its_plan_and_metered() -> None:
    world = World()
    assert len(world.call(2)) == 2
    assert len(world.call(5)) == 5
    with pytest.raises(PayloadTooLarge, match="at most 5"):
        world.call(6)
    assert len(world.call(1)) == 1
    with pytest.raises(TooManyRequests):  # the fourth call this minute
        world.call(1)
    assert world.seen == [(200, 2), (200, 5), (413, 0), (200, 1), (429, 0)]
    assert world.ledger() == (3, 8)  # counted: the three served calls and their rows
    world.clock.advance(minutes=1)  # a new window: no waiting
    assert len(world.call(1)) == 1


def test_an_unknown_model_is_metered_as_such_and_counts_nothing() -> None:
    world = World()
    with pytest.raises(MlgateError):
        asyncio.run(predict(world.serving, ACME, Asked(Target("nope"), None, None),
                            lambda columns: pd.DataFrame(), request_id="r2"))  # fmt: skip
    assert world.seen == [(404, 0)] and world.ledger() == (0, 0)


@pytest.mark.parametrize("named", [Target("churn"), Target("churn", version=1)])
def test_an_unknown_column_points_to_the_schema_of_the_model_as_named(named: Target) -> None:
    world = World()
    row = ROWS.drop(columns=[demo.ID_COLUMN, demo.TARGET]).head(1).to_dict("records")[0]
    row["tenure_month"] = row.pop("tenure_months")
    asked = Asked(named, named.version, None)
    with pytest.raises(UnknownColumns) as caught:
        asyncio.run(predict(world.serving, ACME, asked,
                            lambda columns: rows_to_table([row], columns, max_rows=5),
                            request_id="r3"))  # fmt: skip
    message = str(caught.value)
    assert "did you mean 'tenure_months'?" in message
    assert f"GET /v1/models/{named}/schema lists the columns {named} takes" in message
    assert "{name}" not in message and "1 more problems" not in message
    assert [e.field for e in caught.value.errors] == [
        "rows[0].tenure_month",
        "rows[0].tenure_months",
    ]
    assert world.seen == [(422, 0)]  # refused: metered with its status, counted nowhere
