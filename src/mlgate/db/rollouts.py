"""SQLAlchemy implementation of the rollout repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from mlgate.db.repositories import _aware, _utc
from mlgate.db.tables import rollout_counts, rollout_shadow, rollouts, schedules
from mlgate.rollouts.model import Rollout, Schedule, ShadowPair, SideCounts, add_counts

_FIELDS = (
    "model", "alias", "incumbent", "candidate", "mode", "share", "alpha", "auto",
    "max_error_rate", "max_latency_ratio", "min_agreement", "then_canary", "state", "reason",
    "started_at",
    "started_by", "deadline", "ended_at", "last_look",
)  # fmt: skip


class SqlRolloutRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, rollout: Rollout) -> Rollout:
        done = self._conn.execute(rollouts.insert().values(**_values(rollout)))
        key = done.inserted_primary_key
        assert key is not None
        return replace(rollout, id=int(key[0]))

    def get(self, rollout_id: int) -> Rollout | None:
        row = self._conn.execute(rollouts.select().where(rollouts.c.id == rollout_id)).first()
        return None if row is None else _rollout(row)

    def of_model(self, model: str) -> list[Rollout]:
        query = rollouts.select().where(rollouts.c.model == model).order_by(rollouts.c.id)
        return [_rollout(r) for r in self._conn.execute(query)]

    def running(self) -> list[Rollout]:
        query = rollouts.select().where(rollouts.c.state == "running").order_by(rollouts.c.id)
        return [_rollout(r) for r in self._conn.execute(query)]

    def save(self, rollout: Rollout) -> None:
        self._conn.execute(
            rollouts.update().where(rollouts.c.id == rollout.id).values(**_values(rollout))
        )

    def save_if_running(self, rollout: Rollout) -> bool:
        """Write the rollout if its stored state is still running (a compare-and-set: a stop
        or an end written meanwhile by another process is never overwritten)."""
        done = self._conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout.id, rollouts.c.state == "running")
            .values(**_values(rollout))
        )
        return done.rowcount == 1

    def add_counts(self, rows: Sequence[tuple[int, str, SideCounts]]) -> None:
        if rows:
            self._conn.execute(
                rollout_counts.insert(),
                [
                    {"rollout_id": rollout_id, "side": side, "calls": c.calls,
                     "failed": c.failed, "latency": list(c.latency), "compared": c.compared,
                     "agreed": c.agreed, "score_diff": c.score_diff}
                    for rollout_id, side, c in rows
                ],
            )  # fmt: skip

    def add_shadow(self, pairs: Sequence[ShadowPair]) -> None:
        if pairs:
            self._conn.execute(
                rollout_shadow.insert(),
                [
                    {"rollout_id": p.rollout_id, "request_id": p.request_id, "at": p.at,
                     "n_rows": p.n_rows, "agreed": p.agreed, "score_diff": p.score_diff,
                     "predictions": p.predictions, "error": p.error}
                    for p in pairs
                ],
            )  # fmt: skip

    def shadow(self, rollout_id: int, request_ids: Sequence[str] | None = None) -> list[ShadowPair]:
        """The kept pairs of a shadow (of these calls only, when given), in the order kept:
        sorted again over the chunks of ids, so asking for many calls keeps that order too."""
        t = rollout_shadow
        found: list[tuple[int, ShadowPair]] = []
        chunks = [None] if request_ids is None else _chunks(sorted(set(request_ids)))
        for chunk in chunks:
            query = t.select().where(t.c.rollout_id == rollout_id)
            if chunk is not None:
                query = query.where(t.c.request_id.in_(chunk))
            found.extend(
                (r.id, ShadowPair(r.rollout_id, r.request_id, _aware(r.at), r.n_rows, r.agreed,
                                  r.score_diff, r.predictions, r.error))
                for r in self._conn.execute(query.order_by(t.c.id))
            )  # fmt: skip
        return [pair for _, pair in sorted(found, key=lambda item: item[0])]

    def shadow_errors(self, rollout_id: int, limit: int) -> list[str]:
        t = rollout_shadow
        query = (
            sa.select(t.c.error).distinct()
            .where(t.c.rollout_id == rollout_id, t.c.error.is_not(None))
            .order_by(t.c.error).limit(limit)
        )  # fmt: skip
        return [r[0] for r in self._conn.execute(query)]

    def add_schedule(self, schedule: Schedule) -> Schedule:
        values = {name: getattr(schedule, name) for name in _SCHEDULE_FIELDS}
        key = self._conn.execute(schedules.insert().values(**values)).inserted_primary_key
        assert key is not None
        return replace(schedule, id=int(key[0]))

    def get_schedule(self, schedule_id: int) -> Schedule | None:
        row = self._conn.execute(schedules.select().where(schedules.c.id == schedule_id)).first()
        return None if row is None else _schedule(row)

    def schedules(self, model: str | None) -> list[Schedule]:
        query = schedules.select().order_by(schedules.c.id)
        if model is not None:
            query = query.where(schedules.c.model == model)
        return [_schedule(r) for r in self._conn.execute(query)]

    def save_schedule_if(self, schedule: Schedule, *, revision: int) -> bool:
        """Write the schedule if its stored revision is still `revision`."""
        values = {name: getattr(schedule, name) for name in _SCHEDULE_FIELDS}
        done = self._conn.execute(
            schedules.update()
            .where(schedules.c.id == schedule.id, schedules.c.revision == revision)
            .values(**values)
        )
        return done.rowcount == 1

    def delete_schedule(self, schedule_id: int) -> None:
        self._conn.execute(schedules.delete().where(schedules.c.id == schedule_id))

    def counts(self, rollout_id: int) -> dict[str, SideCounts]:
        t = rollout_counts
        query = sa.select(
            t.c.side, t.c.calls, t.c.failed, t.c.latency, t.c.compared, t.c.agreed, t.c.score_diff
        ).where(t.c.rollout_id == rollout_id)
        out: dict[str, SideCounts] = {}
        for side, calls, failed, latency, compared, agreed, diff in self._conn.execute(query):
            out[side] = add_counts(out.get(side), SideCounts(calls, failed, tuple(latency),
                                                            compared, agreed, diff))  # fmt: skip
        return out


def _chunks(items: list[str], size: int = 500) -> list[list[str] | None]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_SCHEDULE_FIELDS = (
    "model", "alias", "cron", "on_drift", "new_rows", "policy", "enabled", "created_at",
    "created_by", "next_run_at", "next_check_at", "last_fired_at", "pending_job",
    "last_outcome", "revision",
)  # fmt: skip


def _schedule(row: Any) -> Schedule:
    values = {name: getattr(row, name) for name in _SCHEDULE_FIELDS}
    for name in ("created_at", "next_run_at", "next_check_at", "last_fired_at"):
        values[name] = _utc(values[name])
    return Schedule(**values, id=row.id)


def _values(rollout: Rollout) -> dict[str, Any]:
    return {name: getattr(rollout, name) for name in _FIELDS}


def _rollout(row: Any) -> Rollout:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["started_at"] = _aware(row.started_at)
    values["deadline"] = _aware(row.deadline)
    values["ended_at"] = _utc(row.ended_at)
    return Rollout(**values, id=row.id)
