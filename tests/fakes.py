"""Test doubles: real classes that hold their state in memory.

`InMemoryUnitOfWork` keeps every repository of `mlgate.uow.UnitOfWork` in dicts. A unit of work
works on a copy of the shared `InMemoryDatabase` and puts it back on `commit()`, so leaving the
block without committing rolls back, as with the database. The contract suite
(tests/contracts/) runs the same tests over these and over the SQL repositories on SQLite,
PostgreSQL and MariaDB, so the two cannot drift apart; mypy checks these classes against the
protocols (see the `_checks` at the end).
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import pandas as pd

from mlgate.access.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    OwnerKind,
    Session,
    SubjectKind,
    User,
)
from mlgate.cards.model import CardRecord
from mlgate.errors import AlreadyExists, ArtifactError, ConcurrentWrite, NotFound, SourceError
from mlgate.jobs.model import FINISHED, Job
from mlgate.monitoring.model import CheckResult, Label, LoggedPrediction, MonitorSettings
from mlgate.plans.model import (
    TRACES_PER_ROW,
    Aggregates,
    Crossing,
    DeadLetter,
    ExportCursor,
    Plan,
    Subscription,
    UsageRow,
    UsageTrace,
)
from mlgate.registry.model import AliasEvent, ModelVersion, RegisteredModel
from mlgate.registry.store import ArtifactStore
from mlgate.retention.model import MODEL_AREAS, PURGE_ACTION, Purged
from mlgate.rollouts.model import Rollout, Schedule, ShadowPair, SideCounts, add_counts
from mlgate.scim.model import Kind, ScimRecord
from mlgate.signing.model import Signature
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.uow import UnitOfWork


class InMemorySource:
    """A source of named frames: `InMemorySource("shop", rows)` holds one table, "rows", which
    also answers every query; `tables={"a": frame, ...}` holds several (a query then answers with
    the first)."""

    def __init__(
        self,
        name: str,
        frame: pd.DataFrame | None = None,
        table: str = "rows",
        *,
        tables: dict[str, pd.DataFrame] | None = None,
    ) -> None:
        self.name = name
        self.frames: dict[str, pd.DataFrame] = dict(tables or {})
        if frame is not None:
            self.frames[table] = frame
        self.closed = False

    def tables(self) -> list[str]:
        return sorted(self.frames)

    def read_table(self, table: str, limit: int | None = None) -> pd.DataFrame:
        frame = self._frame(table).copy()
        return frame if limit is None else frame.head(limit)

    def read_query(self, query: str) -> pd.DataFrame:
        return next(iter(self.frames.values())).copy()

    def iter_table(self, table: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        frame = self._frame(table)
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows].copy()

    def iter_query(self, query: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        return self.iter_table(next(iter(self.frames)), chunk_rows)

    def count(self, table: str) -> int | None:
        return len(self._frame(table))

    def write_table(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        frames = list(chunks)
        self.frames[table] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return len(self.frames[table])

    def close(self) -> None:
        self.closed = True

    def _frame(self, table: str) -> pd.DataFrame:
        if table not in self.frames:
            raise SourceError(f"source {self.name!r} has no table {table!r}")
        return self.frames[table]


class FixedClock:
    """A clock that stands still until told to move: `clock()`, `clock.advance(seconds=61)`."""

    def __init__(self, at: datetime = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class InMemoryArtifactStore:
    """Artifacts as bytes in a dict, under the same keys a real store uses."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.files[key] = bytes(data)

    def get(self, key: str) -> bytes:
        try:
            return self.files[key]
        except KeyError:
            raise ArtifactError(f"artifact {key!r} is missing from the store") from None

    def delete(self, key: str) -> None:
        self.files.pop(key, None)

    def list_keys(self) -> list[str]:
        return sorted(self.files)


