"""Spend caps and quota thresholds over the in-memory fakes: the Gate (plans/enforce.py) on
MemoryCounters and InMemoryUnitOfWork, the Notifier (plans/thresholds.py) with a delivery
double that keeps what it was asked to send, and the use cases of plans/service.py. A spend
cap refuses the call that would pass it, to the cent, until it is raised or the month ends;
each threshold of each quota and of the cap is recorded once, audited and delivered once to the
consumer's webhook and the operator's. The same over Redis with 64 clients, PostgreSQL, and a
real HTTP receiver: tests/integration/test_spend_caps.py and test_thresholds.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mlgate.access import accounts
from mlgate.access.model import AuditQuery, Principal, Target
from mlgate.errors import (
    AddressRefused,
    InvalidInput,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    TooManyRequests,
)
from mlgate.outbound.client import Outbound
from mlgate.plans import service
from mlgate.plans.enforce import Gate
from mlgate.plans.flusher import UsageFlusher, reconcile
from mlgate.plans.limiter import MemoryCounters, spend_charge
from mlgate.plans.model import Crossing
from mlgate.plans.thresholds import Notifier, describe
from tests.fakes import FixedClock, InMemoryUnitOfWork, in_memory_uow_factory
from tests.unit.registry_records import a_version

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACME = Principal("consumer", "acme", False, frozenset({"predict"}), key_prefix="k1")
ADMIN = Principal("user", "ann", True, frozenset({"admin"}))
VERSION = a_version(1)
# hooks.example resolves nowhere: the checks of a webhook's address need a public answer
PUBLIC = Outbound(resolver=lambda host, port: ["93.184.215.14"])


@dataclass
class Shop:
    """acme on a plan, a gate on counters in this process, and every crossing it reports."""

    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    uow: Callable[[], InMemoryUnitOfWork] = field(default_factory=in_memory_uow_factory)
    counters: MemoryCounters = field(default_factory=MemoryCounters)
    crossed: list[Crossing] = field(default_factory=list)

    def open(self, plan: str, **settings: Any) -> Gate:
        accounts.create_consumer(self.uow(), by=None, name="acme", description="", now=NOW)
        made = service.make_plan(plan, NOW, **settings)
        service.create_plan(self.uow(), made, by=None)
        service.subscribe(self.uow(), by=None, consumer="acme", plan=plan, now=NOW)
        return self.gate()

    def gate(self) -> Gate:
        """A fresh gate each time: a change of plan or cap is read at once (no cache)."""
        return Gate(self.counters, self.uow, self.clock, cache_seconds=0,
                    on_crossings=self.crossed.extend)  # fmt: skip

    def call(self, gate: Gate, rows: int) -> dict[str, str]:
        admission = gate.open(ACME)
        gate.admit(admission, Target("churn"), rows, VERSION)
        return gate.settle(admission, VERSION)

    def ledger(self) -> list[tuple[int, int, int]]:
        """(status, requests, rows) of acme's month, once the flusher wrote what was metered."""
        UsageFlusher(self.counters, self.uow, self.clock).flush()
        start, end = service.month_bounds(self.clock().strftime("%Y-%m"))
        with self.uow() as uow:
            found = uow.usage.query(since=start, until=end, account="consumer:acme", by="month")
        return [(r.status, r.requests, r.rows) for r in found]


@pytest.fixture
def shop() -> Shop:
    return Shop()


def test_a_spend_cap_refuses_the_call_that_would_pass_it_to_the_cent(shop: Shop) -> None:
    gate = shop.open("metered", price_per_1k_rows="1.00", overage=True, rows_per_month=10**6)
    service.set_spend_cap(shop.uow(), by=ACME, consumer="acme", cap="0.05", now=NOW)
    for _ in range(7):  # 49 rows at 0.001: 0.049
        shop.call(gate, 7)
    with pytest.raises(PaymentRequired) as refused:
        shop.call(gate, 2)
    assert (refused.value.cap, refused.value.spent) == ("0.05", "0.049000")
    assert refused.value.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert "raise the cap, or wait for the month to end" in str(refused.value)
    shop.call(gate, 1)  # 0.050: the cap itself, not past it
    with pytest.raises(PaymentRequired):
        shop.call(gate, 1)
    assert shop.ledger() == [(200, 8, 50), (402, 2, 3)]  # the refused calls cost nothing
    spend = service.spend_of(shop.uow(), "acme", NOW)
    assert (spend.spent, spend.cap, spend.plan) == (Decimal("0.05"), Decimal("0.05"), "metered")
    assert spend.to_json()["spent"] == "0.050000"
    assert spend.projected > spend.spent  # 27 days into the month: on pace for more
    bill = service.bill_csv(shop.uow(), by=None, consumer="acme", month="2026-11")
    assert bill.splitlines()[1].endswith(",50,0,0,1.00,1.00,0,0.05")
    service.set_spend_cap(shop.uow(), by=ADMIN, consumer="acme", cap="0.06", now=NOW)
    shop.call(shop.gate(), 7)  # raised: room for 0.01 more
    shop.clock.advance(days=4)  # December: a new month, a new count
    shop.call(shop.gate(), 7)


