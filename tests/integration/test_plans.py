"""Plans and subscriptions on the metadata databases; counters in a real Redis; the ledger."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mlgate.access import accounts
from mlgate.bootstrap import Services
from mlgate.errors import FieldError, InvalidInput, NotFound, NotReady
from mlgate.plans import service
from mlgate.plans.flusher import UsageFlusher, reconcile
from mlgate.plans.limiter import MemoryCounters, charges
from mlgate.plans.metering import UsageEvent
from mlgate.plans.model import Limit
from mlgate.plans.redis_counters import RedisCounters

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def event(rows: int = 1, status: int = 200, at: datetime = NOW) -> UsageEvent:
    return UsageEvent(at, "consumer:acme", "mlg_0123", "churn", 1, status, rows, 4.0)


def test_bad_plans_and_subscriptions_get_clear_errors(any_services: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.make_plan("p", NOW, per_minute=0, rows_per_month=-5, price_per_1k_rows="x")
    fields = [e.field for e in caught.value.errors]
    assert fields == ["per_minute", "rows_per_month", "price_per_1k_rows"]
    assert all(isinstance(e, FieldError) for e in caught.value.errors)
    with pytest.raises(InvalidInput, match="plan names are"):
        service.make_plan("no spaces please", NOW)
    service.create_plan(any_services.uow(), service.make_plan("pro", NOW, per_minute=5), by=None)
    accounts.create_consumer(any_services.uow(), by=None, name="acme", description="", now=NOW)
    with pytest.raises(NotFound, match="no plan named 'gold'"):
        service.subscribe(any_services.uow(), by=None, consumer="acme", plan="gold", now=NOW)
    with pytest.raises(NotFound, match="no consumer named 'nobody'"):
        service.subscribe(any_services.uow(), by=None, consumer="nobody", plan="pro", now=NOW)
    with pytest.raises(InvalidInput, match="end after it starts"):
        service.subscribe(
            any_services.uow(), by=None, consumer="acme", plan="pro", now=NOW, ends_at=NOW
        )
    with pytest.raises(NotFound, match="cannot pin churn@3"):
        service.subscribe(
            any_services.uow(), by=None, consumer="acme", plan="pro", now=NOW, pins={"churn": 3}
        )
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        service.usage(any_services.uow(), by=None, month="November")


def test_changing_plan_takes_effect_at_once(any_services: Services) -> None:
    uow = any_services.uow
    for name in ("basic", "pro"):
        service.create_plan(uow(), service.make_plan(name, NOW), by=None)
    accounts.create_consumer(uow(), by=None, name="acme", description="", now=NOW)
    service.subscribe(uow(), by=None, consumer="acme", plan="basic", now=NOW)
    later = NOW + timedelta(days=3)
    service.subscribe(uow(), by=None, consumer="acme", plan="pro", now=later)
    found = service.active_subscription(uow(), "acme", later)
    assert found is not None and found[1].name == "pro"
    first, second = service.subscriptions_of(uow(), "acme")
    assert first.ends_at == later and second.starts_at == later
    assert service.active_subscription(uow(), "acme", NOW + timedelta(days=1)) is not None
    with pytest.raises(Exception, match="subscribe to 'pro'"):
        service.delete_plan(uow(), "pro", by=None, now=later)


def test_redis_counters_stay_exact_under_concurrent_calls(redis_url: tuple[str, str]) -> None:
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    limits = [Limit("requests", "month", 500, hard=True), Limit("rows", "month", 10**9, hard=True)]
    allowed: list[int] = []

    def client() -> None:
        mine = RedisCounters(redis_url[0], prefix=redis_url[1])  # a worker of its own
        for _ in range(20):
            ok, *_ = mine.commit(charges("consumer:acme", limits, 2, NOW), 2, event(2))
            if ok:
                allowed.append(1)
        mine.close()

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 500
    keys = [c.key for c in charges("consumer:acme", limits, 2, NOW)]
    assert counters.peek(keys) == [500, 1000]
    [(batch, aggregates)] = counters.drain()
    assert aggregates == {event().key: [500, 1000, 0, 2000, 0]}
    counters.drained(batch)
    assert counters.drain() == []
    counters.close()


def test_async_commits_stay_exact_and_share_round_trips(redis_url: tuple[str, str]) -> None:
    """What a server's event loop does: many calls at once, from several loops (workers)."""
    limits = [Limit("requests", "month", 300, hard=True), Limit("rows", "month", 10**9, hard=True)]
    allowed: list[int] = []
    writes: list[int] = []

    def worker() -> None:
        mine = RedisCounters(redis_url[0], prefix=redis_url[1])

        async def calls() -> None:
            for _ in range(4):  # four turns of 32 calls each, as 32 clients would send
                results = await asyncio.gather(*[
                    mine.commit_async(charges("consumer:acme", limits, 3, NOW), 3, event(3))
                    for _ in range(32)
                ])  # fmt: skip
                allowed.extend(1 for ok, *_ in results if ok)
            writes.append(mine.writes)
            await mine.aclose()

        asyncio.run(calls())
        mine.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 300  # of 512 calls: exactly the quota, none past it
    assert all(w <= 8 for w in writes), writes  # 128 calls a worker, in a few writes
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    keys = [c.key for c in charges("consumer:acme", limits, 3, NOW)]
    assert counters.peek(keys) == [300, 900]
    [(_, aggregates)] = counters.drain()
    assert aggregates == {event().key: [300, 900, 0, 1200, 0]}  # metered once each, in the script
    counters.close()


