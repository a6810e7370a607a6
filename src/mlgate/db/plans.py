"""SQLAlchemy implementations of the plans repositories: plans, subscriptions, usage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mlgate.access.model import Target
from mlgate.db.repositories import _aware, _utc
from mlgate.db.tables import (
    consumer_webhooks,
    plans,
    spend_caps,
    subscriptions,
    threshold_crossings,
    usage,
    usage_batches,
    usage_dead_letters,
    usage_exports,
    usage_traces,
)
from mlgate.errors import AlreadyExists, NotFound
from mlgate.plans.model import (
    LIMIT_FIELDS,
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


class SqlPlanRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, plan: Plan) -> None:
        if self.get(plan.name) is not None:
            raise AlreadyExists(
                f"a plan named {plan.name!r} exists; `mlgate plans update` changes it"
            )
        self._conn.execute(
            plans.insert().values(
                name=plan.name, settings=_settings(plan), created_at=plan.created_at
            )
        )

    def get(self, name: str) -> Plan | None:
        row = self._conn.execute(plans.select().where(plans.c.name == name)).first()
        return None if row is None else _plan(row)

    def all(self) -> list[Plan]:
        return [_plan(r) for r in self._conn.execute(plans.select().order_by(plans.c.name))]

    def save(self, plan: Plan) -> None:
        self._conn.execute(
            plans.update().where(plans.c.name == plan.name).values(settings=_settings(plan))
        )

    def remove(self, name: str) -> None:
        if self._conn.execute(plans.delete().where(plans.c.name == name)).rowcount == 0:
            raise NotFound(f"no plan named {name!r}")

    def add_subscription(self, subscription: Subscription) -> Subscription:
        result = self._conn.execute(
            subscriptions.insert().values(
                consumer=subscription.consumer,
                plan=subscription.plan,
                starts_at=subscription.starts_at,
                ends_at=subscription.ends_at,
                pins=subscription.pins,
                created_at=subscription.created_at,
            )
        )
        (new_id,) = result.inserted_primary_key or (0,)
        return Subscription(
            id=int(new_id),
            consumer=subscription.consumer,
            plan=subscription.plan,
            starts_at=subscription.starts_at,
            created_at=subscription.created_at,
            ends_at=subscription.ends_at,
            pins=subscription.pins,
        )

    def spend_cap(self, consumer: str) -> Decimal | None:
        row = self._conn.execute(
            sa.select(spend_caps.c.cap).where(spend_caps.c.consumer == consumer)
        ).first()
        return None if row is None else Decimal(str(row.cap))

    def set_spend_cap(self, consumer: str, cap: Decimal | None, *, by: str, at: datetime) -> None:
        self._conn.execute(spend_caps.delete().where(spend_caps.c.consumer == consumer))
        if cap is not None:
            self._conn.execute(
                spend_caps.insert().values(consumer=consumer, cap=cap, set_by=by, set_at=at)
            )

    def add_crossing(self, crossing: Crossing) -> bool:
        try:
            with self._conn.begin_nested():  # a savepoint: a repeat leaves the transaction usable
                self._conn.execute(
                    threshold_crossings.insert().values(
                        consumer=crossing.consumer, limit_name=crossing.limit,
                        window=crossing.window, threshold=crossing.threshold,
                        used=crossing.used, limit_value=crossing.limit_value, at=crossing.at,
                    )
                )  # fmt: skip
        except sa.exc.IntegrityError:
            return False
        return True

    def crossings(self, consumer: str, since: datetime) -> list[Crossing]:
        query = (
            threshold_crossings.select()
            .where(threshold_crossings.c.consumer == consumer, threshold_crossings.c.at >= since)
            .order_by(threshold_crossings.c.at, threshold_crossings.c.id)
        )
        return [
            Crossing(
                r.consumer, r.limit_name, r.window, r.threshold, r.used, r.limit_value, _aware(r.at)
            )  # fmt: skip
            for r in self._conn.execute(query)
        ]

    def consumer_webhook(self, consumer: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            consumer_webhooks.select().where(consumer_webhooks.c.consumer == consumer)
        ).first()
        return None if row is None else (row.url, row.secret)

    def set_consumer_webhook(
        self, consumer: str, url: str | None, secret: str, at: datetime
    ) -> None:
        self._conn.execute(
            consumer_webhooks.delete().where(consumer_webhooks.c.consumer == consumer)
        )
        if url is not None:
            self._conn.execute(
                consumer_webhooks.insert().values(
                    consumer=consumer, url=url, secret=secret, set_at=at
                )
            )

    def subscriptions(self, consumer: str | None = None) -> list[Subscription]:
        query = subscriptions.select().order_by(subscriptions.c.starts_at, subscriptions.c.id)
        if consumer is not None:
            query = query.where(subscriptions.c.consumer == consumer)
        return [
            Subscription(
                id=row.id,
                consumer=row.consumer,
                plan=row.plan,
                starts_at=_aware(row.starts_at),
                created_at=_aware(row.created_at),
                ends_at=_utc(row.ends_at),
                pins={str(k): int(v) for k, v in (row.pins or {}).items()},
            )
            for row in self._conn.execute(query)
        ]

    def end_subscription(self, subscription_id: int, at: datetime) -> None:
        self._conn.execute(
            subscriptions.update().where(subscriptions.c.id == subscription_id).values(ends_at=at)
        )


class SqlUsageRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add_batch(self, batch: str, aggregates: Aggregates, at: datetime) -> bool:
        exists = self._conn.execute(
            sa.select(usage_batches.c.batch).where(usage_batches.c.batch == batch)
        ).first()
        if exists:
            return False
        self._conn.execute(usage_batches.insert().values(batch=batch, at=at))
        rows = [
            {
                "batch": batch,
                "hour": datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC),
                "account": account,
                "key_prefix": key_prefix,
                "model": model,
                "version": int(version),
                "status": int(status),
                "requests": values[0],
                "rows": values[1],
                "overage_rows": values[2],
                "latency_ms": values[3],
                "explained_rows": values[4] if len(values) > 4 else 0,
            }
            for (hour, account, key_prefix, model, version, status), values in aggregates.items()
        ]
        if rows:
            self._conn.execute(usage.insert(), rows)
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
        c = usage.c
        select = sa.select(
            c.hour, c.account, c.key_prefix, c.model, c.version, c.status,
            c.requests, c.rows, c.overage_rows, c.latency_ms, c.explained_rows,
        ).where(c.hour >= since, c.hour < until)  # fmt: skip
        if account is not None:
            select = select.where(c.account == account)
        if model is not None:
            select = select.where(c.model == model)
        width = {"hour": 13, "day": 10, "month": 7}[by]
        sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for row in self._conn.execute(select):
            period = _aware(row.hour).strftime("%Y-%m-%dT%H")[:width]
            key = (period, row.account, row.key_prefix, row.model, row.version, row.status)
            into = sums[key]
            values = (row.requests, row.rows, row.overage_rows, row.latency_ms, row.explained_rows)
            for i, value in enumerate(values):
                into[i] += int(value)
        traces = self._traces(since, until, account, model, width)
        return [
            replace(UsageRow(*key, *values), trace_ids=tuple(traces.get(key, ())))
            for key, values in sorted(sums.items())
        ]

    def _traces(
        self, since: datetime, until: datetime, account: str | None, model: str | None, width: int
    ) -> dict[tuple[Any, ...], list[str]]:
        t = usage_traces.c
        select = (
            sa.select(t.hour, t.account, t.key_prefix, t.model, t.version, t.status, t.trace_id)
            .where(t.hour >= since, t.hour < until)
            .order_by(t.id)
        )
        if account is not None:
            select = select.where(t.account == account)
        if model is not None:
            select = select.where(t.model == model)
        found: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        for row in self._conn.execute(select):
            period = _aware(row.hour).strftime("%Y-%m-%dT%H")[:width]
            key = (period, row.account, row.key_prefix, row.model, row.version, row.status)
            if len(found[key]) < TRACES_PER_ROW and row.trace_id not in found[key]:
                found[key].append(row.trace_id)
        return found

    def add_traces(self, traces: Sequence[UsageTrace]) -> None:
        if traces:
            self._conn.execute(
                usage_traces.insert(),
                [
                    {"hour": t.hour, "account": t.account, "key_prefix": t.key_prefix,
                     "model": t.model, "version": t.version, "status": t.status,
                     "trace_id": t.trace_id}
                    for t in traces
                ],
            )  # fmt: skip

    def totals(self, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
        c = usage.c
        rows = self._conn.execute(
            sa.select(c.account, sa.func.sum(c.requests), sa.func.sum(c.rows))
            .where(c.hour >= since, c.hour < until, c.status < 400)
            .group_by(c.account)
        )
        return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}


def _settings(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(plan, k) for k in LIMIT_FIELDS}
    out["models"] = [str(t) for t in plan.models]
    out["overage"] = plan.overage
    out["price_per_1k_rows"] = (
        None if plan.price_per_1k_rows is None else str(plan.price_per_1k_rows)
    )
    out["price_per_1k_overage_rows"] = (
        None if plan.price_per_1k_overage_rows is None else str(plan.price_per_1k_overage_rows)
    )
    explained = plan.price_per_1k_explained_rows
    out["price_per_1k_explained_rows"] = None if explained is None else str(explained)
    out["description"] = plan.description
    out["explain"] = plan.explain
    out["thresholds"] = list(plan.thresholds)
    out["max_batch_bytes"] = plan.max_batch_bytes
    return out


def _plan(row: sa.Row[Any]) -> Plan:
    s = dict(row.settings)
    price, over = s.get("price_per_1k_rows"), s.get("price_per_1k_overage_rows")
    explaining = s.get("price_per_1k_explained_rows")
    return Plan(
        name=row.name,
        created_at=_aware(row.created_at),
        **{k: s.get(k) for k in LIMIT_FIELDS},
        models=tuple(Target.parse(t) for t in s.get("models") or ()),
        overage=bool(s.get("overage")),
        price_per_1k_rows=None if price is None else Decimal(price),
        price_per_1k_overage_rows=None if over is None else Decimal(over),
        price_per_1k_explained_rows=(None if explaining is None else Decimal(explaining)),
        description=s.get("description") or "",
        explain=bool(s.get("explain")),
        thresholds=tuple(int(t) for t in s.get("thresholds", (80, 100))),
        max_batch_bytes=s.get("max_batch_bytes"),
    )


class SqlUsageExportRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def cursor(self, sink: str) -> ExportCursor | None:
        row = self._conn.execute(
            sa.select(usage_exports).where(usage_exports.c.sink == sink)
        ).first()
        if row is None:
            return None
        return ExportCursor(
            row.sink,
            None if row.through_hour is None else _from_hours(int(row.through_hour)),
            int(row.failures),
            None if row.retry_at is None else _aware(row.retry_at),
        )

    def save_cursor(self, cursor: ExportCursor, *, expected: datetime | None) -> bool:
        values = {
            "through_hour": None if cursor.through is None else _hours(cursor.through),
            "failures": cursor.failures,
            "retry_at": None if cursor.retry_at is None else _utc(cursor.retry_at),
        }
        stored = self.cursor(cursor.sink)
        if stored is None:
            if expected is not None:
                return False
            self._conn.execute(usage_exports.insert().values(sink=cursor.sink, **values))
            return True
        where = usage_exports.c.sink == cursor.sink
        where &= (
            usage_exports.c.through_hour.is_(None)
            if expected is None
            else usage_exports.c.through_hour == _hours(expected)
        )
        done = self._conn.execute(usage_exports.update().where(where).values(**values))
        return bool(done.rowcount)

    def add_dead_letters(
        self, sink: str, letters: list[tuple[str, dict[str, Any], str]], at: datetime
    ) -> None:
        if not letters:
            return
        known = {
            r.event_id
            for r in self._conn.execute(
                sa.select(usage_dead_letters.c.event_id).where(
                    usage_dead_letters.c.sink == sink,
                    usage_dead_letters.c.event_id.in_([e for e, _, _ in letters]),
                )
            )
        }
        rows: list[dict[str, Any]] = []
        for event_id, event, error in letters:
            if event_id not in known:  # twice in one call: the first is kept, like a retry
                known.add(event_id)
                rows.append({"sink": sink, "event_id": event_id, "event": event,
                             "error": error[:2000], "failed_at": _utc(at)})  # fmt: skip
        if rows:
            self._conn.execute(usage_dead_letters.insert(), rows)

    def dead_letters(self, sink: str, *, pending: bool = True) -> list[DeadLetter]:
        query = sa.select(usage_dead_letters).where(usage_dead_letters.c.sink == sink)
        if pending:
            query = query.where(usage_dead_letters.c.replayed_at.is_(None))
        return [
            DeadLetter(
                r.id,
                r.sink,
                r.event_id,
                dict(r.event),
                r.error,
                _aware(r.failed_at),
                None if r.replayed_at is None else _aware(r.replayed_at),
            )  # fmt: skip
            for r in self._conn.execute(query.order_by(usage_dead_letters.c.id))
        ]

    def mark_replayed(self, ids: list[int], at: datetime) -> None:
        if ids:
            self._conn.execute(
                usage_dead_letters.update()
                .where(usage_dead_letters.c.id.in_(ids))
                .values(replayed_at=_utc(at))
            )


def _hours(at: datetime) -> int:
    return int(_aware(at).timestamp()) // 3600


def _from_hours(hours: int) -> datetime:
    return datetime.fromtimestamp(hours * 3600, UTC)
