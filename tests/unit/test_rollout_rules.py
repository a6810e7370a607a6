"""The rollout use cases' rules over the in-memory fakes (rollouts/service.py): what a start
refuses and why, one running rollout per alias, the guard rails (failures, latency, a shadow's
agreement) ending a rollout whatever the labels say, the sequential test's verdict acting only
with `auto`, a shadow found better handing over to a canary, the deadline, and a stop that a
late look never undoes. The counts, logged calls, labels and shadow pairs are written as the
serving processes write them; the same journeys through real predictions, the HTTP API, the CLI
and the dashboard: tests/integration/test_rollouts.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from mlgate.access.model import AuditQuery
from mlgate.columns import Column
from mlgate.errors import Conflict, InvalidInput, NotFound
from mlgate.monitoring.model import Label, LoggedPrediction
from mlgate.registry.aliases import aliases_of, promote
from mlgate.rollouts import service as rollouts
from mlgate.rollouts.model import LATENCY_BOUNDS, Rollout, ShadowPair, SideCounts
from mlgate.uow import UnitOfWork
from tests.fakes import FixedClock, in_memory_uow_factory
from tests.unit.registry_records import T0, a_version, register

ROWS = 10  # rows per logged call
CALLS = 20  # labelled calls per side: 200 rows, past the test's 100 before any verdict


@dataclass
class World:
    """churn v1 (production), v2 (a candidate), v3 (other columns), v4 (archived)."""

    clock: FixedClock = field(default_factory=lambda: FixedClock(T0 + timedelta(days=1)))
    uow: Callable[[], UnitOfWork] = field(default_factory=in_memory_uow_factory)

    def __post_init__(self) -> None:
        other = (Column("tenure", "number"), Column("region", "string"))
        register(self.uow, a_version(1), a_version(2), a_version(3, columns=other), a_version(4),
                 archived=(4,))  # fmt: skip
        promote(self.uow(), "churn", 1, "production", actor="test", now=self.clock())

    def start(self, candidate: int = 2, **fields: Any) -> Rollout:
        settings: dict[str, Any] = {"mode": "canary", "share": 0.3, **fields}
        return rollouts.start_rollout(self.uow(), "churn", candidate, actor="test",
                                      now=self.clock(), **settings)  # fmt: skip

    def decide(self, rollout: Rollout) -> Rollout:
        return rollouts.decide(self.uow(), rollout, now=self.clock())

    def count(
        self,
        rollout: Rollout,
        side: str,
        calls: int,
        *,
        failed: int = 0,
        bucket: int = 0,
        compared: int = 0,
        agreed: int = 0,
    ) -> None:
        """What the tally flushes: `calls` answered by a side, `failed` of them failing, each in
        the latency bucket `bucket` (0: 0.25 ms; each next one √2 slower)."""
        latency = tuple(calls if i == bucket else 0 for i in range(len(LATENCY_BOUNDS)))
        counts = SideCounts(calls, failed, latency, compared, agreed)
        with self.uow() as uow:
            uow.rollouts.add_counts([(rollout.id or 0, side, counts)])
            uow.commit()

    def answered(self, version: int, *, wrong_every: int | None, prefix: str = "") -> list[str]:
        """CALLS logged calls answered by `version`, labelled: each predicted 1 on every row,
        the truth 0 on every `wrong_every`-th row (None: the version is always right)."""
        ids = []
        with self.uow() as uow:
            for call in range(CALLS):
                request_id = f"{prefix}v{version}-{call}"
                at = self.clock() + timedelta(minutes=1 + call)
                uow.monitoring.log([LoggedPrediction(request_id, "churn", version, "consumer:a",
                                                     at, {}, [1] * ROWS)])  # fmt: skip
                truth = [0 if wrong_every and row % wrong_every == 0 else 1 for row in range(ROWS)]
                uow.monitoring.add_labels("churn", [Label(request_id, r, t)
                                                    for r, t in enumerate(truth)], at)  # fmt: skip
                ids.append(request_id)
            uow.commit()
        return ids

    def shadowed(self, rollout: Rollout) -> None:
        """The incumbent's calls, copied to the candidate: the candidate right on every row,
        the incumbent wrong on every other one."""
        request_ids = self.answered(rollout.incumbent, wrong_every=2, prefix="s")
        truth = [0 if row % 2 == 0 else 1 for row in range(ROWS)]
        with self.uow() as uow:
            uow.rollouts.add_shadow([ShadowPair(rollout.id or 0, r, self.clock(), ROWS, ROWS // 2,
                                                0.5, truth) for r in request_ids])  # fmt: skip
            uow.commit()

    def actions(self, rollout: Rollout) -> set[str]:
        with self.uow() as uow:
            return {e.action for e in uow.audit.query(AuditQuery(actor=f"rollout:{rollout.id}"))}

    def production(self) -> int:
        return aliases_of(self.uow(), "churn")["production"]


@pytest.fixture
def world() -> World:
    return World()


def test_a_start_is_refused_with_its_reason_and_stores_nothing(world: World) -> None:
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        rollouts.start_rollout(world.uow(), "ghost", 2, mode="canary", share=0.3, actor="test",
                               now=world.clock())  # fmt: skip
    with pytest.raises(Conflict, match="no alias 'staging'.*promote one first"):
        world.start(alias="staging")
    with pytest.raises(InvalidInput, match="alias names"):
        world.start(alias="Prod!")
    with pytest.raises(NotFound, match="no version 9"):
        world.start(candidate=9)
    with pytest.raises(Conflict, match="archived and no longer served"):
        world.start(candidate=4)
    with pytest.raises(InvalidInput, match="candidate must be another version than 1"):
        world.start(candidate=1)
    with pytest.raises(InvalidInput, match="at most 0.5 for a canary"):
        world.start(share=0.6)
    with pytest.raises(InvalidInput, match="then_canary must be a share up to 0.5, after a shadow"):
        world.start(then_canary=0.2)
    with pytest.raises(InvalidInput, match="alpha.*max_latency_ratio"):
        world.start(alpha=0.5, max_latency_ratio=1.0)
    with pytest.raises(InvalidInput, match="deadline must be after the start"):
        world.start(days=0)
    with pytest.raises(Conflict, match="other input columns"):
        world.start(candidate=3, mode="shadow", share=1.0)
    assert rollouts.rollouts_of(world.uow(), "churn") == []
    assert world.start(candidate=3).running  # a canary reads each call for its own version


def test_only_classifiers_or_regressions_are_tried(world: World) -> None:
    register(world.uow, a_version(1, task="forecast"), a_version(2, task="forecast"),
             model="sales", task="forecast")  # fmt: skip
    promote(world.uow(), "sales", 1, "production", actor="test", now=world.clock())
    with pytest.raises(Conflict, match=r"\(forecast\).*two classifiers or two regressions"):
        rollouts.start_rollout(world.uow(), "sales", 2, mode="canary", share=0.3, actor="test",
                               now=world.clock())  # fmt: skip


def test_one_rollout_runs_per_alias_until_it_is_stopped(world: World) -> None:
    first = world.start()
    assert (first.id, first.incumbent, first.candidate, first.state) == (1, 1, 2, "running")
    assert first.deadline == world.clock() + timedelta(days=14)
    with pytest.raises(Conflict, match="rollout 1 of churn@production is still running"):
        world.start(candidate=3)
    stopped = rollouts.stop_rollout(world.uow(), "churn", 1, actor="ann", now=world.clock())
    assert stopped.state == "stopped" and stopped.reason == "stopped by ann"
    assert stopped.ended_at == world.clock() and world.production() == 1
    with pytest.raises(Conflict, match=r"already ended \(stopped\)"):
        rollouts.stop_rollout(world.uow(), "churn", 1, actor="ann", now=world.clock())
    with pytest.raises(NotFound, match="model 'other' has no rollout 1"):
        rollouts.get_rollout(world.uow(), "other", 1)
    assert world.start(candidate=3).id == 2  # the alias is free again
    assert world.actions(first) == {"rollouts.stopped"}


def test_a_failing_candidate_is_rolled_back_once_it_has_enough_calls(world: World) -> None:
    rollout = world.start(auto=True)
    world.count(rollout, "candidate", 19, failed=19)  # too few calls to judge
    looked = world.decide(rollout)
    assert looked.state == "running" and looked.last_look["sides"]["candidate"]["failed"] == 19
    world.count(rollout, "candidate", 1)  # 19 of 20 failed
    world.count(rollout, "incumbent", 50)
    ended = world.decide(rollout)
    assert ended.state == "rolled_back"
    assert ended.reason == "guard rail: the candidate failed 19 of 20 calls (95.0%), above 5.0%"
    assert world.production() == 1  # the alias stays where it was
    assert world.actions(rollout) == {"rollouts.rolled_back"}
    assert world.decide(ended) == ended  # an ended rollout is left as it is


def test_a_slow_candidate_is_rolled_back_past_its_latency_ratio(world: World) -> None:
    rollout = world.start()  # without auto: a guard rail acts all the same
    world.count(rollout, "incumbent", 100, bucket=4)  # 1 ms
    world.count(rollout, "candidate", 99, bucket=8)  # 4 ms, but one call short of judging
    assert world.decide(rollout).state == "running"
    world.count(rollout, "candidate", 1, bucket=8)
    ended = world.decide(rollout)
    assert ended.state == "rolled_back"
    assert ended.reason == (
        "guard rail: the candidate's p99 latency 4.0 ms is over 3× the incumbent's 1.0 ms"
    )


def test_a_shadow_that_disagrees_too_often_is_rolled_back(world: World) -> None:
    rollout = world.start(mode="shadow", share=1.0, min_agreement=0.5)
    world.count(rollout, "candidate", 10, compared=100, agreed=49)
    ended = world.decide(rollout)
    assert ended.state == "rolled_back"
    assert ended.reason == (
        "guard rail: the candidate agreed with the incumbent on 49.0% of 100 rows, under 50.0%"
    )
    assert ended.last_look["shadow"]["agreement"] == pytest.approx(0.49)


def test_a_better_candidate_is_promoted_with_its_numbers_only_with_auto(world: World) -> None:
    watched = world.start()
    world.answered(1, wrong_every=2)  # the incumbent wrong on half its rows
    world.answered(2, wrong_every=None)  # the candidate always right
    looked = world.decide(watched)
    test = looked.last_look["test"]
    assert test["verdict"] == "better" and test["low"] > 0
    assert (test["incumbent_rows"], test["candidate_rows"]) == (CALLS * ROWS, CALLS * ROWS)
    assert looked.state == "running" and world.production() == 1  # reported, not acted on
    rollouts.stop_rollout(world.uow(), "churn", 1, actor="test", now=world.clock())

    auto = world.start(auto=True)  # the same evidence
    promoted = world.decide(auto)
    assert promoted.state == "promoted" and world.production() == 2
    assert "found the candidate better at α = 0.05" in (promoted.reason or "")
    assert "always-valid interval" in (promoted.reason or "")
    with world.uow() as uow:
        moved = uow.models.alias_history("churn", "production")[-1]
    assert (moved.to_version, moved.actor, moved.reason) == (2, "rollout:2", promoted.reason)
    assert world.actions(auto) == {"rollouts.promoted", "models.promote"}


def test_a_worse_candidate_is_rolled_back_with_auto(world: World) -> None:
    rollout = world.start(auto=True)
    world.answered(1, wrong_every=None)
    world.answered(2, wrong_every=2)
    ended = world.decide(rollout)
    assert ended.state == "rolled_back" and "found the candidate worse" in (ended.reason or "")
    assert ended.last_look["test"]["high"] < 0 and world.production() == 1


def test_labels_of_calls_before_the_start_are_not_its_evidence(world: World) -> None:
    world.answered(1, wrong_every=2)
    world.answered(2, wrong_every=None)
    world.clock.advance(hours=1)  # the rollout starts after those calls
    rollout = world.start(auto=True)
    looked = world.decide(rollout)
    assert looked.state == "running"
    assert looked.last_look["test"]["incumbent_rows"] == 0


def test_an_alias_moved_by_hand_meanwhile_is_not_promoted_over(world: World) -> None:
    rollout = world.start(auto=True)
    world.answered(1, wrong_every=2)
    world.answered(2, wrong_every=None)
    promote(world.uow(), "churn", 2, "production", actor="ann", now=world.clock())
    ended = world.decide(rollout)
    assert ended.state == "stopped"
    assert "not promoted: production already points at churn@v2" in (ended.reason or "")
    with world.uow() as uow:
        assert [e.actor for e in uow.models.alias_history("churn", "production")] == [
            "test", "ann"]  # fmt: skip


def test_a_shadow_found_better_hands_over_to_a_canary(world: World) -> None:
    shadow = world.start(mode="shadow", share=1.0, auto=True, then_canary=0.2)
    world.shadowed(shadow)
    passed = world.decide(shadow)
    assert passed.state == "passed" and "a canary of 20% of the callers follows" in (
        passed.reason or "")  # fmt: skip
    test = passed.last_look["test"]
    assert test["incumbent_rows"] == test["candidate_rows"] == CALLS * ROWS  # the same rows
    assert test["candidate_loss"] == 0 and test["incumbent_loss"] == 0.5
    assert world.production() == 1  # not yet: the canary decides
    canary = rollouts.rollouts_of(world.uow(), "churn")[-1]
    assert (canary.mode, canary.state, canary.share, canary.candidate) == ("canary", "running",
                                                                           0.2, 2)  # fmt: skip
    assert canary.auto and canary.started_by == f"rollout:{shadow.id}"
    assert canary.deadline == world.clock() + timedelta(days=14)
    assert world.actions(shadow) == {"rollouts.passed", "rollouts.start"}


def test_a_rollout_past_its_deadline_expires_undecided(world: World) -> None:
    rollout = world.start(days=1, auto=True)
    world.clock.advance(days=1)
    ended = world.decide(rollout)
    assert ended.state == "expired"
    assert ended.reason == "the deadline passed undecided; the alias stays"
    assert world.production() == 1


def test_a_look_written_late_never_undoes_a_stop(world: World) -> None:
    read_before = world.start()
    rollouts.stop_rollout(world.uow(), "churn", 1, actor="test", now=world.clock())
    with world.uow() as uow:
        assert not uow.rollouts.save_if_running(replace(read_before, last_look={"late": True}))
    after = world.decide(read_before)  # the referee's stale copy: the stop stands
    assert after.state == "stopped" and after.last_look == {}


def test_a_round_decides_every_running_rollout(world: World) -> None:
    register(world.uow, a_version(1), a_version(2), model="spend")
    promote(world.uow(), "spend", 1, "production", actor="test", now=world.clock())
    failing = world.start()
    world.count(failing, "candidate", 20, failed=20)
    quiet = rollouts.start_rollout(world.uow(), "spend", 2, mode="canary", share=0.1,
                                   actor="test", now=world.clock())  # fmt: skip
    decided = rollouts.decide_all(world.uow, world.clock)
    assert [(r.model, r.state) for r in decided] == [("churn", "rolled_back"),
                                                     ("spend", "running")]  # fmt: skip
    assert rollouts.get_rollout(world.uow(), "spend", quiet.id or 0).last_look["at"] == (
        world.clock().isoformat())  # fmt: skip
    assert rollouts.decide_all(world.uow, world.clock) == [decided[1]]
