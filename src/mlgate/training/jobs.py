"""Training jobs: a training run that outlives the request that started it.

A job is a row (queued -> running -> succeeded | failed | cancelled) with its progress and the
tail of its log. `JobRunner` runs jobs on background threads of the serving process and says so
every few seconds (`owner`, `heartbeat_at`); a job whose process died (a dead pid on this host,
or a heartbeat that stopped) is marked failed by the next process that starts, on any replica.
Registration is atomic (registry.service.register_version), so a failed or cancelled job
registers nothing.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlgate.access.audit import audited
from mlgate.errors import MlgateError, NotFound
from mlgate.processes import process_gone, this_process
from mlgate.registry.store import ArtifactStore
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.training.model import FINISHED, LOG_LINES, Job, State
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:  # the training machinery loads when a job runs, not when jobs are listed
    from mlgate.training.service import TrainSpec

HEARTBEAT_EVERY = timedelta(seconds=10)
STALE_AFTER = timedelta(seconds=60)  # no heartbeat for this long: the process is gone


def _gone(job: Job, now: datetime) -> bool:
    return process_gone(job.owner, job.heartbeat_at or job.started_at or job.created_at, now,
                        STALE_AFTER)  # fmt: skip


EPOCH_LINES_EVERY = 0.5  # seconds between two logged epochs (and cancellation checks)


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


def get_job(uow: UnitOfWork, job_id: str) -> Job:
    with uow:
        job = uow.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id[:40]!r}")
    return job


@audited("training.cancel_job", "job_id")
def request_cancel(uow: UnitOfWork, job_id: str) -> Job:
    """Ask a job to stop at its next step; a queued job is cancelled at once."""
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
    """Runs training jobs on a small pool of threads in this process."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        artifacts: ArtifactStore,
        open_source: Callable[[SourceConfig], Source],
        clock: Callable[[], datetime],
        *,
        workers: int = 1,
    ) -> None:
        self._uow = uow_factory
        self._artifacts = artifacts
        self._open_source = open_source
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlgate-job")
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._mine: set[str] = set()  # queued or running here: this process beats for them
        self._runs: dict[str, concurrent.futures.Future[None]] = {}
        self._heart: threading.Thread | None = None
        self._stop = threading.Event()

    def recover(self) -> int:
        """Mark failed the jobs left unfinished by a process that is gone: one of this host
        whose pid is dead, or any whose heartbeat stopped (STALE_AFTER); returns how many.
        Jobs of live neighbours (other workers or replicas) are theirs."""
        uow = self._uow()
        now = self._clock()
        with uow:
            stale = [j for j in uow.jobs.unfinished() if j.kind != "batch" and _gone(j, now)]
            for job in stale:
                uow.jobs.save(
                    replace(
                        job,
                        state="failed",
                        error="the server stopped before this job finished; nothing was registered",
                        finished_at=self._clock(),
                    )
                )
            uow.commit()
        return len(stale)

    def submit(self, spec: TrainSpec, spec_json: dict[str, Any]) -> Job:
        self._start_heartbeat()
        job = Job(
            id=uuid.uuid4().hex,
            kind="train",
            state="queued",
            spec=spec_json,
            created_at=self._clock(),
            log=(f"queued: train {spec.model_name} with {spec.algorithm}",),
            owner=this_process(),
            heartbeat_at=self._clock(),
        )
        uow = self._uow()
        with uow:
            uow.jobs.add(job)
            uow.commit()
        self._mine.add(job.id)
        self._runs[job.id] = self._pool.submit(self._run, job.id, spec)
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once this process's run of it has ended (at once for another process's);
        raises TimeoutError after `timeout` seconds."""
        run = self._runs.get(job_id)
        if run is not None:
            concurrent.futures.wait([run], timeout=timeout)
            if not run.done():
                raise TimeoutError(f"job {job_id} is still running after {timeout} s")
        return get_job(self._uow(), job_id)

    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued jobs never start, running ones are cancelled at their next step."""
        for job_id in list(self._active):
            request_cancel(self._uow(), job_id)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._stop.set()

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._heart is None:
                self._heart = threading.Thread(
                    target=self._beat, name="mlgate-job-heartbeat", daemon=True
                )
                self._heart.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY.total_seconds()):
            mine = list(self._mine)
            if not mine:
                continue
            try:
                uow = self._uow()
                with uow:
                    uow.jobs.beat(mine, self._clock())
                    uow.commit()
            except Exception:  # the database away for a moment: the next beat tries again
                continue

    def _run(self, job_id: str, spec: TrainSpec) -> None:
        self._active.add(job_id)
        try:
            self._train(job_id, spec)
        finally:
            self._active.discard(job_id)
            self._mine.discard(job_id)
            # What `wait` needs is the future: a finished one is dropped once it is done.
            done = [k for k, f in self._runs.items() if f.done() and k != job_id]
            for key in done:
                self._runs.pop(key, None)

    def _train(self, job_id: str, spec: TrainSpec) -> None:
        from mlgate.training.service import STAGES, train_model

        job = self._update(job_id, state="running", started_at=self._clock(), line="started")
        if job.cancel_requested:
            self._finish(job_id, "cancelled", line="cancelled before it started")
            return

        written = [0.0]

        def progress(stage: str, detail: str) -> None:
            now = time.monotonic()
            if detail.startswith("epoch ") and now - written[0] < EPOCH_LINES_EVERY:
                return  # a network may run hundreds of epochs a second: log (and look) less
            written[0] = now
            fraction = STAGES.index(stage) / len(STAGES) if stage in STAGES else 0.0
            current = self._update(job_id, stage=stage, progress=fraction, line=detail)
            if current.cancel_requested:
                raise JobCancelled

        try:
            result = train_model(
                self._uow(),
                self._artifacts,
                self._open_source,
                spec,
                now=self._clock,
                progress=progress,
            )
        except JobCancelled:
            self._finish(job_id, "cancelled", line="cancelled; nothing was registered")
        except MlgateError as exc:
            self._finish(job_id, "failed", error=str(exc), line=f"failed: {exc}")
        except Exception as exc:  # a bug or a library failure: the job says so, the server lives
            message = f"{type(exc).__name__}: {exc}"
            self._finish(job_id, "failed", error=message, line=f"failed: {message}")
        else:
            version = result.version
            self._finish(
                job_id,
                "succeeded",
                result={
                    "model": version.model_name,
                    "version": version.number,
                    "metrics": version.metrics,
                },
                line=f"registered {version.ref}",
                warnings=result.warnings,
            )

    def _finish(
        self,
        job_id: str,
        state: State,
        *,
        line: str,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        for warning in warnings:
            self._update(job_id, line=f"warning: {warning}")
        self._update(
            job_id,
            state=state,
            line=line,
            error=error,
            result=result or {},
            finished_at=self._clock(),
            progress=1.0 if state == "succeeded" else None,
        )

    def _update(self, job_id: str, *, line: str | None = None, **changes: Any) -> Job:
        with self._lock:
            uow = self._uow()
            with uow:
                job = uow.jobs.get(job_id)
                assert job is not None
                values = {k: v for k, v in changes.items() if v is not None or k == "error"}
                if line:
                    values["log"] = (*job.log, line)[-LOG_LINES:]
                job = replace(job, **values)
                uow.jobs.save(job)
                uow.commit()
        return job
