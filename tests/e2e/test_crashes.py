"""A process killed (SIGKILL) anywhere in registering a version leaves the registry consistent:
no row without its files, no file without its row; `mlgate doctor` finds nothing wrong."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e.helpers import env_for, mlgate

POINTS = ["journaled", "artifact written", "attachments written", "before commit", "committed"]

SCRIPT = """
import os, signal, sys
from pathlib import Path
from mlgate.registry import service
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import make_services

point = sys.argv[1]
service.CRASH_HOOK = lambda at: os.kill(os.getpid(), signal.SIGKILL) if at == point else None
services = make_services(Path(sys.argv[2]))
spec = TrainSpec("churn", "c", "churned", "logistic_regression", table="c", drop=("customer_id",))
train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
"""


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_point_leaves_a_consistent_registry(point: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo.churn_frame(n_rows=300).to_csv(tmp_path / "c.csv", index=False)
    mlgate(home, "sources", "add", "c", str(tmp_path / "c.csv"))

    killed = subprocess.run(
        [sys.executable, "-c", SCRIPT, point, str(home)],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    doctor = mlgate(home, "doctor", check=False)  # starting up recovers the interrupted write
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    services = make_services(home)
    try:
        with services.uow() as uow:
            model = uow.models.get("churn")
            versions = [] if model is None else uow.models.versions("churn")
            assert uow.models.pending() == []
        assert len(versions) == (1 if point == "committed" else 0)
        files = services.artifacts.list_keys()
        owned = {
            k
            for v in versions
            for k in [v.artifact.key, *(e["key"] for e in (v.report or {})["attachments"].values())]
        }
        assert set(files) == owned
    finally:
        services.close()
