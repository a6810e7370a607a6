"""The audit log: every state-changing action, who, what, on what, from where, and how it went.

Append-only: there is no update or delete here, and database triggers refuse them from anyone.
"""

from __future__ import annotations

import getpass
import logging
from datetime import datetime
from typing import Any

from mlgate.access.model import AuditEvent, Principal
from mlgate.access.repository import AuditQuery
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.audit")
MAX_LIMIT = 1000


def local_actor() -> str:
    """The operator at this machine's CLI."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def actor_of(principal: Principal | None) -> str:
    return local_actor() if principal is None else principal.actor


def record(
    uow: UnitOfWork,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    address: str,
    result: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event in its own transaction; a failure to write it is logged, never hidden."""
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        target=target,
        address=address,
        result=result,
        detail=detail or {},
    )
    try:
        with uow:
            uow.audit.add(event)
            uow.commit()
    except Exception:
        log.exception("could not write the audit event %s %s by %s", action, target, actor)
        raise


def query(uow: UnitOfWork, q: AuditQuery) -> list[AuditEvent]:
    with uow:
        return uow.audit.query(q)
