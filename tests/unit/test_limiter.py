"""Windows, the pure decision, and the in-process counters under concurrent calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from mlgate.plans.limiter import MemoryCounters, bucket, charges, decide
from mlgate.plans.metering import UsageEvent
from mlgate.plans.model import Limit, Plan

NOW = datetime(2026, 11, 27, 16, 59, 58, 500_000, tzinfo=UTC)


def event(rows: int = 1) -> UsageEvent:
    return UsageEvent(NOW, "consumer:acme", "mlg_x", "churn", 1, 200, rows, 2.0)


def test_windows_are_utc_aligned_and_know_when_they_end() -> None:
    assert bucket("second", NOW)[1:] == (1, 1)
    assert bucket("minute", NOW)[1] == 2
    assert bucket("hour", NOW)[1] == 2
    assert bucket("day", NOW) == ("2026-11-27", 7 * 3600 + 2, 86_400)
    name, reset, length = bucket("month", NOW)
    assert (name, length) == ("2026-11", 30 * 86_400)
    assert reset == 3 * 86_400 + 7 * 3600 + 2  # 1 December, 00:00 UTC


def test_a_plan_lists_rate_limits_as_hard_and_quotas_as_its_mode_says() -> None:
    hard = Plan("p", NOW, per_minute=10, requests_per_month=100, rows_per_day=5)
    assert [(x.name, x.hard) for x in hard.limits()] == [
        ("requests per minute", True),
        ("requests per month", True),
        ("rows per day", True),
    ]
    soft = Plan("p", NOW, per_minute=10, requests_per_month=100, overage=True)
    assert [x.hard for x in soft.limits()] == [True, False]


def test_decide_refuses_past_a_hard_limit_and_counts_overage_past_a_soft_one() -> None:
    rows_quota = charges("a", [Limit("rows", "month", 100, hard=True)], 30, NOW)
    assert decide(rows_quota, [70], 30)[0] is True
    allowed, blocked, _ = decide(rows_quota, [71], 30)
    assert not allowed and blocked is not None and blocked.used == 71
    soft_rows = charges("a", [Limit("rows", "month", 100, hard=False)], 30, NOW)
    assert decide(soft_rows, [90], 30) == (True, None, 20)
    assert decide(soft_rows, [150], 30) == (True, None, 30)
    soft_requests = charges("a", [Limit("requests", "month", 5, hard=False)], 30, NOW)
    assert decide(soft_requests, [5], 30) == (True, None, 30)


def test_memory_counters_stay_exact_under_concurrent_calls() -> None:
    counters = MemoryCounters()
    limits = [Limit("requests", "month", 1000, hard=True), Limit("rows", "month", 10**9, hard=True)]
    allowed: list[int] = []

    def client() -> None:
        for _ in range(50):
            ok, *_ = counters.commit(charges("consumer:acme", limits, 3, NOW), 3, event(3))
            if ok:
                allowed.append(1)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 1000
    keys = [c.key for c in charges("consumer:acme", limits, 3, NOW)]
    assert counters.peek(keys) == [1000, 3000]
    [(_batch, aggregates)] = counters.drain()
    assert list(aggregates.values()) == [[1000, 3000, 0, 2000, 0]]


def test_seeding_never_overwrites_a_live_counter() -> None:
    counters = MemoryCounters()
    counters.seed({"a:requests:month:2026-11": (7, 60)})
    counters.seed({"a:requests:month:2026-11": (3, 60)})
    assert counters.peek(["a:requests:month:2026-11"]) == [7]


def test_drained_batches_are_handed_over_until_acknowledged() -> None:
    counters = MemoryCounters()
    counters.meter(event())
    first = counters.drain()
    assert len(first) == 1
    assert counters.drain() == first  # not acknowledged: offered again (a failed write)
    counters.drained(first[0][0])
    assert counters.drain() == []
