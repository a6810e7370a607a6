"""Log retention and the dossier as users run them: `mlgate monitor-config --log-retention`
at the CLI, a real `mlgate serve` that purges on its own, and `mlgate models dossier` whose
manifest checks and which states the retention."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from mlgate.access.model import AuditEvent, AuditQuery
from mlgate.cards import dossier
from mlgate.db.tables import prediction_log
from mlgate.monitoring.model import LoggedPrediction
from tests.conftest import make_services
from tests.e2e.helpers import mlgate, quickstarted, running_server


def test_the_server_purges_what_is_older_than_the_retention(tmp_path: Path) -> None:
    home = tmp_path / "home"
    quickstarted(home)
    short = mlgate(home, "monitor-config", "churn", "--log-retention", "30d", check=False)
    assert short.returncode == 1 and "billing period" in short.stdout + short.stderr
    mlgate(home, "monitor-config", "churn", "--log-retention", "62d")
    now = datetime.now(UTC)
    seeded = make_services(home)
    try:
        with seeded.uow() as uow:
            uow.monitoring.log([
                LoggedPrediction(tag, "churn", 1, "consumer:demo", at, {"x": [1]}, [0])
                for tag, days in (("old", 63), ("new", 61))
                for at in [now - timedelta(days=days)]
            ])  # fmt: skip
            uow.audit.add(AuditEvent(now - timedelta(days=70), "cli:t", "models.promote",
                                     "churn@1", "local", "ok"))  # fmt: skip
            uow.commit()
        engine = seeded.engine
        assert engine is not None

        def logged() -> list[str]:
            with engine.connect() as conn:
                return sorted(conn.execute(sa.select(prediction_log.c.request_id)).scalars())

        assert logged() == ["new", "old"]
        with running_server(home, MLGATE_RETENTION_INTERVAL="1"):
            deadline = time.monotonic() + 20
            while "old" in logged() and time.monotonic() < deadline:
                time.sleep(0.2)
        assert logged() == ["new"]
        (record,) = seeded.access.audit_log(AuditQuery(action="retention.purge"))
        assert record.actor == "server:retention" and record.detail["predictions"] == 1
        assert record.detail["audit_events"] >= 1
    finally:
        seeded.close()
    target = tmp_path / "dossier.zip"
    mlgate(home, "models", "dossier", "churn@1", "-o", str(target))
    archive = target.read_bytes()
    assert dossier.check_manifest(archive) == []
    with zipfile.ZipFile(target) as zipped:
        assert json.loads(zipped.read("retention.json"))["log_retention"] == "62d"
        assert "report/report.html" in zipped.namelist()
