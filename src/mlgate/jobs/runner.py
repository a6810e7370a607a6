"""The job engine: runs the jobs of one kind on threads of this process, whatever the kind.

A job is a row (queued -> running -> succeeded | failed | cancelled) with its progress and the
tail of its log. The engine marks it running, hands it to the kind's work function, and writes
how the work ended (an `Outcome`; an exception the work lets out fails the job, saying why).
While a job is queued or running here, the engine says so every HEARTBEAT_EVERY (`owner`,
`heartbeat_at`), so a job whose process died (a dead pid on this host, or a heartbeat that
stopped for STALE_AFTER) is found by the next process that starts, on any replica, and either
failed (`fail_gone`) or taken over (`resume_gone`), as its kind decides. A cancel request is its
own UPDATE (`request_cancel`), so a runner saving progress cannot undo it; the work sees it at
its next `Run.report` or `Run.check`.

Usage, for a kind that supplies `score_rows(run) -> Outcome`::

    runner = JobRunner(uow_factory, clock, kind="batch", name="batch")
    runner.start(job_id, score_rows)  # a queued row someone added (see new_job)
    runner.resume_gone(score_rows)  # at start: the jobs of processes that died
"""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mlgate.access.audit import audited
from mlgate.errors import MlgateError, NotFound
from mlgate.jobs.model import FINISHED, LOG_LINES, Job, State
from mlgate.processes import process_gone, this_process
from mlgate.tracing import span
from mlgate.uow import UnitOfWork

HEARTBEAT_EVERY = timedelta(seconds=10)
STALE_AFTER = timedelta(seconds=60)  # no heartbeat for this long: the process is gone


