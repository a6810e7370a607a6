"""Enforcing each model's log retention: the server's periodic purge.

How a purge gets through the append-only audit log. The audit log refuses UPDATE and DELETE from
every client of the database, by triggers (migration 0008). Migration 0023 narrows the DELETE
trigger instead of dropping it: a row may go only while a purge is *open* for its model in the
`audit_purges` table, and only if it is older than that purge's cutoff, names the model (its
target is the model, `model@…` or `model …`) and is not a purge's own record
(`retention.purge`). The purge path here is the only writer of `audit_purges`; in one transaction
it opens its row, deletes, appends a `retention.purge` event saying what went (counts, cutoff,
retention) and closes the row (a pass that removed nothing deletes it instead), so another
connection never sees it open, a failure rolls all of it back, and what stays is the closed row
and the event: the deletion is itself on the record.
(Anyone who may write the database could open a purge by hand, as they could drop the trigger:
the trigger keeps mistakes and other programs out, and the record keeps the purge visible.)
MariaDB has no such trigger (0008 made none there), so the same path simply deletes.

Each model with `log_retention_days` set (its monitoring settings) is purged of what is older than
that many days: its prediction log and feedback labels, its usage ledger rows (an hour's row once
the whole hour is older), their trace ids, and the audit events about it (retention/model.py names
which). The setting is never shorter than the billing period (retention/model.py, MIN_DAYS),
and a usage hour a billing sink has not been sent yet stays whatever the setting (a sink that
has sent nothing keeps them all; one that is no longer used should have its cursor removed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlgate.access.audit import records_its_own
from mlgate.access.model import AuditEvent
from mlgate.retention.model import PURGE_ACTION, Purged
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate")
ACTOR = "server:retention"


@records_its_own
def purge_model(uow: UnitOfWork, model: str, days: int, *, now: datetime) -> Purged:
    """Delete what is older than `days` of the model's logs, and record the purge (when it
    removed anything) in the same transaction."""
    cutoff = now - timedelta(days=days)
    with uow:
        purged = uow.retention.purge(model, cutoff, days=days, at=now)
        if purged.total:
            uow.audit.add(
                AuditEvent(
                    at=now,
                    actor=ACTOR,
                    action=PURGE_ACTION,
                    target=model,
                    address="local",
                    result="ok",
                    detail=purged.to_json(),
                )  # fmt: skip
            )
        uow.commit()
    return purged


@dataclass(frozen=True)
class Retention:
    """Bound once at the composition root (Services.retention)."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]

    def enforce(self) -> list[Purged]:
        """Purge every model that has a retention; what each purge removed. A model whose
        purge fails is logged and the others still run."""
        now = self.clock()
        with self.uow() as uow:
            settings = uow.monitoring.all_settings()
        done = []
        for model, found in sorted(settings.items()):
            if found.log_retention_days is None:
                continue
            try:
                done.append(purge_model(self.uow(), model, found.log_retention_days, now=now))
            except Exception:
                log.exception("the log retention of %s could not be enforced", model)
        for purged in done:
            if purged.total:
                log.info("retention: %s purged of %d rows older than %s", purged.model,
                         purged.total, purged.cutoff.isoformat())  # fmt: skip
        return done

    def days(self, model: str) -> int | None:
        with self.uow() as uow:
            found = uow.monitoring.settings(model)
        return None if found is None else found.log_retention_days
