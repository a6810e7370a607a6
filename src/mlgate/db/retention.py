"""SQLAlchemy implementation of the retention's repository: one purge of a model's logs,
through the audit log's purge path (migration 0023, retention/service.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from mlgate.db.plans import _from_hours
from mlgate.db.repositories import _aware
from mlgate.db.tables import (
    audit_events,
    audit_purges,
    feedback,
    prediction_log,
    usage,
    usage_exports,
    usage_traces,
)
from mlgate.retention.model import MODEL_AREAS, PURGE_ACTION, Purged


class SqlRetentionRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def purge(self, model: str, cutoff: datetime, *, days: int, at: datetime) -> Purged:
        cutoff = _aware(cutoff)
        hour_cutoff = cutoff - timedelta(hours=1)  # an hour's row goes once all of it is older
        conn = self._conn
        sent = [row[0] for row in conn.execute(sa.select(usage_exports.c.through_hour))]
        # A billing sink's hours not yet sent stay, whatever the retention (bills come first).
        until = None if None in sent else min((_from_hours(int(h)) for h in sent), default=None)
        usage_hour = usage.c.hour <= hour_cutoff
        traces_hour = usage_traces.c.hour <= hour_cutoff
        if None in sent:
            usage_hour = traces_hour = sa.false()
        elif until is not None:
            usage_hour = sa.and_(usage_hour, usage.c.hour < until)
            traces_hour = sa.and_(traces_hour, usage_traces.c.hour < until)
        opened = conn.execute(
            audit_purges.insert().values(model=model, cutoff=cutoff, at=at, open=True)
        ).inserted_primary_key
        assert opened is not None
        purge_id = opened[0]

        def gone(statement: sa.Delete) -> int:
            return int(conn.execute(statement).rowcount or 0)

        a = audit_events.c
        names_model = sa.or_(
            a.target == model,
            sa.func.substr(a.target, 1, len(model) + 1).in_([f"{model}@", f"{model} "]),
        )
        purged = Purged(
            model=model,
            cutoff=cutoff,
            retention_days=days,
            predictions=gone(
                prediction_log.delete().where(
                    prediction_log.c.model == model, prediction_log.c.at < cutoff
                )
            ),
            feedback=gone(
                feedback.delete().where(feedback.c.model == model, feedback.c.at < cutoff)
            ),
            usage=gone(usage.delete().where(usage.c.model == model, usage_hour)),
            usage_traces=gone(
                usage_traces.delete().where(usage_traces.c.model == model, traces_hour)
            ),
            audit_events=gone(
                audit_events.delete().where(
                    a.at < cutoff,
                    names_model,
                    a.action != PURGE_ACTION,
                    sa.or_(*(a.action.startswith(area, autoescape=True) for area in MODEL_AREAS)),
                )
            ),
        )
        mine = audit_purges.c.id == purge_id
        if purged.total:  # closed, it stays as the record of what went
            conn.execute(
                audit_purges.update().where(mine).values(open=False, counts=purged.to_json())
            )
        else:  # a pass that found nothing leaves nothing behind
            conn.execute(audit_purges.delete().where(mine))
        return purged
