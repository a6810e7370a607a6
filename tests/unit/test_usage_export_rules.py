"""The usage exporter's rules over the in-memory doubles (plans/exporter.py): whose hour it is,
where a sink's first pass starts, when an event happens, and a refused batch split until only
its refused events are dead letters. The same rules over real receivers and databases:
tests/integration/test_usage_export.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlgate.outbound.client import Outbound
from mlgate.plans.exporter import (
    Delivery,
    MeterEvent,
    export_usage,
    first_hour,
    owner,
    replay_dead_letters,
)
from mlgate.plans.model import Subscription
from mlgate.plans.sinks import CloudEventsSink, StripeSink
from tests.fakes import InMemoryUnitOfWork

H = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # November's last hour

# billing.example resolves nowhere; the sinks here never send, they only need a public receiver
PUBLIC = Outbound(resolver=lambda host, port: ["93.184.215.14"])


def sub(
    id: int, starts: datetime, ends: datetime | None = None, plan: str = "basic"
) -> Subscription:
    return Subscription(id, "acme", plan, starts, starts, ends)


def test_a_subscription_starting_mid_hour_owns_the_hour() -> None:
    first = sub(1, H + timedelta(minutes=30))
    assert owner([first], H) == first  # a first subscription, from the middle of the hour
    assert owner([first], H - timedelta(hours=1)) is None  # nothing before it
    old = sub(1, H - timedelta(days=3), ends=H + timedelta(minutes=40))
    new = sub(2, H + timedelta(minutes=40), plan="pro")
    assert owner([new, old], H) == new  # a change of plan mid-hour: the new plan's hour
    assert owner([new, old], H - timedelta(hours=1)) == old
    assert owner([new, old], H + timedelta(hours=1)) == new
    cancelled = sub(1, H - timedelta(days=3), ends=H + timedelta(minutes=10))
    assert owner([cancelled], H) == cancelled  # it ended in the hour: its last calls are its
    assert owner([cancelled], H + timedelta(hours=1)) is None


def test_an_event_happens_at_its_hour_s_start_so_a_month_s_last_hour_stays_in_its_month() -> None:
    event = MeterEvent("e1", "acme", 1, "basic", "rows", H, 5)
    assert event.cloudevent("mlgate")["time"] == "2026-11-30T23:00:00Z"
    stripe = StripeSink("sk_test", url="http://billing.example/events", outbound=PUBLIC)
    assert datetime.fromtimestamp(int(stripe.form(event)["timestamp"]), UTC) == H
    stripe.close()


def test_a_first_pass_reaches_back_no_further_than_the_receiver_takes() -> None:
    stripe = StripeSink("sk_test", url="http://billing.example/events", outbound=PUBLIC)
    cloudevents = CloudEventsSink("http://billing.example/events", outbound=PUBLIC)
    late_in_month = datetime(2027, 1, 31, 12, 30, tzinfo=UTC)
    assert first_hour(cloudevents, late_in_month) == datetime(2026, 12, 1, tzinfo=UTC)
    assert first_hour(stripe, late_in_month) == datetime(2026, 12, 29, 13, tzinfo=UTC)  # 33 days
    early = datetime(2027, 1, 2, 0, 0, tzinfo=UTC)  # the previous month's first is nearer
    assert first_hour(stripe, early) == datetime(2026, 12, 1, tzinfo=UTC)
    assert first_hour(stripe, late_in_month, start=datetime(2026, 1, 1, tzinfo=UTC)) == (
        datetime(2026, 12, 29, 13, tzinfo=UTC)
    )
    stripe.close()
    cloudevents.close()


class BatchReceiver:
    """A sink that takes a batch whole or refuses it whole (for good) when it holds an event of
    `refuse`, as a CloudEvents receiver in batch mode does."""

    name = "batches"
    batch_size = 100
    max_age = None

    def __init__(self, refuse: str | None) -> None:
        self.refuse = refuse
        self.requests = 0
        self.accepted: list[MeterEvent] = []

    def send(self, events: list[MeterEvent]) -> None:
        self.requests += 1
        if any(e.consumer == self.refuse for e in events):
            raise Delivery("400: unknown customer", permanent=True)
        self.accepted.extend(events)


def test_a_refused_batch_is_split_until_only_the_refused_events_are_dead_letters() -> None:
    uow = InMemoryUnitOfWork()
    hour = H.strftime("%Y-%m-%dT%H")
    aggregates = {(hour, f"consumer:c{i:02}", "k", "m", "1", "200"): [1, 10, 0, 1, 0]
                  for i in range(60)}  # fmt: skip
    with uow:
        uow.usage.add_batch("b", aggregates, H)
        uow.commit()
    sink = BatchReceiver(refuse="c37")
    done = export_usage(uow, sink, now=H + timedelta(hours=1, minutes=6), start=H)
    assert (done.sent, done.dead) == (118, 2)  # 60 consumers x (requests, rows), c37's 2 refused
    assert {e.consumer for e in sink.accepted} == {f"c{i:02}" for i in range(60)} - {"c37"}
    assert len({e.id for e in sink.accepted}) == len(sink.accepted)  # none sent twice
    # Two batches, then halves: at most 2·log2(100) more requests per refused event, far fewer
    # than one request per event.
    assert sink.requests <= 2 + 2 * 2 * 7
    with uow:
        letters = uow.usage_exports.dead_letters("batches")
    assert {d.event["consumer"] for d in letters} == {"c37"}
    sink.refuse, sink.accepted = None, []
    assert replay_dead_letters(uow, sink, now=H + timedelta(hours=2)) == (2, 0)
    assert {e.consumer for e in sink.accepted} == {"c37"}
