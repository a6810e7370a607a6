"""The retraining schedules' rules over the in-memory fakes (rollouts/schedules.py): what a
schedule refuses, when a tick fires it (its cron coming round, a monitoring check finding drift,
the source's new rows, counted at most hourly), what happens when its job ends, the policy's
hand-over to a rollout, and the compare-and-set that lets one replica of two fire a period or
handle a job's end. The world's hands (start a retrain, read a job, count rows) are the test's,
recording what they were asked; training for real, on a job runner, and two replicas over
PostgreSQL: tests/integration/test_schedules.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlgate.access.model import AuditQuery
from mlgate.errors import Conflict, InvalidInput, NotFound
from mlgate.monitoring.model import CheckResult
from mlgate.registry.aliases import aliases_of, promote
from mlgate.registry.model import ModelVersion
from mlgate.rollouts import schedules
from mlgate.rollouts.model import DEFAULT_POLICY, Schedule
from mlgate.rollouts.schedules import Hands
from mlgate.rollouts.service import rollouts_of
from mlgate.uow import UnitOfWork
from tests.fakes import FixedClock, in_memory_uow_factory
from tests.unit.registry_records import a_version, register

FRIDAY = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)
MONDAY_3AM = datetime(2026, 12, 7, 3, 0, 30, tzinfo=UTC)
TRAINED_ON = 600  # the lineage's rows of every version here


@dataclass
class Replica:
    """One server's hands: what it was asked to do, and the answers it gives."""

    name: str = "a"
    jobs: dict[str, tuple[str, dict[str, Any], str | None]] = field(default_factory=dict)
    rows: int | None = TRAINED_ON
    submitted: list[tuple[int, str]] = field(default_factory=list)
    counted: int = 0
    handed: list[tuple[int, int]] = field(default_factory=list)
    meanwhile: Callable[[], object] | None = None  # another replica's tick, run mid-way

    def hands(self) -> Hands:
        return Hands(submit=self.submit, job_state=self.job_state, count_rows=self.count_rows,
                     follow_up=self.follow_up)  # fmt: skip

    def submit(self, version: ModelVersion, actor: str) -> str:
        self.submitted.append((version.number, actor))
        job = f"job-{self.name}-{len(self.submitted)}"
        self.jobs[job] = ("running", {}, None)
        return job

    def job_state(self, job: str) -> tuple[str, dict[str, Any], str | None]:
        self._meanwhile()
        return self.jobs.get(job, ("running", {}, None))

    def count_rows(self, version: ModelVersion) -> int | None:
        self.counted += 1
        self._meanwhile()
        return self.rows

    def follow_up(self, schedule: Schedule, number: int) -> str:
        self.handed.append((schedule.id or 0, number))
        return f"trained v{number}; handed over by {self.name}"

    def _meanwhile(self) -> None:
        run, self.meanwhile = self.meanwhile, None
        if run is not None:
            run()


@dataclass
class World:
    clock: FixedClock = field(default_factory=lambda: FixedClock(FRIDAY))
    uow: Callable[[], UnitOfWork] = field(default_factory=in_memory_uow_factory)

    def __post_init__(self) -> None:
        register(self.uow, a_version(1, n_rows=TRAINED_ON), a_version(2), a_version(3),
                 archived=(3,))  # fmt: skip
        promote(self.uow(), "churn", 1, "production", actor="test", now=self.clock())

    def add(self, **fields: Any) -> Schedule:
        return schedules.add_schedule(self.uow(), "churn", actor="test", now=self.clock(),
                                      **fields)  # fmt: skip

    def tick(self, replica: Replica) -> list[str]:
        return schedules.tick(self.uow, replica.hands(), now=self.clock())

    def stored(self) -> Schedule:
        (schedule,) = schedules.schedules_of(self.uow(), "churn")
        return schedule

    def audited(self, actor: str = "schedule:1") -> list[tuple[str, dict[str, Any]]]:
        with self.uow() as uow:
            events = uow.audit.query(AuditQuery(actor=actor))
        return [(e.action, e.detail) for e in reversed(events)]


@pytest.fixture
def world() -> World:
    return World()