def storable(text: str) -> str:
    """A failure's text as every database keeps it: a NUL (which PostgreSQL refuses in text,
    and a request may carry into a message) written out, so the job still ends as failed."""
    return text.replace("\x00", "\\x00")


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as its work says: the final state and the log's last line. `error` is
    a failure's reason; `result` replaces the job's (None keeps what the run left there);
    `warnings` are logged before the last line."""

    state: State
    line: str
    error: str | None = None
    result: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


class Run:
    """A job being run, as its work function sees it."""

    def __init__(
        self, job: Job, save: Callable[..., Job | None], uow: Callable[[], UnitOfWork]
    ) -> None:
        self.job = job  # as it was when this run began
        self._save = save
        self._uow = uow

    def report(self, *, line: str | None = None, **changes: Any) -> Job:
        """Save progress (`stage`, `progress`, `result`; `line` joins the log) and return the
        job as stored; raises JobCancelled when a cancel was asked for."""
        job = self._save(self.job.id, line=line, **changes)
        if job is None or job.cancel_requested:
            raise JobCancelled
        return job

    def check(self) -> Job:
        """The job as stored now; raises JobCancelled when a cancel was asked for."""
        with self._uow() as uow:
            job = uow.jobs.get(self.job.id)
        if job is None or job.cancel_requested:
            raise JobCancelled
        return job


Work = Callable[[Run], Outcome | None]  # None: the run leaves the job as it is (another has it)


def new_job(
    kind: str,
    spec: dict[str, Any],
    now: datetime,
    *,
    log: tuple[str, ...] = (),
    result: dict[str, Any] | None = None,
) -> Job:
    """A queued job of `kind`, owned by this process (which beats for it once it starts it)."""
    return Job(
        id=uuid.uuid4().hex,
        kind=kind,
        state="queued",
        spec=spec,
        created_at=now,
        log=log,
        result={} if result is None else result,
        owner=this_process(),
        heartbeat_at=now,
    )


def get_job(uow: UnitOfWork, job_id: str) -> Job:
    with uow:
        job = uow.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id[:40]!r}")
    return job


# The action keeps the name it had when only training had jobs: audit logs stay comparable.
@audited("training.cancel_job", "job_id")
def request_cancel(uow: UnitOfWork, job_id: str) -> Job:
    """Ask a job to stop at its next step; a queued job is cancelled when it would start."""
    with uow:
        job = uow.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id[:40]!r}")
        if job.state not in FINISHED:
            uow.jobs.request_cancel(job_id)
            uow.commit()
            job = replace(job, cancel_requested=True)
    return job


class JobRunner:
    """Runs the jobs of one kind on a small pool of threads (`mlgate-<name>`) and beats for
    them; `start_line` is logged when a queued job starts."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        kind: str,
        name: str,
        workers: int = 1,
        start_line: str | None = None,
    ) -> None:
        self.kind = kind
        self._uow = uow
        self._clock = clock
        self._name = name
        self._start_line = start_line
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"mlgate-{name}")
        self._lock = threading.Lock()
        self._active: set[str] = set()  # running here
        self._mine: set[str] = set()  # queued or running here: this process beats for them
        self._runs: dict[str, concurrent.futures.Future[None]] = {}
        self._heart: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, job: Job, work: Work) -> Job:
        """Store a new job (see new_job) and start it."""
        uow = self._uow()
        with uow:
            uow.jobs.add(job)
            uow.commit()
        self.start(job.id, work)
        return job

    def start(self, job_id: str, work: Work) -> None:
        """Run a stored job on this process's threads (after those queued before it)."""
        self._start_heartbeat()
        with self._lock:
            self._mine.add(job_id)
            self._runs[job_id] = self._pool.submit(self._run_job, job_id, work)

    def fail_gone(self, error: str) -> list[Job]:
        """Mark failed, with `error`, the unfinished jobs of this kind whose process is gone:
        one of this host whose pid is dead, or any whose heartbeat stopped (STALE_AFTER). Jobs
        of live neighbours (other workers or replicas) are theirs."""
        uow = self._uow()
        now = self._clock()
        with uow:
            gone = self._gone(uow, now)
            for job in gone:
                uow.jobs.save(replace(job, state="failed", error=error, finished_at=self._clock()))
            uow.commit()
        return gone

    def resume_gone(self, work: Work) -> list[str]:
        """Take over the unfinished jobs of this kind whose process is gone (as fail_gone finds
        them) and run `work` on each again; returns their ids."""
        now = self._clock()
        here = this_process()
        with self._uow() as uow:
            taken = self._gone(uow, now)
            for job in taken:
                log = (*job.log, f"resumed by {here}")[-LOG_LINES:]
                uow.jobs.save(replace(job, owner=here, heartbeat_at=now, log=log))
            uow.commit()
        for job in taken:
            self.start(job.id, work)
        return [job.id for job in taken]

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once this process's run of it has ended (at once for another process's);
        raises TimeoutError after `timeout` seconds."""
        run = self._runs.get(job_id)
        if run is not None:
            concurrent.futures.wait([run], timeout=timeout)
            if not run.done():
                raise TimeoutError(f"job {job_id} is still running after {timeout} s")
        return get_job(self._uow(), job_id)

    def shutdown(self, *, wait: bool = True, cancel: bool = True) -> None:
        """Stop: queued jobs never start; with `cancel` running ones are cancelled at their
        next step, without it they stay running for the next process to find."""
        if cancel:
            for job_id in list(self._active):
                request_cancel(self._uow(), job_id)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._stop.set()

    def _gone(self, uow: UnitOfWork, now: datetime) -> list[Job]:
        return [
            job
            for job in uow.jobs.unfinished()
            if job.kind == self.kind
            and job.id not in self._mine
            and process_gone(
                job.owner, job.heartbeat_at or job.started_at or job.created_at, now, STALE_AFTER
            )  # fmt: skip
        ]

    def beat(self) -> None:
        """Say that this process's queued and running jobs are alive now (the heartbeat thread
        does, every HEARTBEAT_EVERY)."""
        mine = list(self._mine)
        if mine:
            uow = self._uow()
            with uow:
                uow.jobs.beat(mine, self._clock())
                uow.commit()

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._heart is None:
                self._heart = threading.Thread(
                    target=self._beating, name=f"mlgate-{self._name}-heartbeat", daemon=True
                )
                self._heart.start()

    def _beating(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY.total_seconds()):
            try:
                self.beat()
            except Exception:  # the database away for a moment: the next beat tries again
                continue

    def _run_job(self, job_id: str, work: Work) -> None:
        self._active.add(job_id)
        try:
            job = self._begin(job_id)
            if job is not None:
                model = job.spec.get("model") or job.spec.get("name")
                said = {"mlgate.job.id": job.id, "mlgate.job.kind": job.kind,
                        "mlgate.model": str(model) if model else None}  # fmt: skip
                with span(f"job {job.kind}", said) as traced:
                    outcome = self._outcome(work, Run(job, self._update, self._uow))
                    if traced is not None and outcome is not None:
                        traced.set_attribute("mlgate.job.state", outcome.state)
                if outcome is not None:
                    self._finish(job_id, outcome)
        finally:
            self._active.discard(job_id)
            self._mine.discard(job_id)
            # What `wait` needs is the future: a finished one is dropped once it is done.
            done = [k for k, f in self._runs.items() if f.done() and k != job_id]
            for key in done:
                self._runs.pop(key, None)

    def _begin(self, job_id: str) -> Job | None:
        """The job, marked running if it was queued (a resumed one runs on); None if it is
        gone or finished."""
        with self._lock:
            uow = self._uow()
            with uow:
                job = uow.jobs.get(job_id)
                if job is None or job.state in FINISHED:
                    return None
                if job.state == "queued":
                    log = (*job.log, self._start_line) if self._start_line else job.log
                    job = replace(job, state="running", started_at=self._clock(),
                                  log=log[-LOG_LINES:])  # fmt: skip
                    uow.jobs.save(job)
                    uow.commit()
        return job

    @staticmethod
    def _outcome(work: Work, run: Run) -> Outcome | None:
        try:
            return work(run)
        except JobCancelled:
            return Outcome("cancelled", "cancelled")
        except MlgateError as exc:
            return Outcome("failed", f"failed: {exc}", error=str(exc))
        except Exception as exc:  # a bug or a library failure: the job says so, the server lives
            message = f"{type(exc).__name__}: {exc}"
            return Outcome("failed", f"failed: {message}", error=message)

    def _finish(self, job_id: str, outcome: Outcome) -> None:
        for warning in outcome.warnings:
            self._update(job_id, line=storable(f"warning: {warning}"))
        self._update(
            job_id,
            state=outcome.state,
            line=storable(outcome.line),
            error=None if outcome.error is None else storable(outcome.error),
            result=outcome.result,
            finished_at=self._clock(),
            progress=1.0 if outcome.state == "succeeded" else None,
        )

    def _update(self, job_id: str, *, line: str | None = None, **changes: Any) -> Job | None:
        """Save `changes` that are not None (`error` always) and `line` into the log; None if
        the job is gone."""
        with self._lock:
            uow = self._uow()
            with uow:
                job = uow.jobs.get(job_id)
                if job is None:
                    return None
                values = {k: v for k, v in changes.items() if v is not None or k == "error"}
                if line:
                    values["log"] = (*job.log, line)[-LOG_LINES:]
                job = replace(job, **values)
                uow.jobs.save(job)
                uow.commit()
        return job
