"""Traced calls' ids kept for the ledger: the first few per aggregate and hour, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlgate.plans.metering import UsageEvent, UsageTraces

pytestmark = pytest.mark.fast
NOON = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)


def event(at: datetime = NOON, status: int = 200, consumer: str = "consumer:acme") -> UsageEvent:
    return UsageEvent(at, consumer, "mlg_1", "churn", 1, status, rows=1, latency_ms=1.0)


def test_the_first_few_per_aggregate_and_hour_are_kept() -> None:
    traces = UsageTraces(per_key=2)
    for i in range(5):
        traces.offer(event(), f"{i:032x}")
    traces.offer(event(status=429), "f" * 32)  # another aggregate
    traces.offer(event(NOON + timedelta(hours=1)), "e" * 32)  # the next hour starts afresh
    traces.offer(event(NOON + timedelta(hours=1)), "d" * 32)
    traces.offer(event(NOON + timedelta(hours=1)), "c" * 32)
    taken = traces.take()
    assert [(t.hour.hour, t.status, t.trace_id) for t in taken] == [
        (12, 200, f"{0:032x}"), (12, 200, f"{1:032x}"), (12, 429, "f" * 32),
        (13, 200, "e" * 32), (13, 200, "d" * 32),
    ]  # fmt: skip
    assert traces.take() == []
    assert taken[0].hour == datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_full_collector_drops_rather_than_grows() -> None:
    traces = UsageTraces(capacity=3, per_key=100)
    for i in range(10):
        traces.offer(event(consumer=f"consumer:c{i}"), f"{i:032x}")
    assert len(traces.take()) == 3
