"""Continuous training: a schedule retrains the alias's version when its cron comes round (a
fake clock) and hands the new version to its policy; a retrain that fails, or a candidate the
replay finds worse, leaves the alias where it was and says why; two replicas sharing
PostgreSQL fire a schedule once per period."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app as cli
from mlgate.registry.aliases import aliases_of, promote
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.rollouts import schedules
from mlgate.rollouts.schedules import Hands
from mlgate.rollouts.service import rollouts_of
from mlgate.schema import rows_to_table
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services
from tests.fakes import FixedClock

FRIDAY = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)
MONDAY_3AM = datetime(2026, 12, 7, 3, 0, 30, tzinfo=UTC)


def churn_world(home: Path, data: Path, database_url: str | None = None) -> Services:
    services = make_services(home, database_url)
    demo.write_sqlite(data, demo.churn_frame(600), table="churn")
    add_source_to(services, "churn", f"sqlite:///{data}", cwd=home.parent)
    spec = TrainSpec("churn", "churn", demo.TARGET, "logistic_regression", table="churn",
                     drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec,
                now=services.clock)  # fmt: skip
    promote(services.uow(), "churn", 1, "production", actor="test", now=services.clock())
    return services


def finished(services: Services, job_id: str) -> str:
    """The retrain's end state, waited for on the job runner that runs it."""
    return services.jobs.wait(job_id, timeout=120).state


def test_a_cron_schedule_retrains_and_starts_its_rollout(tmp_path: Path) -> None:
    services = churn_world(tmp_path / "home", tmp_path / "churn.db")
    clock = FixedClock(FRIDAY)
    services.clock = clock
    try:
        schedule = schedules.add_schedule(
            services.uow(), "churn", actor="test", now=clock(), cron="0 3 * * 1",
            policy={"replay_days": 0, "mode": "canary", "share": 0.2, "auto": True},
        )  # fmt: skip
        assert schedule.next_run_at == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
        assert services.rollouts.run_schedules() == []  # not yet
        clock.now = MONDAY_3AM
        fired = services.rollouts.run_schedules()
        assert len(fired) == 1 and "cron '0 3 * * 1' came round" in fired[0]
        assert services.rollouts.run_schedules() == []  # once a period, and its job is running
        (stored,) = schedules.schedules_of(services.uow(), "churn")
        assert stored.pending_job and stored.next_run_at == MONDAY_3AM.replace(
            second=0) + timedelta(days=7)  # fmt: skip
        assert finished(services, stored.pending_job) == "succeeded"
        handed = services.rollouts.run_schedules()
        assert handed and "trained v2; canary rollout 1 started" in handed[0]
        (rollout,) = rollouts_of(services.uow(), "churn")
        assert (rollout.candidate, rollout.incumbent, rollout.started_by) == (2, 1, "schedule:1")
        assert rollout.auto and rollout.share == 0.2
        version = resolve_version(services.uow(), "churn", 2)
        assert version.lineage.trained_by == "schedule:1"
        (after,) = schedules.schedules_of(services.uow(), "churn")
        assert after.pending_job is None and "canary rollout 1 started" in (
            after.last_outcome or ""
        )
        from mlgate.access.model import AuditQuery

        with services.uow() as uow:
            steps = uow.audit.query(AuditQuery(actor="schedule:1"))
        assert {e.action for e in steps} == {"schedules.fired", "schedules.outcome",
                                             "rollouts.start"}  # fmt: skip
        listed = CliRunner().invoke(cli, ["schedules", "list", "churn"], obj=services)
        assert listed.exit_code == 0 and "cron 0 3 * * 1" in listed.output
    finally:
        services.close()


def test_a_failed_retrain_leaves_the_alias_and_says_why(tmp_path: Path) -> None:
    services = churn_world(tmp_path / "home", tmp_path / "churn.db")
    clock = FixedClock(FRIDAY)
    services.clock = clock
    try:
        schedules.add_schedule(services.uow(), "churn", actor="test", now=clock(),
                               cron="@daily")  # fmt: skip
        (tmp_path / "churn.db").unlink()  # the source's rows are gone
        clock.now = FRIDAY.replace(hour=0) + timedelta(days=1, seconds=5)
        assert services.rollouts.run_schedules()
        (stored,) = schedules.schedules_of(services.uow(), "churn")
        assert finished(services, stored.pending_job or "") == "failed"
        services.rollouts.run_schedules()
        (after,) = schedules.schedules_of(services.uow(), "churn")
        assert "the retrain failed" in (after.last_outcome or "")
        assert "production stays where it was" in (after.last_outcome or "")
        assert aliases_of(services.uow(), "churn") == {"production": 1}
        assert rollouts_of(services.uow(), "churn") == []
    finally:
        services.close()