def test_bad_schedules_are_refused_and_store_nothing(world: World) -> None:
    refusals: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (InvalidInput, "cron must be set, or on_drift, or new_rows: a trigger", {}),
        (InvalidInput, "the minute field needs values from 0 to 59", {"cron": "99 * * * *"}),
        (InvalidInput, "new_rows must be at least 1", {"new_rows": 0}),
        (InvalidInput, "policy.mode must be shadow, canary or none",
         {"on_drift": True, "policy": {"mode": "yolo"}}),
        (InvalidInput, "policy.then_canary must be a share up to 0.5, after a shadow",
         {"on_drift": True, "policy": {"mode": "canary", "then_canary": 0.2}}),
        (InvalidInput, "policy.share must be above 0, at most 0.5 for a canary",
         {"on_drift": True, "policy": {"share": 0.6}}),
        (InvalidInput, "policy.replay_days must be 0 to 90",
         {"on_drift": True, "policy": {"replay_days": 91}}),
        (InvalidInput, "alias names", {"on_drift": True, "alias": "Prod"}),
        (Conflict, "no alias 'staging'", {"on_drift": True, "alias": "staging"}),
    ]  # fmt: skip
    for error, words, fields in refusals:
        with pytest.raises(error) as caught:
            world.add(**fields)
        assert words in str(caught.value), (fields, str(caught.value))
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        schedules.add_schedule(world.uow(), "ghost", actor="t", now=world.clock(), on_drift=True)
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        schedules.schedules_of(world.uow(), "ghost")
    assert schedules.schedules_of(world.uow()) == []


def test_a_schedule_keeps_its_triggers_policy_and_next_times(world: World) -> None:
    weekly = world.add(cron="0 3 * * 1", policy={"mode": "shadow", "share": 1.0})
    assert weekly.next_run_at == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # Monday 03:00 UTC
    assert weekly.next_check_at is None and weekly.revision == 0
    assert weekly.policy == {**DEFAULT_POLICY, "mode": "shadow", "share": 1.0}
    counting = world.add(new_rows=100)
    assert counting.next_check_at == world.clock() and counting.next_run_at is None
    assert [s.id for s in schedules.schedules_of(world.uow(), "churn")] == [1, 2]
    with pytest.raises(NotFound, match="model 'other' has no schedule 1"):
        schedules.remove_schedule(world.uow(), "other", 1)
    assert schedules.remove_schedule(world.uow(), "churn", 1) == weekly
    assert schedules.schedules_of(world.uow(), "churn") == [counting]


def test_a_cron_fires_once_a_period_and_its_job_s_end_is_handed_over(world: World) -> None:
    replica = Replica()
    world.add(cron="0 3 * * 1")
    assert world.tick(replica) == []  # Friday: not yet
    world.clock.now = MONDAY_3AM
    assert world.tick(replica) == ["schedule 1 of churn: cron '0 3 * * 1' came round; job job-a-1"]
    assert replica.submitted == [(1, "schedule:1")]  # the alias's version, retrained
    fired = world.stored()
    assert (fired.pending_job, fired.last_fired_at) == ("job-a-1", MONDAY_3AM)
    assert fired.next_run_at == datetime(2026, 12, 14, 3, 0, tzinfo=UTC)
    assert fired.last_outcome == "retraining churn@v1: cron '0 3 * * 1' came round"
    assert world.tick(replica) == []  # its job is running: nothing more
    assert replica.submitted == [(1, "schedule:1")] and replica.handed == []
    replica.jobs["job-a-1"] = ("succeeded", {"version": 2}, None)
    assert world.tick(replica) == ["schedule 1 of churn: trained v2; handed over by a"]
    assert replica.handed == [(1, 2)]
    done = world.stored()
    assert done.pending_job is None and done.last_outcome == "trained v2; handed over by a"
    assert world.tick(replica) == []  # handled once
    assert [action for action, _ in world.audited()] == ["schedules.fired", "schedules.outcome"]
    assert world.audited()[0][1] == {"schedule": 1, "reason": "cron '0 3 * * 1' came round",
                                     "retrains": "churn@v1", "job": "job-a-1"}  # fmt: skip


def test_a_failed_retrain_leaves_the_alias_and_says_why(world: World) -> None:
    replica = Replica()
    world.add(cron="@daily")
    world.clock.now = FRIDAY.replace(hour=0) + timedelta(days=1, seconds=5)
    world.tick(replica)
    replica.jobs["job-a-1"] = ("failed", {}, "the source has no table 'customers'")
    (line,) = world.tick(replica)
    outcome = (
        "the retrain failed: the source has no table 'customers'; production stays where it was"
    )
    assert line == f"schedule 1 of churn: {outcome}"
    assert world.stored().last_outcome == outcome and replica.handed == []
    assert aliases_of(world.uow(), "churn") == {"production": 1}


def test_drift_fires_once_per_check_that_finds_it(world: World) -> None:
    replica = Replica()
    world.add(on_drift=True)

    def checked(state: str, minutes: int) -> None:
        result = CheckResult("churn", state, world.clock() + timedelta(minutes=minutes), {})
        with world.uow() as uow:
            uow.monitoring.save_check(result, was=None if minutes == 1 else "drifting")
            uow.commit()

    assert world.tick(replica) == []  # no check yet
    checked("drifting", 1)
    world.clock.advance(minutes=2)
    (line,) = world.tick(replica)
    assert "the monitoring check found it drifting" in line
    replica.jobs["job-a-1"] = ("succeeded", {"version": 2}, None)
    world.tick(replica)
    assert world.tick(replica) == []  # the same check: it fired already
    checked("ok", 3)  # a later check finds nothing: no fire either
    world.clock.advance(minutes=5)
    assert world.tick(replica) == [] and len(replica.submitted) == 1