def test_a_cap_counts_only_on_a_priced_plan_and_none_removes_it(shop: Shop) -> None:
    gate = shop.open("free", rows_per_month=10**6)
    service.set_spend_cap(shop.uow(), by=None, consumer="acme", cap="0.01", now=NOW)
    shop.call(gate, 500)  # no prices: nothing to spend, nothing to cap
    service.update_plan(shop.uow(), "free", by=None, price_per_1k_rows="1.00")
    with pytest.raises(PaymentRequired):
        shop.call(shop.gate(), 11)
    assert service.set_spend_cap(shop.uow(), by=None, consumer="acme", cap=None, now=NOW) is None
    with shop.uow() as uow:
        assert uow.plans.spend_cap("acme") is None
    shop.call(shop.gate(), 11)


def test_bad_caps_are_refused_and_only_the_consumer_or_an_admin_sets_one(shop: Shop) -> None:
    shop.open("metered", price_per_1k_rows="1.00")
    for cap, words in (("-1", "between 0"), ("0.001", "whole cents"), ("lots", "amount such"),
                       ("9000001", "between 0 and 9,000,000"), ("NaN", "between 0")):  # fmt: skip
        with pytest.raises(InvalidInput, match=words):
            service.set_spend_cap(shop.uow(), by=ACME, consumer="acme", cap=cap, now=NOW)
    accounts.create_consumer(shop.uow(), by=None, name="globex", description="", now=NOW)
    with pytest.raises(PermissionDenied, match="only admins and the consumer itself"):
        service.set_spend_cap(shop.uow(), by=ACME, consumer="globex", cap="1.00", now=NOW)
    with pytest.raises(NotFound, match="no consumer named 'initech'"):
        service.set_spend_cap(shop.uow(), by=None, consumer="initech", cap="1.00", now=NOW)
    with shop.uow() as uow:
        assert (uow.plans.spend_cap("acme"), uow.plans.spend_cap("globex")) == (None, None)


def test_a_new_process_counts_the_month_already_spent(shop: Shop) -> None:
    shop.open("metered", price_per_1k_rows="1.00")
    hour = NOW.strftime("%Y-%m-%dT%H")
    with shop.uow() as uow:
        uow.usage.add_batch("earlier", {
            (hour, "consumer:acme", "k", "churn", "1", "200"): [10, 40, 0, 10, 0],
            (hour, "consumer:acme", "k", "churn", "1", "402"): [5, 50, 0, 1, 0],  # refused
        }, NOW)  # fmt: skip
        uow.commit()
    counters = MemoryCounters()
    reconcile(counters, shop.uow, NOW)
    key = spend_charge("consumer:acme", 1, (0, 0, 0), 0, 0, NOW).key
    assert counters.peek([key]) == [40 * 1_000_000]  # 40 rows at 0.001, in nanos


@dataclass
class Deliveries:
    """The webhook client's double: what it was asked to send, and where."""

    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, url: str, secret: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((url, secret, body))
        return {"status": 204}


