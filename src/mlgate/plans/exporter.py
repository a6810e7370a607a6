"""Usage pushed to billing: every closed hour of the ledger as one event per (subscription,
meter, hour), sent to a sink in batches.

* **Events**: for each consumer that made counted calls (status below 400) in an hour, one event
  per meter (`requests`, `rows`, `overage_rows`, `explained_rows`) with a value above 0, summed
  over its keys and models. The id is a hash of (consumer, subscription, meter, hour): the same
  aggregate always has the same id, so a retry or a replay can never bill twice at a receiver
  that drops repeated ids (OpenMeter, Stripe's idempotency keys).
* **Closed hours only**: an hour is sent once SETTLE has passed after its end, when every
  process has flushed its share (they flush every second); the event then never changes.
* **Cursor**: the sink's cursor moves past an hour only when all of its events are delivered
  (or dead-lettered), and by a compare-and-set, so replicas running the same pass do not skip
  hours. A crash between delivery and the cursor's write sends the hour again, with the same
  ids.
* **Failures**: a pass that cannot deliver (a network error, 408, 429, 5xx) stops, keeps the
  cursor, and waits before the next try: 30 s, doubled per failure, at most an hour. Nothing is
  lost however long the sink is down. A batch the sink refuses for good (another 4xx) goes to the
  dead-letter table and the cursor moves on; `mlgate usage export --replay` sends those again.

Sinks: `CloudEventsSink` (CloudEvents 1.0, structured JSON in batch mode, the format OpenMeter
and others ingest) and `StripeSink` (Stripe's billing meter events, one request per event with
the event id as its idempotency key and identifier).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mlgate.access.audit import audited
from mlgate.plans.repository import ExportCursor
from mlgate.uow import UnitOfWork

METERS = ("requests", "rows", "overage_rows", "explained_rows")
SETTLE = timedelta(minutes=5)
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
BATCH = 100
HOURS_PER_PASS = 24 * 7  # a week of hours at most per pass (a first pass starts a month back)
EVENT_TYPE = "io.mlgate.usage"


@dataclass(frozen=True)
class MeterEvent:
    id: str
    consumer: str
    subscription: int | None
    plan: str | None
    meter: str
    hour: datetime  # the hour's start, UTC
    value: int

    def cloudevent(self, source: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": EVENT_TYPE,
            "subject": self.consumer,
            "time": _iso(self.hour + timedelta(hours=1)),
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

    def send(self, events: list[MeterEvent]) -> None:
        """Deliver the events or raise Delivery."""
        ...


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
        mine = [s for s in subscriptions if s.consumer == consumer and s.starts_at <= hour]
        subscription = mine[-1] if mine else None
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


@audited("usage.export", lambda a: a["sink"].name)
def export_usage(
    uow: UnitOfWork, sink: Sink, *, now: datetime, start: datetime | None = None
) -> ExportResult:
    """One pass: every closed hour after the sink's cursor, oldest first."""
    with uow:
        cursor = uow.usage_exports.cursor(sink.name) or ExportCursor(sink.name)
    if cursor.retry_at is not None and now < cursor.retry_at:
        return ExportResult(0, 0, cursor.through, cursor.retry_at, "waiting after a failure")
    closed = _floor_hour(now - SETTLE)
    begin = cursor.through or start or _first_of_previous_month(now)
    until = min(closed, begin + timedelta(hours=HOURS_PER_PASS))
    sent = dead = 0
    if begin >= until:
        return ExportResult(0, 0, cursor.through)
    events = hour_events(uow, begin, until)
    expected = cursor.through
    hour = begin
    while hour < until:
        todo = events.get(hour, [])
        try:
            for i in range(0, len(todo), BATCH):
                batch = todo[i : i + BATCH]
                try:
                    sink.send(batch)
                    sent += len(batch)
                except Delivery as exc:
                    if not exc.permanent:
                        raise
                    _dead_letter(uow, sink, batch, str(exc), now)
                    dead += len(batch)
        except Delivery as exc:
            failures = cursor.failures + 1
            wait = min(FIRST_WAIT * 2 ** (failures - 1), LONGEST_WAIT)
            stuck = replace(cursor, through=expected, failures=failures, retry_at=now + wait)
            _save(uow, stuck, expected)
            return ExportResult(sent, dead, expected, now + wait, str(exc))
        moved = replace(cursor, through=hour + timedelta(hours=1), failures=0, retry_at=None)
        if not _save(uow, moved, expected):  # another process moved it: it carries on
            return ExportResult(sent, dead, expected)
        expected = moved.through
        cursor = moved
        hour += timedelta(hours=1)
    return ExportResult(sent, dead, expected)


@audited("usage.replay", lambda a: a["sink"].name)
def replay_dead_letters(uow: UnitOfWork, sink: Sink, *, now: datetime) -> tuple[int, int]:
    """Send the sink's dead letters again (same ids): (sent, still refused)."""
    with uow:
        letters = uow.usage_exports.dead_letters(sink.name)
    sent: list[int] = []
    for letter in letters:
        event = MeterEvent(**_event_fields(letter.event))
        try:
            sink.send([event])
        except Delivery:
            continue
        sent.append(letter.id)
    with uow:
        uow.usage_exports.mark_replayed(sent, now)
        uow.commit()
    return len(sent), len(letters) - len(sent)


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