@dataclass
class InMemoryDatabase:
    """What the metadata database holds, as plain collections."""

    sources: dict[str, SourceConfig] = field(default_factory=dict)
    models: dict[str, RegisteredModel] = field(default_factory=dict)
    versions: dict[tuple[str, int], ModelVersion] = field(default_factory=dict)
    aliases: dict[tuple[str, str], int] = field(default_factory=dict)
    alias_events: list[AliasEvent] = field(default_factory=list)
    comparisons: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pending: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    grants: dict[int, Grant] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    usage_batches: set[str] = field(default_factory=set)
    usage: list[tuple[datetime, str, str, str, int, int, list[int]]] = field(default_factory=list)
    usage_traces: list[UsageTrace] = field(default_factory=list)
    export_cursors: dict[str, ExportCursor] = field(default_factory=dict)
    spend_caps: dict[str, Decimal] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    consumer_webhooks: dict[str, tuple[str, str]] = field(default_factory=dict)
    dead_letters: dict[int, DeadLetter] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    monitor_settings: dict[str, MonitorSettings] = field(default_factory=dict)
    prediction_log: list[LoggedPrediction] = field(default_factory=list)
    feedback: dict[tuple[str, int], tuple[str, Any]] = field(default_factory=dict)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    rollouts: dict[int, Rollout] = field(default_factory=dict)
    rollout_counts: list[tuple[int, str, SideCounts]] = field(default_factory=list)
    rollout_shadow: list[ShadowPair] = field(default_factory=list)
    schedules: dict[int, Schedule] = field(default_factory=dict)
    signatures: dict[tuple[str, int], Signature] = field(default_factory=dict)
    cards: dict[tuple[str, int], CardRecord] = field(default_factory=dict)
    scim: dict[str, ScimRecord] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]


class InMemorySourceRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, source: SourceConfig) -> None:
        if source.name in self._db.sources:
            raise AlreadyExists(f"a source named {source.name!r} exists; remove it first")
        self._db.sources[source.name] = source

    def get(self, name: str) -> SourceConfig | None:
        return self._db.sources.get(name)

    def all(self) -> list[SourceConfig]:
        return [self._db.sources[name] for name in sorted(self._db.sources)]

    def remove(self, name: str) -> None:
        if self._db.sources.pop(name, None) is None:
            raise NotFound(f"no source named {name!r}")


class InMemoryModelRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def get(self, name: str) -> RegisteredModel | None:
        return self._db.models.get(name)

    def add(self, model: RegisteredModel) -> None:
        if model.name in self._db.models:
            raise AlreadyExists(f"a model named {model.name!r} exists")
        self._db.models[model.name] = model

    def all(self) -> list[RegisteredModel]:
        return [self._db.models[name] for name in sorted(self._db.models)]

    def add_version(self, version: ModelVersion) -> None:
        model = self._model(version.model_name)
        key = (version.model_name, version.number)
        if key in self._db.versions:
            raise ConcurrentWrite("another write changed the same record first; try again")
        self._db.versions[key] = version
        if model.latest_version < version.number:
            self._db.models[model.name] = replace(model, latest_version=version.number)

    def get_version(self, name: str, number: int) -> ModelVersion | None:
        version = self._db.versions.get((name, number))
        if version is None or name not in self._db.models:
            return None
        return self._current(version)

    def versions(self, name: str) -> list[ModelVersion]:
        found = [v for (model, _), v in self._db.versions.items() if model == name]
        return [self._current(v) for v in sorted(found, key=lambda v: v.number)]

    def archive(self, name: str, number: int, at: datetime | None) -> None:
        self._change_version(name, number, archived_at=at)

    def schedule_retirement(self, name: str, number: int, at: datetime | None) -> None:
        self._change_version(name, number, retire_at=at)

    def aliases(self, name: str) -> dict[str, int]:
        self._model(name)
        return {a: v for (m, a), v in sorted(self._db.aliases.items()) if m == name}

    def all_aliases(self) -> dict[tuple[str, str], int]:
        return dict(self._db.aliases)

    def move_alias(self, event: AliasEvent) -> None:
        self._model(event.model_name)
        self._db.aliases[(event.model_name, event.alias)] = event.to_version
        self._db.alias_events.append(event)

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]:
        self._model(name)
        return [e for e in self._db.alias_events if e.model_name == name and e.alias == alias]

    def add_comparison(
        self, name: str, a: int, b: int, result: dict[str, Any], at: datetime
    ) -> None:
        self._model(name)
        self._db.comparisons.append((name, copy.deepcopy(result)))

    def comparisons(self, name: str) -> list[dict[str, Any]]:
        self._model(name)
        return [copy.deepcopy(r) for m, r in self._db.comparisons if m == name]

    def annotate(
        self, name: str, number: int | None, *, description: str | None, tags: dict[str, str]
    ) -> None:
        model = self._model(name)
        current: RegisteredModel | ModelVersion
        if number is None:
            current = model
        else:
            found = self._db.versions.get((name, number))
            if found is None:
                raise NotFound(f"model {name!r} has no version {number}")
            current = found
        merged = {k: v for k, v in {**current.tags, **tags}.items() if v != ""}
        changed = replace(
            current,
            tags=merged,
            description=current.description if description is None else description,
        )
        if isinstance(changed, RegisteredModel):
            self._db.models[name] = changed
        else:
            self._db.versions[(name, changed.number)] = changed

    def delete_version(self, name: str, number: int) -> None:
        self._model(name)
        self._db.versions.pop((name, number), None)
        self._db.signatures.pop((name, number), None)  # the database's ON DELETE CASCADE
        self._db.cards.pop((name, number), None)

    def add_pending(self, keys: list[str], owner: str, at: datetime) -> None:
        for key in keys:
            if key in self._db.pending:
                raise ConcurrentWrite("another write changed the same record first; try again")
            self._db.pending[key] = (owner, at)

    def remove_pending(self, keys: list[str]) -> None:
        for key in keys:
            self._db.pending.pop(key, None)

    def pending(self) -> list[tuple[str, str, datetime]]:
        return [(key, owner, at) for key, (owner, at) in self._db.pending.items()]

    def _model(self, name: str) -> RegisteredModel:
        model = self._db.models.get(name)
        if model is None:
            raise NotFound(f"no model named {name!r}")
        return model

    def _current(self, version: ModelVersion) -> ModelVersion:
        """A version as the database joins it: the model's task and target."""
        model = self._db.models[version.model_name]
        return replace(version, task=model.task, target=model.target)

    def _change_version(self, name: str, number: int, **changes: Any) -> None:
        self._model(name)
        version = self._db.versions.get((name, number))
        if version is not None:
            self._db.versions[(name, number)] = replace(version, **changes)


class InMemoryKeyRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, key: ApiKey) -> None:
        if key.prefix in self._db.keys:
            raise ConcurrentWrite("another write changed the same record first; try again")
        self._db.keys[key.prefix] = key

    def get(self, prefix: str) -> ApiKey | None:
        return self._db.keys.get(prefix)

    def all(self, owner_kind: OwnerKind | None = None, owner: str | None = None) -> list[ApiKey]:
        found = [
            k
            for k in self._db.keys.values()
            if (owner_kind is None or k.owner_kind == owner_kind)
            and (owner is None or k.owner == owner)
        ]
        return sorted(found, key=lambda k: k.created_at)  # stable: then in insertion order

    def revoke(self, prefix: str, at: datetime) -> None:
        key = self._db.keys.get(prefix)
        if key is None:
            raise NotFound(f"no API key with prefix {prefix!r}")
        self._db.keys[prefix] = replace(key, revoked_at=at)

    def touch(self, prefix: str, at: datetime) -> None:
        key = self._db.keys.get(prefix)
        if key is not None:
            self._db.keys[prefix] = replace(key, last_used_at=at)

    def rotate(
        self, prefix: str, *, current: str, new: str, previous_until: datetime | None, at: datetime
    ) -> None:
        key = self._db.keys.get(prefix)
        if key is None or key.digest != current:
            raise ConcurrentWrite("another write changed the same record first; try again")
        self._db.keys[prefix] = replace(
            key,
            digest=new,
            previous_digest=None if previous_until is None else current,
            previous_until=previous_until,
            rotated_at=at,
        )


T = TypeVar("T", User, Consumer)


class _Named(Generic[T]):
    """Users and consumers: records kept by a unique name."""

    what = "record"

    def __init__(self, table: dict[str, T]) -> None:
        self._table: dict[str, T] = table

    def add(self, record: T) -> None:
        if record.name in self._table:
            raise AlreadyExists(f"a {self.what} named {record.name!r} exists")
        self._table[record.name] = record

    def get(self, name: str) -> T | None:
        return self._table.get(name)

    def all(self) -> list[T]:
        return [self._table[name] for name in sorted(self._table)]

    def save(self, record: T) -> None:
        if record.name not in self._table:
            raise NotFound(f"no {self.what} named {record.name!r}")
        self._table[record.name] = record


class InMemoryUserRepository(_Named[User]):
    what = "user"


class InMemoryConsumerRepository(_Named[Consumer]):
    what = "consumer"


class InMemoryGrantRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, grant: Grant) -> Grant:
        stored = replace(grant, id=self._db.next_id("grants"))
        self._db.grants[stored.id] = stored
        return stored

    def get(self, grant_id: int) -> Grant | None:
        return self._db.grants.get(grant_id)

    def of_subject(self, kind: SubjectKind, name: str) -> list[Grant]:
        return [g for g in self.all() if g.subject_kind == kind and g.subject == name]

    def of_model(self, model: str) -> list[Grant]:
        return [g for g in self.all() if g.target.model == model]

    def all(self) -> list[Grant]:
        return [self._db.grants[i] for i in sorted(self._db.grants)]

    def remove(self, grant_id: int) -> None:
        if self._db.grants.pop(grant_id, None) is None:
            raise NotFound(f"no grant with id {grant_id}")


class InMemorySessionRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, session: Session) -> None:
        if session.prefix in self._db.sessions:
            raise ConcurrentWrite("another write changed the same record first; try again")
        self._db.sessions[session.prefix] = session

    def get(self, prefix: str) -> Session | None:
        return self._db.sessions.get(prefix)

    def revoke(self, prefix: str, at: datetime) -> None:
        session = self._db.sessions.get(prefix)
        if session is not None and session.revoked_at is None:
            self._db.sessions[prefix] = replace(session, revoked_at=at)

    def revoke_all(
        self, user: str, at: datetime, *, keep: str | None = None, kind: OwnerKind = "user"
    ) -> None:
        for prefix, s in list(self._db.sessions.items()):
            if s.user == user and s.kind == kind and s.revoked_at is None and prefix != keep:
                self._db.sessions[prefix] = replace(s, revoked_at=at)


class InMemoryAuditRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, event: AuditEvent) -> None:
        self._db.audit.append(
            replace(
                event,
                id=self._db.next_id("audit"),
                actor=event.actor[:160],
                action=event.action[:64],
                target=event.target[:300],
                address=event.address[:64],
                result=event.result[:16],
            )
        )

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        def wanted(e: AuditEvent) -> bool:
            if query.action and query.action.endswith("."):
                action_ok = e.action.startswith(query.action)
            else:
                action_ok = not query.action or e.action == query.action
            return (
                action_ok
                and (not query.actor or e.actor == query.actor)
                and (not query.target or e.target == query.target)
                and (not query.result or e.result == query.result)
                and (not query.since or e.at >= query.since)
                and (not query.until or e.at < query.until)
            )

        found = sorted(filter(wanted, self._db.audit), key=lambda e: (e.at, e.id), reverse=True)
        return found[: query.limit]


class InMemoryPlanRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, plan: Plan) -> None:
        if plan.name in self._db.plans:
            raise AlreadyExists(
                f"a plan named {plan.name!r} exists; `mlgate plans update` changes it"
            )
        self._db.plans[plan.name] = plan

    def get(self, name: str) -> Plan | None:
        return self._db.plans.get(name)

    def all(self) -> list[Plan]:
        return [self._db.plans[name] for name in sorted(self._db.plans)]

    def save(self, plan: Plan) -> None:
        stored = self._db.plans.get(plan.name)
        if stored is not None:  # the name and creation time stay; the settings change
            self._db.plans[plan.name] = replace(plan, created_at=stored.created_at)

    def remove(self, name: str) -> None:
        if self._db.plans.pop(name, None) is None:
            raise NotFound(f"no plan named {name!r}")

    def add_subscription(self, subscription: Subscription) -> Subscription:
        stored = replace(subscription, id=self._db.next_id("subscriptions"))
        self._db.subscriptions[stored.id] = stored
        return stored

    def subscriptions(self, consumer: str | None = None) -> list[Subscription]:
        found = [
            s for s in self._db.subscriptions.values() if consumer is None or s.consumer == consumer
        ]
        return sorted(found, key=lambda s: (s.starts_at, s.id))

    def end_subscription(self, subscription_id: int, at: datetime) -> None:
        found = self._db.subscriptions.get(subscription_id)
        if found is not None:
            self._db.subscriptions[subscription_id] = replace(found, ends_at=at)

    def spend_cap(self, consumer: str) -> Decimal | None:
        return self._db.spend_caps.get(consumer)

    def set_spend_cap(self, consumer: str, cap: Decimal | None, *, by: str, at: datetime) -> None:
        if cap is None:
            self._db.spend_caps.pop(consumer, None)
        else:
            self._db.spend_caps[consumer] = cap

    def add_crossing(self, crossing: Crossing) -> bool:
        key = (crossing.consumer, crossing.limit, crossing.window, crossing.threshold)
        if any((c.consumer, c.limit, c.window, c.threshold) == key for c in self._db.crossings):
            return False
        self._db.crossings.append(crossing)
        return True

    def crossings(self, consumer: str, since: datetime) -> list[Crossing]:
        return [c for c in self._db.crossings if c.consumer == consumer and c.at >= since]

    def consumer_webhook(self, consumer: str) -> tuple[str, str] | None:
        return self._db.consumer_webhooks.get(consumer)

    def set_consumer_webhook(
        self, consumer: str, url: str | None, secret: str, at: datetime
    ) -> None:
        if url is None:
            self._db.consumer_webhooks.pop(consumer, None)
        else:
            self._db.consumer_webhooks[consumer] = (url, secret)


class InMemoryUsageRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add_batch(self, batch: str, aggregates: Aggregates, at: datetime) -> bool:
        if batch in self._db.usage_batches:
            return False
        self._db.usage_batches.add(batch)
        for (hour, account, key_prefix, model, version, status), values in aggregates.items():
            when = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            self._db.usage.append(
                (when, account, key_prefix, model, int(version), int(status), list(values))
            )
        return True

    def query(
        self,
        *,
        since: datetime,
        until: datetime,
        account: str | None = None,
        model: str | None = None,
        by: str = "day",
    ) -> list[UsageRow]:
        width = {"hour": 13, "day": 10, "month": 7}[by]
        sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for hour, acct, prefix, mdl, version, status, values in self._db.usage:
            if not since <= hour < until:
                continue
            if (account is not None and acct != account) or (model is not None and mdl != model):
                continue
            key = (hour.strftime("%Y-%m-%dT%H")[:width], acct, prefix, mdl, version, status)
            into = sums[key]
            for i, value in enumerate(values):
                into[i] += value
        traces: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        for t in self._db.usage_traces:
            if not since <= t.hour < until:
                continue
            if (account is not None and t.account != account) or (
                model is not None and t.model != model
            ):
                continue
            key = (t.hour.strftime("%Y-%m-%dT%H")[:width], t.account, t.key_prefix, t.model,
                   t.version, t.status)  # fmt: skip
            if len(traces[key]) < TRACES_PER_ROW and t.trace_id not in traces[key]:
                traces[key].append(t.trace_id)
        return [
            replace(UsageRow(*key, *values), trace_ids=tuple(traces.get(key, ())))
            for key, values in sorted(sums.items())
        ]

    def add_traces(self, traces: Sequence[UsageTrace]) -> None:
        self._db.usage_traces.extend(traces)

    def totals(self, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for hour, account, _prefix, _model, _version, status, values in self._db.usage:
            if since <= hour < until and status < 400:
                requests, rows = out.get(account, (0, 0))
                out[account] = (requests + values[0], rows + values[1])
        return out


class InMemoryUsageExportRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def cursor(self, sink: str) -> ExportCursor | None:
        return self._db.export_cursors.get(sink)

    def save_cursor(self, cursor: ExportCursor, *, expected: datetime | None) -> bool:
        """The tables keep `through` as a whole hour: so does the fake, and it compares
        `expected` by its hour."""
        stored = self._db.export_cursors.get(cursor.sink)
        if (stored is None and expected is not None) or (
            stored is not None and stored.through != _whole_hour(expected)
        ):
            return False
        self._db.export_cursors[cursor.sink] = replace(cursor, through=_whole_hour(cursor.through))
        return True

    def add_dead_letters(
        self, sink: str, letters: list[tuple[str, dict[str, Any], str]], at: datetime
    ) -> None:
        known = {(d.sink, d.event_id) for d in self._db.dead_letters.values()}
        for event_id, event, error in letters:
            if (sink, event_id) not in known:
                known.add((sink, event_id))  # twice in one call: the first is kept
                new_id = self._db.next_id("dead_letters")
                self._db.dead_letters[new_id] = DeadLetter(
                    new_id, sink, event_id, event, error[:2000], at
                )

    def dead_letters(self, sink: str, *, pending: bool = True) -> list[DeadLetter]:
        return [
            d
            for _, d in sorted(self._db.dead_letters.items())
            if d.sink == sink and (not pending or d.replayed_at is None)
        ]

    def mark_replayed(self, ids: list[int], at: datetime) -> None:
        for i in ids:
            if i in self._db.dead_letters:  # an unknown id is passed over, as in SQL
                self._db.dead_letters[i] = replace(self._db.dead_letters[i], replayed_at=at)


def _whole_hour(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class InMemoryJobRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, job: Job) -> None:
        if job.id in self._db.jobs:
            raise ConcurrentWrite("another write changed the same record first; try again")
        self._db.jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        return self._db.jobs.get(job_id)

    def save(self, job: Job) -> None:
        stored = self._db.jobs.get(job.id)
        if stored is not None:  # a cancel request is its own write: saving never undoes it
            self._db.jobs[job.id] = replace(job, cancel_requested=stored.cancel_requested)

    def unfinished(self) -> list[Job]:
        return [j for j in self._db.jobs.values() if j.state not in FINISHED]

    def finished_before(self, kind: str, before: datetime) -> list[Job]:
        return [
            j for j in self._db.jobs.values()
            if j.kind == kind and j.state in FINISHED and j.finished_at and j.finished_at < before
        ]  # fmt: skip

    def request_cancel(self, job_id: str) -> None:
        job = self._db.jobs.get(job_id)
        if job is not None and job.state not in FINISHED:
            self._db.jobs[job_id] = replace(job, cancel_requested=True)

    def beat(self, job_ids: list[str], at: datetime) -> None:
        for job_id in job_ids:
            job = self._db.jobs.get(job_id)
            if job is not None and job.state not in FINISHED:
                self._db.jobs[job_id] = replace(job, heartbeat_at=at)


class InMemoryMonitoringRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def settings(self, model: str) -> MonitorSettings | None:
        return self._db.monitor_settings.get(model)

    def save_settings(self, model: str, settings: MonitorSettings, at: datetime) -> None:
        self._db.monitor_settings[model] = settings

    def all_settings(self) -> dict[str, MonitorSettings]:
        return dict(self._db.monitor_settings)

    def log(self, entries: Sequence[LoggedPrediction]) -> None:
        self._db.prediction_log.extend(entries)

    def logged(
        self,
        model: str,
        since: datetime,
        until: datetime,
        *,
        version: int | None = None,
        account: str | None = None,
    ) -> list[LoggedPrediction]:
        return [
            e
            for e in self._db.prediction_log
            if e.model == model
            and since <= e.at < until
            and (version is None or e.version == version)
            and (account is None or e.account == account)
        ]

    def count_logged(self, model: str) -> int:
        return sum(1 for e in self._db.prediction_log if e.model == model)

    def logged_requests(self, request_ids: Sequence[str]) -> dict[str, LoggedPrediction]:
        wanted = set(request_ids)
        return {e.request_id: e for e in self._db.prediction_log if e.request_id in wanted}

    def add_labels(self, model: str, labels: Sequence[Label], at: datetime) -> None:
        for label in labels:
            self._db.feedback[(label.request_id, label.row)] = (model, label.label)

    def labels(self, request_ids: Sequence[str]) -> list[Label]:
        wanted = set(request_ids)
        return [
            Label(request_id, row, label)
            for (request_id, row), (_model, label) in self._db.feedback.items()
            if request_id in wanted
        ]

    def labels_since(self, model: str, since: datetime) -> list[Label]:
        return [
            Label(request_id, row, label)
            for (request_id, row), (labelled, label) in self._db.feedback.items()
            if labelled == model
        ]

    def last_check(self, model: str) -> CheckResult | None:
        return self._db.checks.get(model)

    def all_checks(self) -> list[CheckResult]:
        return [self._db.checks[m] for m in sorted(self._db.checks)]

    def save_check(self, result: CheckResult, *, was: str | None) -> bool:
        stored = self._db.checks.get(result.model)
        if (stored.state if stored is not None else None) != was:
            return False
        self._db.checks[result.model] = result
        return True


class InMemoryRolloutRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, rollout: Rollout) -> Rollout:
        stored = replace(rollout, id=self._db.next_id("rollouts"))
        self._db.rollouts[stored.id or 0] = stored
        return stored

    def get(self, rollout_id: int) -> Rollout | None:
        return self._db.rollouts.get(rollout_id)

    def of_model(self, model: str) -> list[Rollout]:
        return [r for _, r in sorted(self._db.rollouts.items()) if r.model == model]

    def running(self) -> list[Rollout]:
        return [r for _, r in sorted(self._db.rollouts.items()) if r.running]

    def save(self, rollout: Rollout) -> None:
        if rollout.id in self._db.rollouts:  # an update, as in SQL: an unknown id adds nothing
            self._db.rollouts[rollout.id] = rollout

    def save_if_running(self, rollout: Rollout) -> bool:
        stored = self._db.rollouts.get(rollout.id or 0)
        if stored is None or not stored.running:
            return False
        self._db.rollouts[rollout.id or 0] = rollout
        return True

    def add_counts(self, rows: Sequence[tuple[int, str, SideCounts]]) -> None:
        self._db.rollout_counts.extend(rows)

    def add_shadow(self, pairs: Sequence[ShadowPair]) -> None:
        self._db.rollout_shadow.extend(pairs)

    def shadow(self, rollout_id: int, request_ids: Sequence[str] | None = None) -> list[ShadowPair]:
        wanted = None if request_ids is None else set(request_ids)
        return [p for p in self._db.rollout_shadow if p.rollout_id == rollout_id
                and (wanted is None or p.request_id in wanted)]  # fmt: skip

    def shadow_errors(self, rollout_id: int, limit: int) -> list[str]:
        found = {p.error for p in self._db.rollout_shadow if p.rollout_id == rollout_id and p.error}
        return sorted(found)[:limit]

    def add_schedule(self, schedule: Schedule) -> Schedule:
        stored = replace(schedule, id=self._db.next_id("schedules"))
        self._db.schedules[stored.id or 0] = stored
        return stored

    def get_schedule(self, schedule_id: int) -> Schedule | None:
        return self._db.schedules.get(schedule_id)

    def schedules(self, model: str | None) -> list[Schedule]:
        return [s for _, s in sorted(self._db.schedules.items())
                if model is None or s.model == model]  # fmt: skip

    def save_schedule_if(self, schedule: Schedule, *, revision: int) -> bool:
        stored = self._db.schedules.get(schedule.id or 0)
        if stored is None or stored.revision != revision:
            return False
        self._db.schedules[schedule.id or 0] = schedule
        return True

    def delete_schedule(self, schedule_id: int) -> None:
        self._db.schedules.pop(schedule_id, None)

    def counts(self, rollout_id: int) -> dict[str, SideCounts]:
        out: dict[str, SideCounts] = {}
        for wanted, side, c in self._db.rollout_counts:
            if wanted == rollout_id:
                out[side] = add_counts(out.get(side), c)
        return out


class InMemorySignatureRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def put(self, signature: Signature) -> None:
        if (signature.model_name, signature.number) in self._db.versions:
            self._db.signatures[(signature.model_name, signature.number)] = signature

    def get(self, model_name: str, number: int) -> Signature | None:
        return self._db.signatures.get((model_name, number))

    def delete(self, model_name: str, number: int) -> None:
        self._db.signatures.pop((model_name, number), None)


class InMemoryCardRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def put(self, record: CardRecord) -> None:
        if (record.model_name, record.number) in self._db.versions:
            self._db.cards[(record.model_name, record.number)] = record

    def get(self, model_name: str, number: int) -> CardRecord | None:
        return self._db.cards.get((model_name, number))


class InMemoryScimRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def add(self, record: ScimRecord) -> None:
        if self.named(record.kind, record.name) is not None:
            raise AlreadyExists(f"a SCIM {record.kind} named {record.name!r} exists")
        self._db.scim[record.id] = record

    def get(self, kind: Kind, record_id: str) -> ScimRecord | None:
        found = self._db.scim.get(record_id)
        return found if found is not None and found.kind == kind else None

    def named(self, kind: Kind, name: str) -> ScimRecord | None:
        return next((r for r in self.all(kind) if r.name.lower() == name.lower()), None)

    def all(self, kind: Kind) -> list[ScimRecord]:
        found = [r for r in self._db.scim.values() if r.kind == kind]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    def save(self, record: ScimRecord) -> None:
        if record.id in self._db.scim:
            self._db.scim[record.id] = record

    def remove(self, kind: Kind, record_id: str) -> None:
        if self.get(kind, record_id) is not None:
            del self._db.scim[record_id]

    def rename_user(self, old: str, new: str) -> None:
        db = self._db
        if old in db.users:
            db.users[new] = replace(db.users.pop(old), name=new)
        for i, g in list(db.grants.items()):
            if g.subject_kind == "user" and g.subject == old:
                db.grants[i] = replace(g, subject=new)
        for prefix, k in list(db.keys.items()):
            if k.owner_kind == "user" and k.owner == old:
                db.keys[prefix] = replace(k, owner=new)
        for prefix, s in list(db.sessions.items()):
            if s.kind == "user" and s.user == old:
                db.sessions[prefix] = replace(s, user=new)


