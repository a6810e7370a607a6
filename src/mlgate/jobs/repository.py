"""The jobs' storage seam (every kind in one table); db/ and tests/fakes.py implement it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mlgate.jobs.model import Job


class JobRepository(Protocol):
    def add(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...

    def save(self, job: Job) -> None: ...

    def unfinished(self) -> list[Job]: ...

    def finished_before(self, kind: str, before: datetime) -> list[Job]:
        """Jobs of `kind` that finished before `before`."""
        ...

    def request_cancel(self, job_id: str) -> None:
        """Ask an unfinished job to stop (a finished one is left as it is)."""
        ...

    def beat(self, job_ids: list[str], at: datetime) -> None:
        """Say that the unfinished jobs among `job_ids` are alive at `at`."""
        ...
