"""Training jobs as stored: the same behaviour from the in-memory fake and from SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mlgate.jobs.model import Job
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def a_job(job_id: str, **changes: object) -> Job:
    base = Job(job_id, "train", "queued", {"model": "churn", "target": "churned"}, T0,
               owner="host:1", heartbeat_at=T0)  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_saved_job_never_undoes_a_cancel_request(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.jobs.add(a_job("a" * 32))
        uow.commit()
    with uow_factory() as uow:
        uow.jobs.request_cancel("a" * 32)
        uow.commit()
    running = a_job("a" * 32, state="running", stage="fit", progress=0.5, log=("started",),
                    started_at=T0 + timedelta(seconds=1))  # fmt: skip
    with uow_factory() as uow:
        uow.jobs.save(running)  # read before the request: says cancel_requested=False
        uow.commit()
    with uow_factory() as uow:
        assert uow.jobs.get("a" * 32) == replace(running, cancel_requested=True)
        assert uow.jobs.get("b" * 32) is None


def test_finished_jobs_take_no_beat_and_no_cancel(uow_factory: UowFactory) -> None:
    done = a_job("d" * 32, state="succeeded", result={"version": 3}, finished_at=T0)
    with uow_factory() as uow:
        uow.jobs.add(a_job("q" * 32))
        uow.jobs.add(a_job("r" * 32, state="running"))
        uow.jobs.add(done)
        uow.commit()
    later = T0 + timedelta(minutes=5)
    with uow_factory() as uow:
        uow.jobs.beat(["q" * 32, "d" * 32], later)
        uow.jobs.beat([], later)
        uow.jobs.request_cancel("d" * 32)
        uow.commit()
    with uow_factory() as uow:
        assert sorted(j.id[0] for j in uow.jobs.unfinished()) == ["q", "r"]
        assert uow.jobs.get("d" * 32) == done
        queued = uow.jobs.get("q" * 32)
        assert queued is not None and queued.heartbeat_at == later
