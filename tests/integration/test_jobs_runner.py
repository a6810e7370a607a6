"""The job runner in process: a shutdown cancels what runs and registers nothing."""

from __future__ import annotations

import time
from pathlib import Path

from mlgate.bootstrap import Services
from mlgate.jobs.runner import get_job
from mlgate.sources import demo
from mlgate.training.service import TrainSpec
from mlgate.training.tuning import TuneSpec
from tests.conftest import add_source_to


def test_shutting_down_cancels_the_running_job(services: Services, tmp_path: Path) -> None:
    demo.churn_frame(n_rows=400).to_csv(tmp_path / "churn.csv", index=False)
    add_source_to(services, "d", str(tmp_path), cwd=tmp_path)
    spec = TrainSpec(
        "long",
        "d",
        "churned",
        "random_forest",
        table="churn",
        tune=TuneSpec(trials=1000),
        report=False,
    )
    job = services.jobs.submit(spec, {"model": "long"})
    deadline = time.monotonic() + 60
    while get_job(services.uow(), job.id).stage != "tune":
        assert time.monotonic() < deadline, "the job never reached tuning"
        time.sleep(0.05)
    services.jobs.shutdown(wait=True)
    finished = get_job(services.uow(), job.id)
    assert finished.state == "cancelled"
    with services.uow() as uow:
        assert uow.models.get("long") is None


def test_a_starting_process_fails_only_the_jobs_of_processes_that_are_gone(
    any_services: Services,
) -> None:
    """Several replicas share the jobs table: a neighbour's running job is left alone."""
    import os
    import socket
    import subprocess
    import sys
    from dataclasses import replace
    from datetime import timedelta

    from mlgate.jobs.model import Job
    from mlgate.jobs.runner import STALE_AFTER

    s = any_services
    now = s.clock()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    here = socket.gethostname()
    base = Job(id="", kind="train", state="running", spec={"model": "m"}, created_at=now)
    jobs = {
        "dead-pid": replace(base, id="a" * 32, owner=f"{here}:{dead}", heartbeat_at=now),
        "live-neighbour": replace(
            base, id="b" * 32, owner=f"{here}:{os.getppid()}", heartbeat_at=now - 2 * STALE_AFTER
        ),  # fmt: skip
        "other-host-beating": replace(
            base, id="c" * 32, owner="replica-2:77", heartbeat_at=now - timedelta(seconds=5)
        ),  # fmt: skip
        "other-host-silent": replace(
            base, id="d" * 32, owner="replica-3:77", heartbeat_at=now - 2 * STALE_AFTER
        ),  # fmt: skip
    }
    uow = s.uow()
    with uow:
        for job in jobs.values():
            uow.jobs.add(job)
        uow.commit()
    assert s.jobs.recover() == 2
    states = {name: get_job(s.uow(), job.id).state for name, job in jobs.items()}
    assert states == {
        "dead-pid": "failed",
        "live-neighbour": "running",
        "other-host-beating": "running",
        "other-host-silent": "failed",
    }


def test_a_cancel_request_survives_the_runner_saving_progress(services: Services) -> None:
    from mlgate.jobs.model import Job
    from mlgate.jobs.runner import request_cancel

    uow = services.uow()
    job = Job(id="e" * 32, kind="train", state="running", spec={"model": "m"},
              created_at=services.clock())  # fmt: skip
    with uow:
        uow.jobs.add(job)
        uow.commit()
    request_cancel(services.uow(), job.id)
    with uow:  # the runner's view from before the request, saved after it
        uow.jobs.save(job)
        uow.commit()
    assert get_job(services.uow(), job.id).cancel_requested