def test_async_commits_reload_a_flushed_script_and_refuse_as_the_sync_path(
    redis_url: tuple[str, str],
) -> None:
    import redis

    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    limits = [Limit("requests", "month", 2, hard=True)]

    async def calls() -> list[tuple[bool, object, int, list[int]]]:
        first = await counters.commit_async(charges("a", limits, 1, NOW), 1, event())
        redis.Redis.from_url(redis_url[0]).script_flush()  # as after a Redis restart
        rest = [await counters.commit_async(charges("a", limits, 1, NOW), 1, event())
                for _ in range(2)]  # fmt: skip
        await counters.aclose()
        return [first, *rest]

    (ok1, _, _, after1), (ok2, _, _, after2), (ok3, blocked, _, _) = asyncio.run(calls())
    assert (ok1, after1, ok2, after2) == (True, [1], True, [2])
    assert ok3 is False and blocked is not None and blocked.used == 2
    assert blocked.limit.name == "requests per month"
    counters.close()


def test_async_commits_to_an_unreachable_redis_fail_closed() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0")
    limits = [Limit("requests", "month", 5, hard=True)]

    async def call() -> None:
        await counters.commit_async(charges("a", limits, 1, NOW), 1, event())

    with pytest.raises(NotReady, match="unreachable"):
        asyncio.run(call())


def test_redis_counts_overage_and_meters_refusals(redis_url: tuple[str, str]) -> None:
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    soft = [Limit("rows", "month", 10, hard=False)]
    results = [counters.commit(charges("a", soft, 4, NOW), 4, event(4)) for _ in range(4)]
    assert [r[2] for r in results] == [0, 0, 2, 4]
    counters.meter(event(7, status=429))
    [(_, aggregates)] = counters.drain()
    assert aggregates[event().key] == [4, 16, 6, 16, 0]
    assert aggregates[event(status=429).key] == [1, 7, 0, 4, 0]


def test_an_unreachable_redis_fails_closed() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0")
    limits = [Limit("requests", "month", 5, hard=True)]
    with pytest.raises(NotReady, match="unreachable"):
        counters.commit(charges("a", limits, 1, NOW), 1, event())


def test_the_ledger_takes_each_batch_once_and_reseeds_counters(
    any_services: Services, redis_url: tuple[str, str]
) -> None:
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    limits = [Limit("requests", "month", 1000, hard=True), Limit("rows", "month", 10**6, hard=True)]
    now = datetime.now(UTC)
    for rows in (3, 5, 7):
        counters.commit(charges("consumer:acme", limits, rows, now), rows, event(rows, at=now))
    counters.meter(event(2, status=422, at=now))
    # A flusher that wrote the batch and died before forgetting it: the next one skips it.
    [(batch, aggregates)] = counters.drain()
    with any_services.uow() as uow:
        assert uow.usage.add_batch(batch, aggregates, now) is True
        uow.commit()
    flusher = UsageFlusher(counters, any_services.uow, lambda: now)
    assert flusher.flush() == 1
    with any_services.uow() as uow:
        assert uow.usage.add_batch(batch, aggregates, now) is False
    month = now.strftime("%Y-%m")
    rows = service.usage(any_services.uow(), by=None, month=month, consumer="acme", group="month")
    assert [(r.status, r.requests, r.rows) for r in rows] == [(200, 3, 15), (422, 1, 2)]
    # Redis lost everything: the counters come back from the ledger (counted calls only).
    fresh = MemoryCounters()
    assert reconcile(fresh, any_services.uow, now) == 4
    keys = [c.key for c in charges("consumer:acme", limits, 1, now)]
    assert fresh.peek(keys) == [3, 15]
    counters.close()


def test_the_bill_prices_rows_and_overage_rows(any_services: Services) -> None:
    uow = any_services.uow
    plan = service.make_plan(
        "metered", NOW, rows_per_month=10, overage=True,
        price_per_1k_rows="2.00", price_per_1k_overage_rows="5.00",
    )  # fmt: skip
    service.create_plan(uow(), plan, by=None)
    accounts.create_consumer(uow(), by=None, name="acme", description="", now=NOW)
    service.subscribe(uow(), by=None, consumer="acme", plan="metered", now=NOW - timedelta(days=1))
    counters = MemoryCounters()
    for rows in (6, 6, 1000):
        counters.commit(charges("consumer:acme", plan.limits(), rows, NOW), rows, event(rows))
    UsageFlusher(counters, uow, lambda: NOW).flush()
    text = service.bill_csv(uow(), by=None, consumer="acme", month="2026-11")
    header, line = text.strip().splitlines()
    values = dict(zip(header.split(","), line.split(","), strict=True))
    assert values["rows"] == "1012" and values["overage_rows"] == "1002"
    # 10 rows at 2.00 per 1,000 and 1,002 at 5.00 per 1,000
    assert Decimal(values["amount"]) == Decimal("5.03")


def test_redis_meters_explained_rows_apart(redis_url: tuple[str, str]) -> None:
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    quota = [Limit("rows", "month", 100, hard=True)]
    explained = replace(event(3), explained_rows=3)
    assert counters.commit(charges("a", quota, 3, NOW), 3, explained)[0]
    assert counters.commit(charges("a", quota, 2, NOW), 2, event(2))[0]

    async def through_the_loop() -> None:
        await counters.commit_async(
            charges("a", quota, 4, NOW), 4, replace(event(4), explained_rows=4)
        )
        await counters.aclose()

    asyncio.run(through_the_loop())
    [(_, aggregates)] = counters.drain()
    assert aggregates[event().key] == [3, 9, 0, 12, 7]