class InMemoryRetentionRepository:
    """The same purge as db/retention.py over the dicts (no trigger to open here)."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def purge(self, model: str, cutoff: datetime, *, days: int, at: datetime) -> Purged:
        db = self._db
        hour_cutoff = cutoff - timedelta(hours=1)
        sent = [c.through for c in db.export_cursors.values()]

        def billed(hour: datetime) -> bool:
            return hour <= hour_cutoff and None not in sent and all(hour < t for t in sent if t)

        old = [e for e in db.prediction_log if e.model == model and e.at < cutoff]
        db.prediction_log = [e for e in db.prediction_log if e not in old]
        gone_ids = {e.request_id for e in old}
        labels = [k for k, (m, _) in db.feedback.items() if m == model and k[0] in gone_ids]
        for key in labels:
            del db.feedback[key]
        usage = [u for u in db.usage if u[3] == model and billed(u[0])]
        db.usage = [u for u in db.usage if u not in usage]
        traces = [t for t in db.usage_traces if t.model == model and billed(t.hour)]
        db.usage_traces = [t for t in db.usage_traces if t not in traces]

        def about(e: AuditEvent) -> bool:
            named = e.target == model or e.target.startswith((f"{model}@", f"{model} "))
            return (e.at < cutoff and named and e.action != PURGE_ACTION
                    and e.action.startswith(MODEL_AREAS))  # fmt: skip

        events = [e for e in db.audit if about(e)]
        db.audit = [e for e in db.audit if not about(e)]
        counts = {"predictions": len(old), "feedback": len(labels), "usage": len(usage),
                  "usage_traces": len(traces), "audit_events": len(events)}  # fmt: skip
        return Purged(model, cutoff, days, **counts)


class InMemoryUnitOfWork:
    """The unit of work over an `InMemoryDatabase`: `with uow: ...; uow.commit()`.

    Each block works on a deep copy of the database; `commit()` puts the copy back, and the
    block's end without it forgets the copy. Commits are serialised, so threads (the job
    runner, the usage flusher) may share one database.
    """

    def __init__(self, db: InMemoryDatabase | None = None) -> None:
        self.db = db if db is not None else InMemoryDatabase()
        self.committed = False
        self._work: InMemoryDatabase | None = None

    def __enter__(self) -> Self:
        with _COMMITS:
            work = copy.deepcopy(self.db)
        self._work = work
        self.sources = InMemorySourceRepository(work)
        self.models = InMemoryModelRepository(work)
        self.keys = InMemoryKeyRepository(work)
        self.users = InMemoryUserRepository(work.users)
        self.consumers = InMemoryConsumerRepository(work.consumers)
        self.grants = InMemoryGrantRepository(work)
        self.sessions = InMemorySessionRepository(work)
        self.audit = InMemoryAuditRepository(work)
        self.plans = InMemoryPlanRepository(work)
        self.usage = InMemoryUsageRepository(work)
        self.usage_exports = InMemoryUsageExportRepository(work)
        self.jobs = InMemoryJobRepository(work)
        self.monitoring = InMemoryMonitoringRepository(work)
        self.rollouts = InMemoryRolloutRepository(work)
        self.signatures = InMemorySignatureRepository(work)
        self.cards = InMemoryCardRepository(work)
        self.scim = InMemoryScimRepository(work)
        self.retention = InMemoryRetentionRepository(work)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._work = None

    def commit(self) -> None:
        if self._work is None:
            raise RuntimeError("commit() outside `with uow:`")
        with _COMMITS:
            for name in self.db.__dataclass_fields__:
                setattr(self.db, name, getattr(self._work, name))
            self._work = copy.deepcopy(self._work)  # later changes in the block are new ones
        self.committed = True


_COMMITS = threading.Lock()


def in_memory_uow_factory(db: InMemoryDatabase | None = None) -> Callable[[], InMemoryUnitOfWork]:
    """What Services.uow is: a new unit of work over one shared database, per call."""
    shared = db if db is not None else InMemoryDatabase()
    return lambda: InMemoryUnitOfWork(shared)


def _checks(db: InMemoryDatabase, store: InMemoryArtifactStore, source: InMemorySource) -> None:
    """Never called: mypy fails here when a fake misses a method of its protocol."""
    uow: UnitOfWork = InMemoryUnitOfWork(db)
    artifacts: ArtifactStore = store
    rows: Source = source
    del uow, artifacts, rows