def test_new_rows_are_counted_hourly_and_fire_past_the_threshold(world: World) -> None:
    replica = Replica(rows=TRAINED_ON + 99)
    world.add(new_rows=100)
    assert world.tick(replica) == [] and replica.counted == 1
    assert world.stored().next_check_at == FRIDAY + timedelta(hours=1)
    replica.rows = TRAINED_ON + 100
    world.clock.advance(minutes=59)
    assert world.tick(replica) == [] and replica.counted == 1  # not counted again within the hour
    world.clock.advance(minutes=1)
    (line,) = world.tick(replica)
    assert "the source has 100 rows more than churn@v1 was trained on" in line
    assert replica.counted == 2
    replica.rows = None  # a source that cannot tell never fires
    replica.jobs["job-a-1"] = ("succeeded", {"version": 2}, None)
    world.tick(replica)
    world.clock.advance(hours=1)
    assert world.tick(replica) == [] and replica.counted == 3


def test_of_two_replicas_that_read_a_schedule_at_once_only_one_fires_it(world: World) -> None:
    world.add(new_rows=100)
    first, second = Replica("a", rows=TRAINED_ON + 500), Replica("b", rows=TRAINED_ON + 500)
    # b reads the schedule, and while it counts the rows, a's whole tick fires it
    second.meanwhile = lambda: world.tick(first)
    assert world.tick(second) == []  # its write of the same revision loses
    assert first.submitted == [(1, "schedule:1")] and second.submitted == []
    assert world.stored().pending_job == "job-a-1"


def test_of_two_replicas_that_see_a_job_end_only_one_hands_it_over(world: World) -> None:
    world.add(cron="0 3 * * 1")
    first, second = Replica("a"), Replica("b")
    world.clock.now = MONDAY_3AM
    world.tick(first)
    ended = ("succeeded", {"version": 2}, None)
    first.jobs["job-a-1"] = second.jobs["job-a-1"] = ended
    # b reads the job's end, and meanwhile a's whole tick handles it
    second.meanwhile = lambda: world.tick(first)
    assert world.tick(second) == []
    assert first.handed == [(1, 2)] and second.handed == []
    assert [action for action, _ in world.audited()] == ["schedules.fired", "schedules.outcome"]


def test_the_policy_hands_a_new_version_to_its_rollout(world: World) -> None:
    none = world.add(on_drift=True, policy={"replay_days": 0, "mode": "none"})
    said = schedules.hand_over(world.uow, None, none, 2, now=world.clock())
    assert said == "trained v2; no rollout (policy): a candidate for people to promote"
    assert rollouts_of(world.uow(), "churn") == []
    canary = world.add(on_drift=True, policy={"replay_days": 0, "share": 0.2, "auto": False})
    said = schedules.hand_over(world.uow, None, canary, 2, now=world.clock())
    assert said == "trained v2; canary rollout 1 started"
    (rollout,) = rollouts_of(world.uow(), "churn")
    assert (rollout.mode, rollout.share, rollout.auto, rollout.candidate, rollout.incumbent) == (
        "canary", 0.2, False, 2, 1)  # fmt: skip
    assert rollout.started_by == "schedule:2"
    assert world.audited("schedule:2") == [
        ("rollouts.start", {"rollout": 1, "candidate": 2, "mode": "canary"})
    ]
    again = schedules.hand_over(world.uow, None, canary, 2, now=world.clock())
    assert again.startswith("trained v2; the rollout could not start: rollout 1 of ")
    assert "still running" in again
    shadow = world.add(on_drift=True, policy={"replay_days": 0, "mode": "shadow", "share": 1.0,
                                              "then_canary": 0.1})  # fmt: skip
    archived = schedules.hand_over(world.uow, None, shadow, 3, now=world.clock())
    refused = "churn@v3 is archived and no longer served"
    assert archived == f"trained v3; the rollout could not start: {refused}"


def test_a_retrain_that_cannot_start_leaves_the_schedule_free_to_fire_again(
    world: World,
) -> None:
    class Refusing(Replica):
        def submit(self, version: ModelVersion, actor: str) -> str:
            raise NotFound("no source named 'crm'")

    replica = Refusing()
    world.add(cron="@daily")
    world.clock.now = FRIDAY.replace(hour=0) + timedelta(days=1, seconds=5)
    assert world.tick(replica) == ["schedule 1 of churn: no source named 'crm'"]
    assert world.stored().pending_job is None
    world.clock.now += timedelta(days=1)  # the source is back: the next period fires
    assert world.tick(Replica()) == ["schedule 1 of churn: cron '@daily' came round; job job-a-1"]
