"""The usage exporter's rules over the in-memory doubles (plans/exporter.py): whose hour it is,
where a sink's first pass starts, when an event happens, which calls become events and with
which ids, closed hours only, the cursor that moves only past delivered hours (by a
compare-and-set), the wait after a failure, a refused batch split until only its refused events
are dead letters, hours older than the receiver takes, and the replay of dead letters. The sinks
here are doubles that keep what they were sent; the same rules over real receivers and
databases: tests/integration/test_usage_export.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from mlgate.access import accounts
from mlgate.outbound.client import Outbound
from mlgate.plans import service as plans
from mlgate.plans.exporter import (
    METERS,
    Delivery,
    MeterEvent,
    event_id,
    export_usage,
    first_hour,
    owner,
    replay_dead_letters,
)
from mlgate.plans.model import ExportCursor, Subscription
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
    stripe = StripeSink("sk_test", url="http://billing.example/events",
                        customers={"acme": "cus_A"}, outbound=PUBLIC)  # fmt: skip
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


# ---- a ledger, and a receiver that keeps what it was sent -----------------------------------

START = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
HOURS = 6
AFTER = START + timedelta(hours=HOURS, minutes=6)  # the last hour settled a minute ago
Expected = dict[tuple[str, str, str], int]  # (consumer, meter, hour) -> value


def seed(uow: InMemoryUnitOfWork) -> Expected:
    """HOURS hours of ledger: acme on basic, then on pro from START + 2h30 (mid-hour), over two
    keys and models; globex every other hour; a user (not billed) and refused calls (not
    billed); hour 1 written by two processes. The values per (consumer, meter, hour)."""
    before = START - timedelta(days=1)
    for name in ("acme", "globex"):
        accounts.create_consumer(uow, by=None, name=name, description="", now=before)
    for plan in ("basic", "pro"):
        plans.create_plan(uow, plans.make_plan(plan, before), by=None)
    for name in ("acme", "globex"):
        plans.subscribe(uow, by=None, consumer=name, plan="basic", now=before)
    plans.subscribe(uow, by=None, consumer="acme", plan="pro",
                    now=START + timedelta(hours=2, minutes=30))  # fmt: skip
    expected: Expected = {}
    for h in range(HOURS):
        hour = (START + timedelta(hours=h)).strftime("%Y-%m-%dT%H")
        aggregates = {
            (hour, "consumer:acme", "k1", "churn", "1", "200"): [3 + h, 30 + h, h % 2, 40, 0],
            (hour, "consumer:acme", "k2", "spend", "2", "200"): [1, 5, 0, 10, 2],
            (hour, "consumer:acme", "k1", "churn", "1", "429"): [7, 70, 0, 1, 0],
            (hour, "user:ann", "k9", "churn", "1", "200"): [2, 2, 0, 1, 0],
        }
        if h % 2 == 0:
            aggregates[(hour, "consumer:globex", "k3", "churn", "1", "200")] = [2, 20, 0, 5, 0]
        with uow:
            uow.usage.add_batch(f"seed-{h}", aggregates, START)
            if h == 1:
                uow.usage.add_batch("late", {(hour, "consumer:acme", "k1", "churn", "1", "200"):
                                             [1, 1, 0, 1, 0]}, START)  # fmt: skip
            uow.commit()
        acme = (4 + h + (h == 1), 35 + h + (h == 1), h % 2, 2)
        for meter, value in zip(METERS, acme, strict=True):
            if value:
                expected[("acme", meter, hour)] = value
        if h % 2 == 0:
            expected[("globex", "requests", hour)] = 2
            expected[("globex", "rows", hour)] = 20
    return expected


@dataclass
class Receiver:
    """A sink double: it keeps every event it takes; `down` it fails for now (503); `refuse`
    names consumers it refuses for good (400), one event at a time."""

    name: str = "billing"
    batch_size: int = 10
    max_age: timedelta | None = None
    down: bool = False
    refuse: set[str] = field(default_factory=set)
    events: list[MeterEvent] = field(default_factory=list)
    requests: int = 0
    fails_on: int | None = None  # the request that fails for now (503)
    meanwhile: Callable[[], object] | None = None  # another process's work, at the first send

    def send(self, events: list[MeterEvent]) -> None:
        self.requests += 1
        run, self.meanwhile = self.meanwhile, None
        if run is not None:
            run()
        if self.down or self.requests == self.fails_on:
            raise Delivery("503: try again later", permanent=False)
        if any(e.consumer in self.refuse for e in events):
            raise Delivery("400: unknown customer", permanent=True)
        self.events.extend(events)

    def got(self) -> Expected:
        return {(e.consumer, e.meter, f"{e.hour:%Y-%m-%dT%H}"): e.value for e in self.events}


def cursor_of(uow: InMemoryUnitOfWork, sink: str = "billing") -> ExportCursor | None:
    with uow:
        return uow.usage_exports.cursor(sink)


def test_each_consumer_s_counted_calls_are_one_event_per_meter_and_hour() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver()
    done = export_usage(uow, sink, now=AFTER, start=START)
    assert (done.sent, done.dead, done.error) == (len(expected), 0, "")
    assert sink.got() == expected  # summed over keys and models; users and refusals left out
    assert len({e.id for e in sink.events}) == len(sink.events)
    plan_of = {(e.consumer, f"{e.hour:%H}"): e.plan for e in sink.events}
    assert (plan_of[("acme", "01")], plan_of[("acme", "02")]) == ("basic", "pro")  # mid-hour
    first = sink.events[0]
    assert first.id == event_id(first.consumer, first.subscription, first.meter, first.hour)
    assert sink.requests == HOURS  # an hour's events in one batch of up to 10


def test_only_closed_hours_go_and_the_cursor_moves_past_each() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver()
    settling = START + timedelta(hours=HOURS, minutes=4)  # the last hour ended 4 minutes ago
    done = export_usage(uow, sink, now=settling, start=START)
    last = (START + timedelta(hours=HOURS - 1)).strftime("%Y-%m-%dT%H")
    assert done.through == START + timedelta(hours=HOURS - 1)
    assert sink.got() == {k: v for k, v in expected.items() if k[2] != last}
    assert export_usage(uow, sink, now=AFTER, start=START).through == START + timedelta(hours=HOURS)
    assert sink.got() == expected and len(sink.events) == len(expected)  # nothing sent twice
    again = export_usage(uow, sink, now=AFTER + timedelta(hours=3), start=START)
    assert (again.sent, again.through) == (0, START + timedelta(hours=HOURS + 3))  # empty hours


def test_a_sink_that_is_down_keeps_the_cursor_and_is_tried_again_later_and_later() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver(down=True)
    now = AFTER
    down = export_usage(uow, sink, now=now, start=START)
    assert (down.sent, down.through, down.error) == (0, None, "503: try again later")
    assert down.waiting_until == now + timedelta(seconds=30)
    early = export_usage(uow, sink, now=now + timedelta(seconds=10), start=START)
    assert early.error == "waiting after a failure" and sink.requests == 1  # not even tried
    waits = []
    for _ in range(9):
        now = (cursor_of(uow) or ExportCursor("billing")).retry_at or now
        waits.append((export_usage(uow, sink, now=now, start=START).waiting_until or now) - now)
    assert [w.total_seconds() for w in waits] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    sink.down = False
    now += timedelta(hours=1)
    done = export_usage(uow, sink, now=now, start=START)
    assert done.error == "" and done.waiting_until is None and sink.got() == expected
    assert cursor_of(uow) == ExportCursor("billing", done.through)  # failures forgotten


def test_hours_delivered_before_a_failure_are_not_sent_again() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver(fails_on=4)  # an hour a request: the fourth hour fails
    failed = export_usage(uow, sink, now=AFTER, start=START)
    assert failed.error and failed.through == START + timedelta(hours=3)  # three hours done
    assert (cursor_of(uow) or ExportCursor("")).failures == 1
    done = export_usage(uow, sink, now=failed.waiting_until or AFTER, start=START)
    assert failed.sent + done.sent == len(expected) == len(sink.events)  # none sent twice
    assert sink.got() == expected and done.through == START + timedelta(hours=HOURS)


def test_a_crash_before_the_cursor_s_write_sends_the_hour_again_with_the_same_ids() -> None:
    uow = InMemoryUnitOfWork()
    seed(uow)
    sink = Receiver()
    export_usage(uow, sink, now=AFTER, start=START)
    first = {e.id: e for e in sink.events}
    with uow:
        cursor = uow.usage_exports.cursor("billing")
        assert cursor is not None
        assert uow.usage_exports.save_cursor(
            replace(cursor, through=START), expected=cursor.through
        )
        uow.commit()
    sink.events.clear()
    export_usage(uow, sink, now=AFTER, start=START)
    assert {e.id: e for e in sink.events} == first  # the same events, ids and all


def test_a_pass_stops_where_another_process_moved_the_cursor_first() -> None:
    uow = InMemoryUnitOfWork()
    seed(uow)
    sink = Receiver(batch_size=100)
    # while this pass sends its first hour, another replica's pass delivers that hour first
    sink.meanwhile = lambda: export_usage(uow, Receiver(batch_size=100), now=AFTER, start=START)
    done = export_usage(uow, sink, now=AFTER, start=START)
    assert done.through is None and done.sent == len(sink.events)  # it stopped after one hour
    assert {e.hour for e in sink.events} == {START}  # sent twice, with the same ids
    assert cursor_of(uow) == ExportCursor("billing", START + timedelta(hours=HOURS))


def test_hours_older_than_the_receiver_takes_are_dead_letters_never_sent() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver(max_age=timedelta(hours=4))  # from AFTER: hours from START + 3h only
    with uow:
        uow.usage_exports.save_cursor(ExportCursor("billing", START), expected=None)
        uow.commit()
    done = export_usage(uow, sink, now=AFTER)
    young = {k: v for k, v in expected.items() if k[2] >= "2026-11-03T03"}
    assert sink.got() == young and done.sent == len(young)
    assert done.dead == len(expected) - len(young)
    with uow:
        letters = uow.usage_exports.dead_letters("billing")
    assert all(d.error == "older than billing accepts (0.166667 days); bill it by hand"
               for d in letters)  # fmt: skip
    sink.events.clear()
    assert replay_dead_letters(uow, sink, now=AFTER) == (0, len(letters))  # still too old
    assert sink.events == []


def test_a_replay_sends_each_dead_letter_once_and_stops_while_the_sink_is_down() -> None:
    uow = InMemoryUnitOfWork()
    expected = seed(uow)
    sink = Receiver(refuse={"globex"})
    done = export_usage(uow, sink, now=AFTER, start=START)
    refused = {k: v for k, v in expected.items() if k[0] == "globex"}
    assert (done.dead, done.through) == (len(refused), START + timedelta(hours=HOURS))
    with uow:
        letters = uow.usage_exports.dead_letters("billing")
    assert {(d.event["consumer"], d.event["meter"], d.event["hour"][:13]): d.event["value"]
            for d in letters} == refused  # fmt: skip
    assert {d.error for d in letters} == {"400: unknown customer"}
    sink.events.clear()
    assert replay_dead_letters(uow, sink, now=AFTER) == (0, len(letters))  # refused again: kept
    sink.refuse, sink.down = set(), True
    tried = sink.requests
    assert replay_dead_letters(uow, sink, now=AFTER) == (0, len(letters))
    assert sink.requests == tried + 1  # it stopped at the first failure
    sink.down = False
    assert replay_dead_letters(uow, sink, now=AFTER) == (len(letters), 0)
    assert sorted(e.id for e in sink.events) == sorted(d.event_id for d in letters)
    assert replay_dead_letters(uow, sink, now=AFTER) == (0, 0)
    with uow:
        assert uow.usage_exports.dead_letters("billing") == []
        assert len(uow.usage_exports.dead_letters("billing", pending=False)) == len(letters)
