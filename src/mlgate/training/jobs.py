"""Training jobs: a training run that outlives the request that started it.

The job engine (mlgate.jobs.runner) runs them, beats for them and finds those of processes that
died; this module supplies the work (train_model, its stages as progress) and the rule for a
dead process's job: it failed. Registration is atomic (registry.service.register_version), so a
failed or cancelled job registers nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlgate.jobs.model import Job
from mlgate.jobs.runner import (
    JobCancelled,
    JobRunner,
    Outcome,
    Run,
    get_job,
    new_job,
    request_cancel,
)
from mlgate.registry.store import ArtifactStore
from mlgate.signing.model import SignVersion
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:  # the training machinery loads when a job runs, not when jobs are listed
    from mlgate.training.service import SliceCard, TrainSpec

EPOCH_LINES_EVERY = 0.5  # seconds between two logged epochs (and cancellation checks)
GONE = "the server stopped before this job finished; nothing was registered"


class TrainingRunner:
    """Runs training jobs on a small pool of threads in this process."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        artifacts: ArtifactStore,
        open_source: Callable[[SourceConfig], Source],
        clock: Callable[[], datetime],
        *,
        workers: int = 1,
        sign: SignVersion | None = None,
        slice_card: SliceCard | None = None,
    ) -> None:
        self._uow = uow_factory
        self._sign = sign
        self._slice_card = slice_card
        self._artifacts = artifacts
        self._open_source = open_source
        self._clock = clock
        self._runner = JobRunner(
            uow_factory, clock, kind="train", name="job", workers=workers, start_line="started"
        )

    def recover(self) -> int:
        """Mark failed the training jobs left unfinished by a process that is gone (see
        JobRunner.fail_gone); returns how many."""
        return len(self._runner.fail_gone(GONE))

    def submit(self, spec: TrainSpec, spec_json: dict[str, Any]) -> Job:
        job = new_job(
            "train",
            spec_json,
            self._clock(),
            log=(f"queued: train {spec.model_name} with {spec.algorithm}",),
        )
        return self._runner.submit(job, lambda run: self._train(run, spec))

    def get(self, job_id: str) -> Job:
        """A training job as stored (any process's)."""
        return get_job(self._uow(), job_id)

    def request_cancel(self, job_id: str) -> Job:
        """Ask the job to stop at its next step (jobs.runner.request_cancel, which records)."""
        return request_cancel(self._uow(), job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once this process's run of it has ended (at once for another process's);
        raises TimeoutError after `timeout` seconds."""
        return self._runner.wait(job_id, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued jobs never start, running ones are cancelled at their next step."""
        self._runner.shutdown(wait=wait, cancel=True)

    def _train(self, run: Run, spec: TrainSpec) -> Outcome:
        from mlgate.training.service import STAGES, train_model

        if run.job.cancel_requested:
            return Outcome("cancelled", "cancelled before it started")

        written = [0.0]

        def progress(stage: str, detail: str) -> None:
            now = time.monotonic()
            if detail.startswith("epoch ") and now - written[0] < EPOCH_LINES_EVERY:
                return  # a network may run hundreds of epochs a second: log (and look) less
            written[0] = now
            fraction = STAGES.index(stage) / len(STAGES) if stage in STAGES else 0.0
            run.report(stage=stage, progress=fraction, line=detail)  # raises JobCancelled

        try:
            result = train_model(
                self._uow(),
                self._artifacts,
                self._open_source,
                spec,
                now=self._clock,
                progress=progress,
                sign=self._sign,
                slice_card=self._slice_card,
            )
        except JobCancelled:
            return Outcome("cancelled", "cancelled; nothing was registered")
        version = result.version
        return Outcome(
            "succeeded",
            f"registered {version.ref}",
            result={
                "model": version.model_name,
                "version": version.number,
                "metrics": version.metrics,
            },  # fmt: skip
            warnings=result.warnings,
        )