def test_each_threshold_is_recorded_audited_and_delivered_once(shop: Shop) -> None:
    gate = shop.open("metered", rows_per_month=1000, requests_per_day=200, overage=True,
                     thresholds=[50, 80, 100])  # fmt: skip
    secret = service.set_consumer_webhook(shop.uow(), by=ACME, consumer="acme",
                                          url="https://hooks.example/acme", own=set(), now=NOW,
                                          outbound=PUBLIC)  # fmt: skip
    for _ in range(256):  # 1,280 rows, 256 requests: past every level of both quotas
        shop.call(gate, 5)
    assert sorted((c.limit, c.threshold) for c in shop.crossed) == sorted(
        (limit, t) for limit in ("rows per month", "requests per day") for t in (50, 80, 100)
    )
    rows_80 = next(c for c in shop.crossed if (c.limit, c.threshold) == ("rows per month", 80))
    assert (rows_80.used, rows_80.limit_value, rows_80.window) == (800, 1000, "2026-11")
    deliveries = Deliveries()
    notifier = Notifier(shop.uow, operator_url="https://ops.example/hook",
                        operator_secret="operator secret", deliver=deliveries)  # fmt: skip
    assert all(notifier.handle(c) for c in shop.crossed)
    assert [notifier.handle(c) for c in shop.crossed] == [False] * 6  # a reseeded count
    assert len(deliveries.sent) == 12
    assert {(url, key) for url, key, _ in deliveries.sent} == {
        ("https://hooks.example/acme", secret),
        ("https://ops.example/hook", "operator secret"),
    }
    body = next(b for _, _, b in deliveries.sent if b["threshold"] == 80 and b["limit"] ==
                "rows per month")  # fmt: skip
    assert body == {"type": "quota.threshold", "consumer": "acme", "limit": "rows per month",
                    "window": "2026-11", "threshold": 80, "used": 800, "of": 1000,
                    "at": "2026-11-27T12:00:00Z"}  # fmt: skip
    with shop.uow() as uow:
        events = uow.audit.query(AuditQuery(action="quota.threshold"))
        assert len(uow.plans.crossings("acme", NOW.replace(day=1))) == 6
    assert len(events) == 6 and {e.target for e in events} == {"consumer:acme"}
    listed = service.crossings_of(shop.uow(), "acme", NOW)  # the portal's list: newest first
    assert listed == [describe(c) for c in reversed(shop.crossed)]


def test_a_spend_cap_s_thresholds_are_announced_in_money(shop: Shop) -> None:
    gate = shop.open("metered", price_per_1k_rows="1.00")  # thresholds 80 and 100
    service.set_spend_cap(shop.uow(), by=None, consumer="acme", cap="0.10", now=NOW)
    for _ in range(10):  # 0.01 a call
        shop.call(gate, 10)
    assert [(c.limit, c.threshold) for c in shop.crossed] == [
        ("spend per month", 80),
        ("spend per month", 100),
    ]
    deliveries = Deliveries()
    notifier = Notifier(shop.uow, operator_url="https://ops.example/hook", deliver=deliveries)
    notifier.handle(shop.crossed[0])
    (sent,) = deliveries.sent
    assert (sent[2]["used"], sent[2]["of"]) == (0.08, 0.1)  # not nanos
    with pytest.raises(PaymentRequired):
        shop.call(gate, 1)


def test_a_hard_quota_refuses_and_announces_nothing_past_it(shop: Shop) -> None:
    gate = shop.open("small", requests_per_day=10, thresholds=[100])
    for _ in range(10):
        shop.call(gate, 1)
    with pytest.raises(TooManyRequests, match="limit of 10 requests per day is reached"):
        shop.call(gate, 1)
    assert [(c.limit, c.threshold, c.used) for c in shop.crossed] == [
        ("requests per day", 100, 10)]  # fmt: skip


def test_a_webhook_is_an_http_url_of_someone_else_and_set_by_its_consumer(shop: Shop) -> None:
    shop.open("metered")
    accounts.create_consumer(shop.uow(), by=None, name="globex", description="", now=NOW)

    def hook(url: str | None, *, by: Principal | None = ACME, consumer: str = "acme") -> Any:
        return service.set_consumer_webhook(shop.uow(), by=by, consumer=consumer, url=url,
                                            own={"93.184.215.14:8000"}, now=NOW,
                                            outbound=PUBLIC)  # fmt: skip

    with pytest.raises(AddressRefused, match=r"http\(s\) URL"):
        hook("ftp://hooks.example/x")
    with pytest.raises(AddressRefused, match="points at this server"):
        hook("http://93.184.215.14:8000/hook")
    with pytest.raises(PermissionDenied, match="only admins and the consumer itself"):
        hook("https://hooks.example/x", consumer="globex")
    first, second = hook("https://hooks.example/a"), hook("https://hooks.example/b")
    assert first and second and first != second  # each change makes a new signing secret
    with shop.uow() as uow:
        assert uow.plans.consumer_webhook("acme") == ("https://hooks.example/b", second)
    assert hook(None, by=ADMIN) is None
    with shop.uow() as uow:
        assert uow.plans.consumer_webhook("acme") is None
