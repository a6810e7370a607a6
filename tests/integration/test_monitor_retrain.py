"""An alert can train a candidate version from the source's current rows; no alias moves."""

from __future__ import annotations

import time
from pathlib import Path

from mlgate.bootstrap import Services
from mlgate.jobs.runner import get_job
from mlgate.registry import aliases
from mlgate.registry.service import resolve_version
from mlgate.schema import rows_to_table
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to


def test_a_drift_alert_trains_a_candidate_and_leaves_production_alone(
    services: Services, tmp_path: Path
) -> None:
    database = tmp_path / "shop.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=600, seed=1))
    add_source_to(services, "shop", f"sqlite:///{database}", cwd=tmp_path)
    spec = TrainSpec("churn", "shop", demo.TARGET, "logistic_regression", table="customers",
                     drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
    first = train_model(services.uow(), services.artifacts, services.open_source, spec,
                        now=services.clock).version  # fmt: skip
    aliases.promote(
        services.uow(), "churn", 1, "production", actor="user:ann", now=services.clock()
    )
    services.monitor.configure("churn", sample_rate=1.0, retrain=True)

    frame = demo.churn_frame(n_rows=400, seed=2).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    frame["tenure_months"] = frame["tenure_months"] + 40
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for i in range(0, 400, 50):
        table = rows_to_table(rows[i : i + 50], first.columns, max_rows=100)
        said = services.predictors.get(first).score(table).predictions
        assert services.recorder.offer("churn", 1, "user:ann", f"req-{i:04d}", table, said)
    assert services.recorder.flush() == 8

    result = services.monitor.check("churn")
    assert result.state == "drifting"
    assert "tenure_months" in result.details["versions"]["1"]["drifted"]
    job_id = result.details["retrain_job"]
    deadline = time.monotonic() + 120
    while True:
        job = get_job(services.uow(), job_id)
        if job.state in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job.state == "succeeded", job
    candidate = resolve_version(services.uow(), "churn", 2)
    assert candidate.lineage.trained_by == "monitor"
    with services.uow() as uow:
        assert uow.models.aliases("churn") == {"production": 1}
