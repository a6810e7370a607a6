"""The monitoring store, from the in-memory fake and from SQLite, PostgreSQL and MariaDB:
logged predictions and labels round-trip, a label sent again replaces the first, and a check's
state moves only from what was read (so of several processes checking one model, one tells the
webhook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlgate.monitoring.model import CheckResult, Label, LoggedPrediction, MonitorSettings
from tests.contracts.conftest import UowFactory

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_logs_labels_and_settings_round_trip(uow_factory: UowFactory) -> None:
    entries = [
        LoggedPrediction(
            f"r{i}",
            "m",
            1 + i % 2,
            "consumer:acme",
            AT + timedelta(minutes=i),
            {"x": [1.5, None], "c": ["a", "b"]},
            [0, 1],
            f"{i:032x}" if i % 2 else None,  # a traced call's id, or none
        )  # fmt: skip
        for i in range(4)
    ]
    with uow_factory() as uow:
        uow.monitoring.log(entries)
        uow.monitoring.save_settings("m", MonitorSettings(sample_rate=0.5), AT)
        uow.monitoring.save_settings("m", MonitorSettings(sample_rate=0.25), AT)
        uow.commit()
    with uow_factory() as uow:
        assert uow.monitoring.settings("m") == MonitorSettings(sample_rate=0.25)
        assert uow.monitoring.logged("m", AT, AT + timedelta(hours=1)) == entries
        assert [e.request_id for e in uow.monitoring.logged("m", AT, AT + timedelta(hours=1),
                                                            version=2)] == ["r1", "r3"]  # fmt: skip
        assert uow.monitoring.count_logged("m") == 4
    with uow_factory() as uow:
        uow.monitoring.add_labels("m", [Label("r0", 0, 1), Label("r0", 1, 0)], AT)
        uow.commit()
    with uow_factory() as uow:
        uow.monitoring.add_labels("m", [Label("r0", 1, 1)], AT)  # sent again: replaces
        uow.commit()
    with uow_factory() as uow:
        labels = sorted(uow.monitoring.labels(["r0", "r1"]), key=lambda lb: lb.row)
    assert labels == [Label("r0", 0, 1), Label("r0", 1, 1)]


def test_a_state_moves_only_from_the_state_that_was_read(uow_factory: UowFactory) -> None:
    def save(state: str, was: str | None) -> bool:
        with uow_factory() as uow:
            moved = uow.monitoring.save_check(CheckResult("m", state, AT, {}), was=was)
            uow.commit()
        return moved

    assert save("ok", None) is True
    assert save("drifting", None) is False  # another process stored the first check
    assert save("drifting", "ok") is True
    assert save("degraded", "ok") is False  # it read "ok", but "drifting" was stored since
    with uow_factory() as uow:
        last = uow.monitoring.last_check("m")
    assert last is not None and last.state == "drifting"


def test_settings_and_requests_are_found_by_model_and_id(uow_factory: UowFactory) -> None:
    entry = LoggedPrediction("r9", "spend", 2, "user:ann", AT, {"x": [1.0]}, [3.5])
    with uow_factory() as uow:
        uow.monitoring.save_settings("spend", MonitorSettings(sample_rate=1.0), AT)
        uow.monitoring.log([entry])
        uow.monitoring.log([])
        uow.commit()
    with uow_factory() as uow:
        assert uow.monitoring.all_settings() == {"spend": MonitorSettings(sample_rate=1.0)}
        assert uow.monitoring.settings("churn") is None
        assert uow.monitoring.logged_requests(["r9", "nope"]) == {"r9": entry}
        assert uow.monitoring.logged("spend", AT, AT + timedelta(1), account="user:bo") == []
        assert uow.monitoring.count_logged("churn") == 0
        assert uow.monitoring.all_checks() == []
