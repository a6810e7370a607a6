"""The job runner in process: a shutdown cancels what runs and registers nothing."""

from __future__ import annotations

import time
from pathlib import Path

from mlgate.bootstrap import Services
from mlgate.sources import demo
from mlgate.training.jobs import get_job
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
