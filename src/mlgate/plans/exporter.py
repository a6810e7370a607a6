"""Usage pushed to billing: every closed hour of the ledger as one event per (subscription,
meter, hour), sent to a sink in batches.

* **Events**: for each consumer that made counted calls (status below 400) in an hour, one event
  per meter (`requests`, `rows`, `overage_rows`, `explained_rows`) with a value above 0, summed
  over its keys and models. The id is a hash of (consumer, subscription, meter, hour): the same
  aggregate always has the same id, so a retry or a replay can never bill twice at a receiver
  that drops repeated ids (OpenMeter, Stripe's idempotency keys).
* **Whose hour**: the ledger counts by the hour and does not record the subscription of a
  call, so an hour is the smallest unit billed. An hour belongs to the latest-starting
  subscription that overlaps it: a subscription that starts mid-hour (a first one, or a change
  of plan) owns that whole hour, as the monthly bill prices a month at the plan in force at its
  end. An hour no subscription overlaps names none.
* **Event time**: the hour's start, for every sink, so a receiver that groups by event time
  puts each hour (a month's last one too) in its own day and month.
* **Closed hours only**: an hour is sent once SETTLE has passed after its end, when every
  process has flushed its share (they flush every second); the event then never changes.
* **Reach**: a sink's first pass starts at the first of the previous month, or later where the
  receiver refuses older events (`Sink.max_age`: Stripe takes 35 days, we reach back 33), and
  catches up to the last closed hour in the same pass, reading the ledger a week at a time.
  Hours a stalled cursor left older than the receiver accepts are dead-lettered unsent.
* **Cursor**: the sink's cursor moves past an hour only when all of its events are delivered
  (or dead-lettered), and by a compare-and-set, so replicas running the same pass do not skip
  hours. A crash between delivery and the cursor's write sends the hour again, with the same
  ids.
* **Failures**: a pass that cannot deliver (a network error, 408, 429, 5xx) stops, keeps the
  cursor, and waits before the next try: 30 s, doubled per failure, at most an hour. Nothing is
  lost however long the sink is down. A batch the sink refuses for good (another 4xx) is split
  in halves and sent again until each refused event stands alone: only those go to the
  dead-letter table, and the cursor moves on; `mlgate usage export --replay` sends those (and
  nothing the sink accepted) again.

Sinks: `CloudEventsSink` (CloudEvents 1.0, structured JSON in batch mode, the format OpenMeter
and others ingest) and `StripeSink` (Stripe's billing meter events, one request per event with
the event id as its idempotency key and identifier).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mlgate.access.audit import audited
from mlgate.plans.model import ExportCursor, Subscription
from mlgate.tracing import span
from mlgate.uow import UnitOfWork

METERS = ("requests", "rows", "overage_rows", "explained_rows")
SETTLE = timedelta(minutes=5)
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
BATCH = 100
HOURS_PER_READ = 24 * 7  # the ledger is read a week at a time: a long catch-up holds one week
EVENT_TYPE = "io.mlgate.usage"


@dataclass(frozen=True)
class MeterEvent:
    id: str
    consumer: str
    subscription: int | None
    plan: str | None
    meter: str
    hour: datetime  # the hour's start, UTC: also the event's time at every sink
    value: int

    def cloudevent(self, source: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": EVENT_TYPE,
            "subject": self.consumer,
            "time": _iso(self.hour),  # inside the hour, so inside its day and month
            "datacontenttype": "application/json",
            "data": {
                "consumer": self.consumer,
                "subscription": self.subscription,
                "plan": self.plan,
                "meter": self.meter,
                "value": self.value,
                "hour": _iso(self.hour),
            },
        }


class Delivery(Exception):
    """A batch was not delivered; `permanent` when sending it again would not help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sink(Protocol):
    name: str
    batch_size: int  # events per request (Stripe's meter events: 1)
    max_age: timedelta | None  # the oldest event the receiver takes, less a margin; None: any

    def send(self, events: list[MeterEvent]) -> None:
        """Deliver the events or raise Delivery."""
        ...


def owner(subscriptions: Iterable[Subscription], hour: datetime) -> Subscription | None:
    """The subscription an hour's usage belongs to: the latest-starting one that overlaps
    [hour, hour + 1h), so one starting mid-hour owns the hour; None if none overlaps."""
    end = hour + timedelta(hours=1)
    overlapping = [
        s for s in subscriptions if s.starts_at < end and (s.ends_at is None or s.ends_at > hour)
    ]
    return max(overlapping, key=lambda s: (s.starts_at, s.id), default=None)


