"""The retention repository under contract (issue 38): one purge removes exactly the model's
logs older than its cutoff (a usage hour once all of it is), and only audit events that name the
model in a model's area, on the fakes, SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlgate.access.model import AuditEvent, AuditQuery
from mlgate.monitoring.model import Label, LoggedPrediction
from mlgate.plans.model import Aggregates, ExportCursor, UsageTrace
from tests.contracts.conftest import UowFactory

CUTOFF = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_a_purge_removes_exactly_the_models_older_logs(uow_factory: UowFactory) -> None:
    usage: Aggregates = {
        (hour, "consumer:acme", "mlg_1", model, "1", "200"): [1, 1, 0, 1]
        for model in ("churn", "other")
        for hour in ("2026-09-01T10", "2026-09-01T11", "2026-09-01T12")
    }  # an hour's row goes once the whole hour is older than the cutoff: 10 and 11
    with uow_factory() as uow:
        uow.monitoring.log([
            LoggedPrediction(f"{model}-{tag}", model, 1, "consumer:acme", at, {"x": [1]}, [0])
            for model in ("churn", "other")
            for tag, at in (("old", CUTOFF - SECOND), ("edge", CUTOFF), ("new", CUTOFF + SECOND))
        ])  # fmt: skip
        uow.monitoring.add_labels("churn", [Label("churn-old", 0, 1)], CUTOFF - SECOND)
        uow.monitoring.add_labels("churn", [Label("churn-new", 0, 1)], CUTOFF + SECOND)
        uow.usage.add_batch("b1", usage, CUTOFF)
        uow.usage.add_traces([
            UsageTrace(CUTOFF - timedelta(hours=h), "consumer:acme", "mlg_1", "churn", 1, 200,
                       f"{h:032d}")
            for h in (2, 1, 0)
        ])  # fmt: skip
        for action, target, at in (
            ("models.promote", "churn@3", CUTOFF - SECOND),
            ("lifecycle.card", "churn@3", CUTOFF - SECOND),
            ("rollouts.stop", "churn #2", CUTOFF - SECOND),
            ("models.promote", "churn@4", CUTOFF),
            ("models.promote", "churnish@1", CUTOFF - SECOND),
            ("access.add_grant", "churn to user:ann as reader", CUTOFF - SECOND),
            ("retention.purge", "churn", CUTOFF - SECOND),
        ):
            uow.audit.add(AuditEvent(at, "cli:t", action, target, "local", "ok"))
        uow.commit()
    with uow_factory() as uow:
        purged = uow.retention.purge("churn", CUTOFF, days=100, at=CUTOFF + timedelta(days=100))
        uow.commit()
    assert (purged.predictions, purged.feedback, purged.audit_events) == (1, 1, 3)
    assert (purged.usage, purged.usage_traces) == (2, 2)
    with uow_factory() as uow:
        left = uow.monitoring.logged("churn", CUTOFF - timedelta(days=1), CUTOFF + timedelta(1))
        other = uow.monitoring.logged("other", CUTOFF - timedelta(days=1), CUTOFF + timedelta(1))
        labels = uow.monitoring.labels(["churn-old", "churn-new"])
        rows = uow.usage.query(since=CUTOFF - timedelta(days=1), until=CUTOFF + timedelta(1),
                               by="hour")  # fmt: skip
        events = uow.audit.query(AuditQuery(limit=100))
    assert sorted(e.request_id for e in left) == ["churn-edge", "churn-new"]
    assert len(other) == 3
    assert [lb.request_id for lb in labels] == ["churn-new"]
    assert sorted((r.model, r.requests) for r in rows) == sorted(
        [("churn", 1), ("other", 1), ("other", 1), ("other", 1)]
    )
    assert sorted((e.action, e.target) for e in events) == sorted([
        ("models.promote", "churn@4"),
        ("models.promote", "churnish@1"),
        ("access.add_grant", "churn to user:ann as reader"),
        ("retention.purge", "churn"),
    ])  # fmt: skip


def test_usage_hours_a_billing_sink_has_not_been_sent_stay(uow_factory: UowFactory) -> None:
    usage: Aggregates = {
        (hour, "consumer:acme", "mlg_1", "churn", "1", "200"): [1, 1, 0, 1]
        for hour in ("2026-09-01T09", "2026-09-01T10", "2026-09-01T11")
    }
    with uow_factory() as uow:
        uow.usage.add_batch("b1", usage, CUTOFF)
        # stripe has sent every hour before 10:00; cloudevents is sent through the cutoff
        uow.usage_exports.save_cursor(
            ExportCursor("stripe", through=CUTOFF - timedelta(hours=2)), expected=None
        )
        uow.usage_exports.save_cursor(ExportCursor("cloudevents", through=CUTOFF), expected=None)
        uow.commit()
    with uow_factory() as uow:
        purged = uow.retention.purge("churn", CUTOFF, days=100, at=CUTOFF + timedelta(days=100))
        uow.commit()
    assert purged.usage == 1  # 09:00 only: 10:00 and 11:00 have not reached stripe yet
    with uow_factory() as uow:
        uow.usage_exports.save_cursor(ExportCursor("new-sink"), expected=None)  # sent nothing
        uow.commit()
    with uow_factory() as uow:
        again = uow.retention.purge("churn", CUTOFF, days=100, at=CUTOFF + timedelta(days=100))
        uow.commit()
    assert again.usage == 0
