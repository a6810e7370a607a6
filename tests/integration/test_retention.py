"""Log retention (issue 38) on the real databases: a model's prediction log, feedback, usage
rows and audit events about it are deleted exactly when older than its retention; the audit
log still refuses every other delete; the purge is on the record; the server's loop runs it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgate.access.model import AuditEvent, AuditQuery
from mlgate.bootstrap import Services
from mlgate.db.tables import (
    audit_events,
    audit_purges,
    feedback,
    prediction_log,
    usage,
    usage_traces,
)
from mlgate.monitoring.model import Label, LoggedPrediction, MonitorSettings
from tests.conftest import make_services
from tests.fakes import FixedClock

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
DAYS = 100
CUTOFF = NOW - timedelta(days=DAYS)
SECOND = timedelta(seconds=1)


def _seed(s: Services) -> None:
    """Rows of churn (retention 100 days) and of other (no retention) either side of the
    cutoff, and on it."""
    with s.uow() as uow:
        uow.monitoring.save_settings("churn", MonitorSettings(log_retention_days=DAYS), NOW)
        uow.monitoring.save_settings("other", MonitorSettings(), NOW)
        entries = [
            LoggedPrediction(f"{model}-{tag}", model, 1, "consumer:acme", at, {"x": [1]}, [0])
            for model in ("churn", "other")
            for tag, at in (("old", CUTOFF - SECOND), ("older", CUTOFF - timedelta(days=30)),
                            ("edge", CUTOFF), ("new", CUTOFF + SECOND))
        ]  # fmt: skip
        uow.monitoring.log(entries)
        uow.monitoring.add_labels("churn", [Label("churn-old", 0, 1)], CUTOFF - SECOND)
        uow.monitoring.add_labels("churn", [Label("churn-new", 0, 1)], CUTOFF + SECOND)
        events = [
            ("batches.submit", "churn@v3", CUTOFF - SECOND),  # goes
            ("monitoring.configure", "churn", CUTOFF - timedelta(days=400)),  # goes
            ("models.promote", "churn@3", CUTOFF - SECOND),  # goes
            ("rollouts.stop", "churn #4", CUTOFF - SECOND),  # goes
            ("models.promote", "churn@3", CUTOFF),  # stays: not older
            ("models.promote", "churn@4", CUTOFF + SECOND),  # stays
            ("models.promote", "churnish@3", CUTOFF - SECOND),  # stays: another model
            ("models.promote", "other@3", CUTOFF - SECOND),  # stays: no retention
            ("access.add_grant", "churn to user:ann as reader", CUTOFF - SECOND),  # stays
            ("retention.purge", "churn", CUTOFF - SECOND),  # stays: a purge's record
        ]
        for action, target, at in events:
            uow.audit.add(AuditEvent(at, "cli:t", action, target, "local", "ok"))
        uow.commit()
    assert s.engine is not None
    with s.engine.begin() as conn:
        for model in ("churn", "other"):
            for hour in (CUTOFF - timedelta(hours=2), CUTOFF - timedelta(hours=1), CUTOFF
                         - timedelta(minutes=30), CUTOFF):  # fmt: skip
                conn.execute(
                    usage.insert().values(
                        batch="b",
                        hour=hour,
                        account="consumer:acme",
                        key_prefix="k",
                        model=model,
                        version=1,
                        status=200,
                        requests=1,
                        rows=1,
                        overage_rows=0,
                        latency_ms=1,
                    )  # fmt: skip
                )
                conn.execute(
                    usage_traces.insert().values(
                        hour=hour,
                        account="consumer:acme",
                        key_prefix="k",
                        model=model,
                        version=1,
                        status=200,
                        trace_id="0" * 32,
                    )  # fmt: skip
                )


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _left(s: Services) -> dict[str, list[tuple[object, ...]]]:
    assert s.engine is not None
    with s.engine.connect() as conn:
        return {
            "log": sorted(conn.execute(sa.select(prediction_log.c.request_id)).all()),
            "feedback": sorted(conn.execute(sa.select(feedback.c.request_id)).all()),
            "usage": sorted(
                (m, _naive(h))
                for m, h in conn.execute(sa.select(usage.c.model, usage.c.hour)).all()
            ),
            "traces": sorted(
                (m, _naive(h))
                for m, h in conn.execute(sa.select(usage_traces.c.model, usage_traces.c.hour))
            ),
            "audit": sorted(
                conn.execute(sa.select(audit_events.c.action, audit_events.c.target)).all()
            ),
        }


def test_retention_deletes_exactly_what_is_older_than_the_setting(any_services: Services) -> None:
    s = any_services
    s.clock = FixedClock(NOW)
    _seed(s)
    (purged,) = [p for p in s.retention.enforce() if p.model == "churn"]
    assert purged.cutoff == CUTOFF
    assert (purged.predictions, purged.feedback, purged.audit_events) == (2, 1, 4)
    assert (purged.usage, purged.usage_traces) == (2, 2)  # hours ending by the cutoff
    left = _left(s)
    assert [r[0] for r in left["log"]] == sorted(
        ["churn-edge", "churn-new", "other-edge", "other-new", "other-old", "other-older"]
    )
    assert [r[0] for r in left["feedback"]] == ["churn-new"]
    naive = CUTOFF.replace(tzinfo=None)
    assert [h for m, h in left["usage"] if m == "churn"] == [
        naive - timedelta(minutes=30),
        naive,
    ]  # an hour that began half an hour before the cutoff still has newer calls in it
    assert len([1 for m, _ in left["usage"] if m == "other"]) == 4
    assert left["traces"] == left["usage"]
    assert left["audit"] == sorted([
        ("models.promote", "churn@3"),
        ("models.promote", "churn@4"),
        ("models.promote", "churnish@3"),
        ("models.promote", "other@3"),
        ("access.add_grant", "churn to user:ann as reader"),
        ("retention.purge", "churn"),
        ("retention.purge", "churn"),  # the purge's own record, with what it removed
    ])  # fmt: skip
    (record,) = s.access.audit_log(AuditQuery(action="retention.purge", since=NOW))
    assert record.actor == "server:retention"
    assert record.detail["audit_events"] == 4 and record.detail["predictions"] == 2
    assert s.engine is not None
    with s.engine.connect() as conn:
        purges = conn.execute(sa.select(audit_purges.c.open, audit_purges.c.model)).all()
    assert [(bool(o), m) for o, m in purges] == [(False, "churn")]  # closed again
    # A second pass finds nothing more, and records nothing.
    again = [p for p in s.retention.enforce() if p.model == "churn"]
    assert again[0].total == 0
    with s.engine.connect() as conn:  # and leaves no purge row behind
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_purges)).scalar() == 1
    assert len(s.access.audit_log(AuditQuery(action="retention.purge", since=NOW))) == 1


def test_the_audit_log_still_refuses_any_other_delete(any_services: Services) -> None:
    s = any_services
    s.clock = FixedClock(NOW)
    _seed(s)
    assert s.engine is not None
    old = CUTOFF - timedelta(days=1)
    for statement in (
        audit_events.delete(),  # everything
        audit_events.delete().where(audit_events.c.at < old),  # old rows, no purge open
        audit_events.update().values(actor="someone"),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), s.engine.begin() as conn:
            conn.execute(statement)
    with s.engine.begin() as conn:  # a closed purge opens nothing
        conn.execute(audit_purges.insert().values(model="churn", cutoff=NOW, at=NOW, open=False))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), s.engine.begin() as conn:
        conn.execute(audit_events.delete().where(audit_events.c.target == "churn@3"))
    assert len(_left(s)["audit"]) == 10


def test_the_server_enforces_retention_on_its_own(tmp_path: Path) -> None:
    s = make_services(tmp_path / "home", MLGATE_RETENTION_INTERVAL="1",
                      MLGATE_MONITOR_INTERVAL="0")  # fmt: skip
    try:
        s.clock = FixedClock(NOW)
        _seed(s)
        s.start_monitoring()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "churn-old" in str(_left(s)["log"]):
                time.sleep(0.1)
        finally:
            s.stop_monitoring()
        assert "churn-old" not in str(_left(s)["log"])
        assert "churn-new" in str(_left(s)["log"])
    finally:
        s.close()
