"""Plans, subscriptions and the usage ledger: the same behaviour from the in-memory fake and
from SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mlgate.access.model import Target
from mlgate.errors import AlreadyExists, NotFound
from mlgate.plans.model import Aggregates, Plan, Subscription, UsageRow, UsageTrace
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_plans_round_trip_with_every_setting(uow_factory: UowFactory) -> None:
    pro = Plan(
        "pro", T0, per_second=5, per_minute=100, requests_per_month=10_000, rows_per_day=50_000,
        max_rows_per_request=500, models=(Target("churn", alias="production"),), overage=True,
        price_per_1k_rows=Decimal("0.40"), price_per_1k_overage_rows=Decimal("0.75"),
        description="for teams",
    )  # fmt: skip
    with uow_factory() as uow:
        uow.plans.add(pro)
        uow.plans.add(Plan("free", T0, per_minute=10))
        uow.commit()
    with uow_factory() as uow:
        assert uow.plans.get("pro") == pro
        assert [p.name for p in uow.plans.all()] == ["free", "pro"]
        with pytest.raises(AlreadyExists):
            uow.plans.add(pro)
        uow.plans.save(replace(pro, per_minute=200, price_per_1k_rows=None))
        uow.commit()
    with uow_factory() as uow:
        assert uow.plans.get("pro") == replace(pro, per_minute=200, price_per_1k_rows=None)
        uow.plans.remove("free")
        uow.commit()
    with uow_factory() as uow:
        assert uow.plans.get("free") is None
        with pytest.raises(NotFound):
            uow.plans.remove("free")


def test_subscriptions_get_ids_are_listed_by_start_and_end(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        later = uow.plans.add_subscription(
            Subscription(0, "acme", "pro", T0 + timedelta(days=1), T0, pins={"churn": 2})
        )
        first = uow.plans.add_subscription(Subscription(0, "acme", "free", T0, T0))
        other = uow.plans.add_subscription(Subscription(0, "globex", "free", T0, T0))
        uow.commit()
    assert len({later.id, first.id, other.id}) == 3 and later.pins == {"churn": 2}
    with uow_factory() as uow:
        assert uow.plans.subscriptions("acme") == [first, later]
        assert [s.consumer for s in uow.plans.subscriptions()] == ["acme", "globex", "acme"]
        uow.plans.end_subscription(first.id, T0 + timedelta(days=1))
        uow.commit()
    with uow_factory() as uow:
        assert uow.plans.subscriptions("acme")[0].ends_at == T0 + timedelta(days=1)


def test_a_usage_batch_is_written_once_and_summed_by_period(uow_factory: UowFactory) -> None:
    batch: Aggregates = {
        ("2026-11-27T12", "consumer:acme", "mlg_1", "churn", "1", "200"): [3, 30, 0, 12],
        ("2026-11-27T13", "consumer:acme", "mlg_1", "churn", "1", "200"): [2, 20, 5, 8],
        ("2026-11-27T13", "consumer:acme", "mlg_1", "churn", "1", "429"): [4, 0, 0, 1],
        ("2026-11-28T09", "consumer:globex", "mlg_2", "spend", "2", "200"): [1, 1, 0, 3],
    }
    with uow_factory() as uow:
        assert uow.usage.add_batch("b1", batch, T0) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.usage.add_batch("b1", batch, T0) is False  # written before: nothing again
        uow.commit()
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=30)
    with uow_factory() as uow:
        by_day = uow.usage.query(since=since, until=until, by="day")
        by_hour = uow.usage.query(since=since, until=until, by="hour", account="consumer:acme")
        by_month = uow.usage.query(since=since, until=until, by="month", model="spend")
        totals = uow.usage.totals(since, until)
        none = uow.usage.totals(T0 + timedelta(days=2), until)
    assert by_day == [
        UsageRow("2026-11-27", "consumer:acme", "mlg_1", "churn", 1, 200, 5, 50, 5, 20),
        UsageRow("2026-11-27", "consumer:acme", "mlg_1", "churn", 1, 429, 4, 0, 0, 1),
        UsageRow("2026-11-28", "consumer:globex", "mlg_2", "spend", 2, 200, 1, 1, 0, 3),
    ]
    assert [r.period for r in by_hour] == ["2026-11-27T12", "2026-11-27T13", "2026-11-27T13"]
    assert by_month == [
        UsageRow("2026-11", "consumer:globex", "mlg_2", "spend", 2, 200, 1, 1, 0, 3)
    ]
    assert totals == {"consumer:acme": (5, 50), "consumer:globex": (1, 1)}  # refusals not counted
    assert none == {}


def test_traced_calls_ids_are_named_on_the_usage_rows_they_fall_in(
    uow_factory: UowFactory,
) -> None:
    batch: Aggregates = {
        ("2026-11-27T12", "consumer:acme", "mlg_1", "churn", "1", "200"): [3, 30, 0, 12, 0],
        ("2026-11-27T13", "consumer:acme", "mlg_1", "churn", "1", "200"): [9, 90, 0, 30, 0],
        ("2026-11-27T13", "consumer:acme", "mlg_1", "churn", "1", "429"): [1, 0, 0, 1, 0],
    }
    noon, one = datetime(2026, 11, 27, 12, tzinfo=UTC), datetime(2026, 11, 27, 13, tzinfo=UTC)
    traces = [
        UsageTrace(noon, "consumer:acme", "mlg_1", "churn", 1, 200, "a" * 32),
        *(UsageTrace(one, "consumer:acme", "mlg_1", "churn", 1, 200, f"{i:032x}")
          for i in range(5)),  # more than a row names
        UsageTrace(one, "consumer:acme", "mlg_1", "churn", 1, 429, "f" * 32),
        UsageTrace(one, "consumer:globex", "mlg_2", "churn", 1, 200, "e" * 32),  # no such row
    ]  # fmt: skip
    with uow_factory() as uow:
        uow.usage.add_batch("t1", batch, T0)
        uow.usage.add_traces(traces)
        uow.commit()
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=30)
    with uow_factory() as uow:
        by_hour = uow.usage.query(since=since, until=until, by="hour", account="consumer:acme")
        by_day = uow.usage.query(since=since, until=until, by="day")
    assert [(r.period, r.status, r.trace_ids) for r in by_hour] == [
        ("2026-11-27T12", 200, ("a" * 32,)),
        ("2026-11-27T13", 200, tuple(f"{i:032x}" for i in range(3))),
        ("2026-11-27T13", 429, ("f" * 32,)),
    ]
    assert [(r.status, r.trace_ids) for r in by_day] == [
        (200, ("a" * 32, f"{0:032x}", f"{1:032x}")),  # the day's first three
        (429, ("f" * 32,)),
    ]
