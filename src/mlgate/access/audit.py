"""The audit log: every state-changing action, who, what, on what, from where, and how it went.

Append-only: there is no update or delete here, and database triggers refuse them from anyone.

Who writes it. Each use case that changes state is declared `@audited(action, target)`: called
inside `acting(actor, address)` (the CLI opens one for each local command, the operator as
`cli:<os user>`, so the quickstart's changes are recorded too) it records its own event, ok,
failed or denied, whichever edge called it. A use case called by another audited one is part of
that one's event (training registers a version: one event). An HTTP request is recorded by the
API's AuditLog middleware, which also sees the calls refused before any use case runs; work the
server does by itself (rollouts, schedules, thresholds) records its own events, with its own
actor. `NOT_AUDITED` lists the state-changing functions that are not use cases of an operator,
each with why; tests/unit/test_audited_use_cases.py finds every function that commits and fails
for one that is in neither.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from mlgate.access.model import AuditEvent, AuditQuery, Principal
from mlgate.errors import PermissionDenied, TooManyRequests, Unauthenticated
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.audit")
MAX_LIMIT = 1000
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Targeting = str | Callable[[Mapping[str, Any]], str]


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


# ---- use cases record their own changes --------------------------------------------------------


@dataclass
class Acting:
    """Who is at work in an `acting` block, and how many events its use cases recorded."""

    actor: str
    address: str
    depth: int = 0  # > 0 inside an audited use case: the ones it calls are part of its event
    recorded: int = 0


_ACTING: ContextVar[Acting | None] = ContextVar("mlgate_acting", default=None)
_DENIED = (PermissionDenied, Unauthenticated, TooManyRequests)  # the rest: "failed"

# State-changing functions that are not an operator's use cases, and why they record nothing of
# their own: the test of the registry fails for a committing function in neither place.
NOT_AUDITED: dict[str, str] = {
    "access.service.authenticate": "every call: only a key's last use is noted",
    "access.audit.record": "the audit log itself",
    "bootstrap.bootstrap": "starts the process: migrations, nobody's change",
    "bootstrap.Services.rollouts": "binds the rollouts' use cases (a job submitter among them)",
    "monitoring.recorder.PredictionRecorder.flush": "the sampled prediction log",
    "monitoring.service.Monitor.feedback": "consumers' labels: data, metered like predictions",
    "monitoring.service.Monitor.check_all": "the server's periodic checks (check records)",
    "plans.flusher.UsageFlusher.flush": "the usage ledger",
    "registry.service.recover_writes": "crash recovery at start: nobody's change",
    "rollouts.tally.RolloutTally.flush": "counts of calls",
    "serving.shadow.ShadowScorer.flush": "counts of calls",
    "serving.batches.BatchRunner.expire": "the server expiring old jobs",
    "retention.service.Retention.enforce": "the server's loop; purge_model records each purge",
    "jobs.runner.JobRunner.submit": "queues a job; the request that asks is recorded",
    "training.jobs.TrainingRunner.request_cancel": "jobs.runner.request_cancel records it",
    "jobs.runner.JobRunner.fail_gone": "the server failing jobs of dead processes (training)",
    "jobs.runner.JobRunner.resume_gone": "the server resuming jobs of dead processes (batches)",
    "jobs.runner.JobRunner.shutdown": "the server stopping: training jobs are cancelled",
    "jobs.runner.JobRunner.beat": "the heartbeat: this process saying its jobs are alive",
    "training.dask_path.train_on_dask": "a path of training.service.train_model, which records",
    "training.steps.register_trained": "the tail of training.service.train_model, which records",
}


@contextmanager
def acting(actor: str, address: str = "local") -> Iterator[Acting]:
    """Who makes the changes in this block, and from where: the audited use cases called in it
    record their events as theirs."""
    scope = Acting(actor, address)
    token = _ACTING.set(scope)
    try:
        yield scope
    finally:
        _ACTING.reset(token)


def unattended(run: Callable[[], T]) -> T:
    """Call `run` with no one acting: a server started at the CLI records each request itself
    (the AuditLog middleware, with the caller as actor), not as the operator who started it."""
    context = copy_context()
    context.run(_ACTING.set, None)
    return context.run(run)


def records_its_own(use_case: F) -> F:
    """Declare a function that writes its own audit events (with its own actor, e.g.
    `rollout:<id>`, and detail): the audited use cases it calls are part of those."""

    @functools.wraps(use_case)
    def run(*args: Any, **kwargs: Any) -> Any:
        scope = _ACTING.get()
        if scope is not None:
            scope.depth += 1
        try:
            return use_case(*args, **kwargs)
        finally:
            if scope is not None:
                scope.depth -= 1

    run.__mlgate_audited__ = "its own"  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def audited(
    action: Targeting,
    target: Targeting,
    *,
    detail: Callable[[Mapping[str, Any], Any], dict[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Declare a use case that changes state: inside `acting(...)` each call records one event,
    `action` on `target` (each a format string over the parameters, a parameter's name for the
    target, or a function of the parameters), "ok", "failed" or "denied"; the use case's own
    exception goes on unchanged. `detail(parameters, result)` adds to a successful event."""

    def wrap(use_case: F) -> F:
        signature = inspect.signature(use_case)

        @functools.wraps(use_case)
        def run(*args: Any, **kwargs: Any) -> Any:
            scope = _ACTING.get()
            if scope is None or scope.depth:
                return use_case(*args, **kwargs)
            arguments = signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            scope.depth += 1
            try:
                out = use_case(*args, **kwargs)
            except Exception as exc:
                result = "denied" if isinstance(exc, _DENIED) else "failed"
                error = {"error": str(getattr(exc, "code", "") or type(exc).__name__)}
                with suppress(Exception):  # logged by record(); the use case's error comes first
                    _write(arguments.arguments, action, target, scope, result, error)
                raise
            finally:
                scope.depth -= 1
            said = {} if detail is None else detail(arguments.arguments, out)
            _write(arguments.arguments, action, target, scope, "ok", said)
            return out

        run.__mlgate_audited__ = action  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


def _write(
    arguments: Mapping[str, Any],
    action: Targeting,
    target: Targeting,
    scope: Acting,
    result: str,
    detail: dict[str, Any],
) -> None:
    if callable(target):
        named = target(arguments)
    elif target in arguments:
        named = str(arguments[target])
    else:
        named = target.format_map(arguments)
    now = arguments.get("now")
    if callable(now):  # a clock
        now = now()
    uow = arguments.get("uow", getattr(arguments.get("self"), "_uow", None))
    if not hasattr(uow, "audit") and callable(uow):  # a factory of units of work
        uow = uow()
    record(
        uow,
        at=now if isinstance(now, datetime) else datetime.now(UTC),
        actor=scope.actor,
        action=action(arguments) if callable(action) else action.format_map(arguments),
        target=named,
        address=scope.address,
        result=result,
        detail=detail,
    )
    scope.recorded += 1