def hour_events(
    uow: UnitOfWork, since: datetime, until: datetime
) -> dict[datetime, list[MeterEvent]]:
    """The events of each hour in [since, until) that had counted calls of consumers."""
    with uow:
        rows = uow.usage.query(since=since, until=until, by="hour")
        subscriptions = uow.plans.subscriptions()
    sums: dict[tuple[datetime, str], list[int]] = {}
    for r in rows:
        if r.status >= 400 or not r.account.startswith("consumer:"):
            continue
        hour = datetime.strptime(r.period, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        into = sums.setdefault((hour, r.account.removeprefix("consumer:")), [0, 0, 0, 0])
        for i, value in enumerate((r.requests, r.rows, r.overage_rows, r.explained_rows)):
            into[i] += value
    out: dict[datetime, list[MeterEvent]] = {}
    for (hour, consumer), values in sorted(sums.items()):
        subscription = owner((s for s in subscriptions if s.consumer == consumer), hour)
        for meter, value in zip(METERS, values, strict=True):
            if value <= 0:
                continue
            sub_id = None if subscription is None else subscription.id
            out.setdefault(hour, []).append(
                MeterEvent(
                    id=event_id(consumer, sub_id, meter, hour),
                    consumer=consumer,
                    subscription=sub_id,
                    plan=None if subscription is None else subscription.plan,
                    meter=meter,
                    hour=hour,
                    value=value,
                )
            )
    return out


def event_id(consumer: str, subscription: int | None, meter: str, hour: datetime) -> str:
    key = f"{consumer}|{subscription}|{meter}|{hour:%Y-%m-%dT%H}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ExportResult:
    sent: int  # events delivered in this pass
    dead: int  # events the sink refused for good (now in the dead-letter table)
    through: datetime | None  # every hour before this one is done
    waiting_until: datetime | None = None  # the sink failed: no pass before this
    error: str = ""


def first_hour(sink: Sink, now: datetime, start: datetime | None = None) -> datetime:
    """Where a sink without a cursor starts: `start`, else the first of the previous month;
    never further back than the receiver accepts."""
    begin = _floor_hour(start) if start is not None else _first_of_previous_month(now)
    oldest = _oldest(sink, now)
    return begin if oldest is None else max(begin, oldest)


@audited("usage.export", lambda a: a["sink"].name)
def export_usage(
    uow: UnitOfWork, sink: Sink, *, now: datetime, start: datetime | None = None
) -> ExportResult:
    """One pass: every closed hour after the sink's cursor, oldest first, up to the last
    closed hour (a first pass catches up in one go)."""
    with span("usage export", {"mlgate.sink": sink.name}) as traced:
        result = _export_usage(uow, sink, now=now, start=start)
        if traced is not None:
            traced.set_attribute("mlgate.usage.sent", result.sent)
            traced.set_attribute("mlgate.usage.dead_lettered", result.dead)
        return result


def _export_usage(
    uow: UnitOfWork, sink: Sink, *, now: datetime, start: datetime | None
) -> ExportResult:
    with uow:
        cursor = uow.usage_exports.cursor(sink.name) or ExportCursor(sink.name)
    if cursor.retry_at is not None and now < cursor.retry_at:
        return ExportResult(0, 0, cursor.through, cursor.retry_at, "waiting after a failure")
    closed = _floor_hour(now - SETTLE)
    begin = cursor.through or first_hour(sink, now, start)
    oldest = _oldest(sink, now)
    sent = dead = 0
    expected = cursor.through
    read_from = begin
    while read_from < closed:
        read_until = min(closed, read_from + timedelta(hours=HOURS_PER_READ))
        events = hour_events(uow, read_from, read_until)
        for hour in sorted(events):
            todo = events[hour]
            try:
                if oldest is not None and hour < oldest:
                    error = (
                        f"older than {sink.name} accepts ({_days(sink.max_age)}); bill it by hand"
                    )
                    _dead_letter(uow, sink, todo, error, now)
                    dead += len(todo)
                else:
                    for i in range(0, len(todo), sink.batch_size):
                        ok, refused = _send(uow, sink, todo[i : i + sink.batch_size], now)
                        sent, dead = sent + ok, dead + refused
            except Delivery as exc:
                failures = cursor.failures + 1
                wait = min(FIRST_WAIT * 2 ** (failures - 1), LONGEST_WAIT)
                stuck = replace(cursor, through=expected, failures=failures, retry_at=now + wait)
                _save(uow, stuck, expected)
                return ExportResult(sent, dead, expected, now + wait, str(exc))
            if not _move(uow, cursor, hour + timedelta(hours=1), expected):
                return ExportResult(sent, dead, expected)  # another process moved it: it goes on
            cursor = replace(cursor, through=hour + timedelta(hours=1), failures=0, retry_at=None)
            expected = cursor.through
        if expected != read_until:  # the hours after the last event were empty: done too
            if not _move(uow, cursor, read_until, expected):
                return ExportResult(sent, dead, expected)
            cursor = replace(cursor, through=read_until, failures=0, retry_at=None)
            expected = cursor.through
        read_from = read_until
    return ExportResult(sent, dead, expected)


@audited("usage.replay", lambda a: a["sink"].name)
def replay_dead_letters(uow: UnitOfWork, sink: Sink, *, now: datetime) -> tuple[int, int]:
    """Send the sink's dead letters again (same ids), one event a request, each marked as
    soon as it is accepted: (sent, still pending). A passing failure (the sink is down) stops
    the replay; what was not sent stays pending for the next. Events older than the receiver
    takes are not sent at all."""
    with uow:
        letters = uow.usage_exports.dead_letters(sink.name)
    oldest = _oldest(sink, now)
    sent = 0
    for letter in letters:
        event = MeterEvent(**_event_fields(letter.event))
        if oldest is not None and event.hour < oldest:
            continue  # the receiver would refuse it: it stays for a bill by hand
        try:
            sink.send([event])
        except Delivery as exc:
            if exc.permanent:
                continue
            break
        with uow:
            uow.usage_exports.mark_replayed([letter.id], now)
            uow.commit()
        sent += 1
    return sent, len(letters) - sent


def _send(uow: UnitOfWork, sink: Sink, events: list[MeterEvent], now: datetime) -> tuple[int, int]:
    """Deliver `events`: (delivered, dead-lettered). A batch refused for good is split in
    halves until each refused event stands alone, so only those are dead letters (a receiver
    that takes a batch whole or not at all, as CloudEvents' batch mode does, costs about
    2·log2(batch) more requests per refused event). A passing failure raises Delivery."""
    try:
        sink.send(events)
        return len(events), 0
    except Delivery as exc:
        if not exc.permanent:
            raise
        if len(events) == 1:
            _dead_letter(uow, sink, events, str(exc), now)
            return 0, 1
    half = len(events) // 2
    ok_a, dead_a = _send(uow, sink, events[:half], now)
    ok_b, dead_b = _send(uow, sink, events[half:], now)
    return ok_a + ok_b, dead_a + dead_b


def _move(uow: UnitOfWork, cursor: ExportCursor, to: datetime, expected: datetime | None) -> bool:
    return _save(uow, replace(cursor, through=to, failures=0, retry_at=None), expected)


def _oldest(sink: Sink, now: datetime) -> datetime | None:
    """The first whole hour the sink's receiver still accepts, or None for any."""
    if sink.max_age is None:
        return None
    edge = now - sink.max_age
    floor = _floor_hour(edge)
    return floor if floor == edge else floor + timedelta(hours=1)


def _days(age: timedelta | None) -> str:
    return "any age" if age is None else f"{age / timedelta(days=1):g} days"


def _dead_letter(
    uow: UnitOfWork, sink: Sink, batch: list[MeterEvent], error: str, now: datetime
) -> None:
    letters = [(e.id, _event_json(e), error) for e in batch]
    with uow:
        uow.usage_exports.add_dead_letters(sink.name, letters, now)
        uow.commit()


def _event_json(event: MeterEvent) -> dict[str, Any]:
    return {**event.__dict__, "hour": _iso(event.hour)}


def _event_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {
        **data,
        "hour": datetime.strptime(data["hour"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
    }


def _save(uow: UnitOfWork, cursor: ExportCursor, expected: datetime | None) -> bool:
    with uow:
        done = uow.usage_exports.save_cursor(cursor, expected=expected)
        uow.commit()
    return done


def _floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _first_of_previous_month(now: datetime) -> datetime:
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