def test_a_candidate_the_replay_finds_worse_goes_no_further(tmp_path: Path) -> None:
    services = churn_world(tmp_path / "home", tmp_path / "churn.db")
    try:
        spec = TrainSpec("churn", "churn", demo.TARGET, "decision_tree", table="churn",
                         drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
        services.monitor.configure("churn", sample_rate=1.0)
        frame = demo.churn_frame(400, seed=11).drop(columns=[demo.ID_COLUMN, demo.TARGET])
        rows = [{k: (None if v != v else v) for k, v in r.items()}
                for r in frame.to_dict(orient="records")]  # fmt: skip
        v1 = services.predictors.get(resolve_version(services.uow(), "churn", 1))
        v2 = services.predictors.get(resolve_version(services.uow(), "churn", 2))
        table = rows_to_table(rows, v1.version.columns, max_rows=1000)
        truth = v1.score(table).predictions  # the incumbent is right every time
        assert truth != v2.score(table).predictions
        from mlgate.monitoring.model import Label, LoggedPrediction

        columns = {c: [r[c] for r in rows] for c in rows[0]}
        with services.uow() as uow:
            uow.monitoring.log([LoggedPrediction("r1", "churn", 1, "consumer:acme",
                                                 services.clock(), columns, truth)])  # fmt: skip
            uow.monitoring.add_labels("churn", [Label("r1", i, t) for i, t in enumerate(truth)],
                                      services.clock())  # fmt: skip
            uow.commit()
        schedule = schedules.add_schedule(services.uow(), "churn", actor="test",
                                          now=services.clock(), on_drift=True)  # fmt: skip
        said = schedules.hand_over(services.uow, services.predictors, schedule, 2,
                                   now=services.clock())  # fmt: skip
        assert "the replay of 1 logged calls found it worse" in said
        assert "production stays where it was" in said
        assert rollouts_of(services.uow(), "churn") == []
    finally:
        services.close()


def test_two_replicas_fire_a_schedule_once_per_period(tmp_path: Path, postgres_url: str) -> None:
    first = churn_world(tmp_path / "a", tmp_path / "churn.db", postgres_url)
    second = make_services(tmp_path / "b", postgres_url)
    clock = FixedClock(FRIDAY)
    fired: list[tuple[str, int]] = []
    handed: list[tuple[str, int]] = []
    lock = threading.Lock()
    try:
        schedules.add_schedule(first.uow(), "churn", actor="test", now=clock(),
                               cron="0 3 * * 1")  # fmt: skip

        def hands(replica: str) -> Hands:
            def submit(version: ModelVersion, actor: str) -> str:
                with lock:
                    fired.append((replica, version.number))
                return f"job-{replica}-{len(fired)}"

            def follow_up(schedule: Any, number: int) -> str:
                with lock:
                    handed.append((replica, number))
                return "handed"

            return Hands(submit=submit, job_state=lambda job: ("succeeded", {"version": 7}, None),
                         count_rows=lambda version: None, follow_up=follow_up)  # fmt: skip

        replicas = [(first, hands("a")), (second, hands("b"))]
        weeks = 4
        for week in range(weeks):
            now = MONDAY_3AM + timedelta(days=7 * week)
            for _ in range(3):  # several ticks a period, both replicas at once
                start = threading.Barrier(len(replicas))

                def run(
                    services: Services,
                    given: Hands,
                    at: datetime = now,
                    ready: threading.Barrier = start,
                ) -> None:
                    ready.wait()
                    schedules.tick(services.uow, given, now=at)

                threads = [threading.Thread(target=run, args=r) for r in replicas]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        assert len(fired) == weeks, fired
        assert len(handed) == weeks, handed
        (stored,) = schedules.schedules_of(first.uow(), "churn")
        assert stored.next_run_at == MONDAY_3AM.replace(second=0) + timedelta(days=7 * weeks)
    finally:
        first.close()
        second.close()


def test_bad_schedules_are_refused(tmp_path: Path) -> None:
    services = churn_world(tmp_path / "home", tmp_path / "churn.db")
    try:
        add = schedules.add_schedule
        from mlgate.errors import Conflict, InvalidInput, NotFound

        with pytest.raises(InvalidInput, match="a trigger"):
            add(services.uow(), "churn", actor="t", now=services.clock())
        with pytest.raises(InvalidInput, match="minute field"):
            add(services.uow(), "churn", actor="t", now=services.clock(), cron="99 * * * *")
        with pytest.raises(InvalidInput, match="policy.mode"):
            add(services.uow(), "churn", actor="t", now=services.clock(), on_drift=True,
                policy={"mode": "yolo"})  # fmt: skip
        with pytest.raises(InvalidInput, match="policy.then_canary"):
            add(services.uow(), "churn", actor="t", now=services.clock(), on_drift=True,
                policy={"mode": "canary", "then_canary": 0.2})  # fmt: skip
        with pytest.raises(Conflict, match="no alias 'staging'"):
            add(services.uow(), "churn", actor="t", now=services.clock(), on_drift=True,
                alias="staging")  # fmt: skip
        with pytest.raises(NotFound):
            add(services.uow(), "ghost", actor="t", now=services.clock(), on_drift=True)
        assert schedules.schedules_of(services.uow(), "churn") == []
    finally:
        services.close()
