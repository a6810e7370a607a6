"""Consumers' batch jobs as the edges call them: bound once at the composition root
(bootstrap.Services.batch_jobs) with the unit of work, the clock, the artifact store and the
runner, so an edge passes only the request's data and whose batch it is.

Each method delegates to batches.py; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.jobs.model import Job
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    import pandas as pd

    from mlgate.serving.batches import BatchRunner


@dataclass(frozen=True)
class Batches:
    """Batch jobs with this process's adapters bound; `runner` is made on first use."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    artifacts: ArtifactStore
    runner: Callable[[], BatchRunner]

    def submit(
        self,
        version: ModelVersion,
        upload: Path,
        fmt: str,
        *,
        account: str,
        key_prefix: str,
        asked: str,
    ) -> Job:
        """Register the uploaded rows as a batch of `version` and start it on this process."""
        from mlgate.serving.batches import submit_batch

        job = submit_batch(
            self.uow(), self.artifacts, version=version, upload=upload, fmt=fmt, account=account,
            key_prefix=key_prefix, now=self.clock(), asked=asked,
        )  # fmt: skip
        self.runner().start(job.id)
        return job

    def of(self, batch_id: str, account: str | None) -> Job:
        """`account`'s batch (None: anyone's, for an admin)."""
        from mlgate.serving.batches import batch_of

        return batch_of(self.uow(), batch_id, account)

    def cancel(self, job: Job) -> Job:
        from mlgate.serving.batches import cancel_batch

        return cancel_batch(self.uow(), self.artifacts, job, self.clock())

    def describe(self, job: Job) -> dict[str, Any]:
        """State, rows done and failed, and an ETA, as of now."""
        from mlgate.serving.batches import describe

        return describe(job, self.clock())

    def result_parts(self, job: Job) -> Iterator[pd.DataFrame]:
        from mlgate.serving.batches import result_parts

        return result_parts(self.artifacts, job)
