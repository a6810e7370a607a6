"""Rollouts, their counts and shadow pairs, and retraining schedules as stored: the same
behaviour from the in-memory fake and from SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mlgate.rollouts.model import Rollout, Schedule, ShadowPair, SideCounts
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def a_rollout(model: str = "churn", **changes: object) -> Rollout:
    base = Rollout(model, "production", 1, 2, "canary", 0.25, T0, "ada", T0 + timedelta(days=7))
    return replace(base, **changes)  # type: ignore[arg-type]


def a_pair(rollout_id: int, request_id: str, **changes: object) -> ShadowPair:
    base = ShadowPair(rollout_id, request_id, T0, 2, 1, 0.5, ["yes", "no"])
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_rollout_round_trips_with_every_field(uow_factory: UowFactory) -> None:
    shadow = a_rollout(
        mode="shadow", share=0.5, alpha=0.1, auto=True, max_error_rate=0.125,
        max_latency_ratio=2.5, min_agreement=0.75, then_canary=0.25, reason="started by hand",
        last_look={"n": 3, "verdict": "undecided", "p": [0.5, 0.25]},
    )  # fmt: skip
    with uow_factory() as uow:
        first = uow.rollouts.add(shadow)
        second = uow.rollouts.add(a_rollout())
        uow.commit()
    assert first.id is not None and second.id is not None and first.id != second.id
    assert first == replace(shadow, id=first.id)
    with uow_factory() as uow:
        assert uow.rollouts.get(first.id) == first
        assert uow.rollouts.get(second.id) == second
        assert uow.rollouts.get(first.id + second.id + 1) is None


def test_rollouts_are_listed_by_model_and_running_in_order_of_start(
    uow_factory: UowFactory,
) -> None:
    with uow_factory() as uow:
        canary = uow.rollouts.add(a_rollout())
        other = uow.rollouts.add(a_rollout("spend", mode="shadow"))
        ended = uow.rollouts.add(
            a_rollout(state="stopped", reason="stopped by ada", ended_at=T0 + timedelta(hours=1))
        )
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.of_model("churn") == [canary, ended]
        assert uow.rollouts.of_model("spend") == [other]
        assert uow.rollouts.of_model("nope") == []
        assert uow.rollouts.running() == [canary, other]


def test_save_writes_every_change_and_never_adds(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        rollout = uow.rollouts.add(a_rollout())
        uow.commit()
    assert rollout.id is not None
    changed = replace(rollout, share=0.5, last_look={"n": 10}, state="passed",
                      reason="better", ended_at=T0 + timedelta(days=1))  # fmt: skip
    with uow_factory() as uow:
        uow.rollouts.save(changed)
        uow.rollouts.save(replace(changed, id=rollout.id + 100))  # no such rollout
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get(rollout.id) == changed
        assert uow.rollouts.get(rollout.id + 100) is None
        assert uow.rollouts.of_model("churn") == [changed]


def test_save_if_running_loses_once_the_rollout_ended(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        rollout = uow.rollouts.add(a_rollout())
        uow.commit()
    assert rollout.id is not None
    looked = replace(rollout, last_look={"n": 5})
    stopped = replace(rollout, state="stopped", reason="stopped by ada", ended_at=T0)
    with uow_factory() as uow:
        assert uow.rollouts.save_if_running(looked) is True  # a look keeps it running
        uow.commit()
    with uow_factory() as uow:  # another process stops it
        assert uow.rollouts.save_if_running(stopped) is True
        uow.commit()
    with uow_factory() as uow:  # a look read before the stop
        assert uow.rollouts.save_if_running(replace(looked, last_look={"n": 6})) is False
        assert uow.rollouts.save_if_running(replace(stopped, state="promoted")) is False
        assert uow.rollouts.save_if_running(replace(looked, id=rollout.id + 100)) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get(rollout.id) == stopped
        assert uow.rollouts.get(rollout.id + 100) is None
        assert uow.rollouts.running() == []


def test_counts_accumulate_per_side_across_flushes(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        first = uow.rollouts.add(a_rollout())
        second = uow.rollouts.add(a_rollout("spend"))
        uow.commit()
    assert first.id is not None and second.id is not None
    with uow_factory() as uow:
        uow.rollouts.add_counts([
            (first.id, "incumbent", SideCounts(10, 1, (3, 7, 0))),
            (first.id, "candidate", SideCounts(4, 2, (), compared=8, agreed=6, score_diff=1.5)),
            (second.id, "candidate", SideCounts(1, 0, (1, 0, 0))),
        ])  # fmt: skip
        uow.rollouts.add_counts([])
        uow.commit()
    with uow_factory() as uow:  # another process's flush, and one in the same block
        uow.rollouts.add_counts([(first.id, "incumbent", SideCounts(5, 0, (0, 4, 1)))])
        uow.rollouts.add_counts([
            (first.id, "candidate", SideCounts(2, 0, (2, 0, 0), compared=4, agreed=4,
                                               score_diff=0.25)),
            (first.id, "incumbent", SideCounts(1, 1, (0, 0, 1))),
        ])  # fmt: skip
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.counts(first.id) == {
            "incumbent": SideCounts(16, 2, (3, 11, 2)),
            "candidate": SideCounts(6, 2, (2, 0, 0), compared=12, agreed=10, score_diff=1.75),
        }
        assert uow.rollouts.counts(second.id) == {"candidate": SideCounts(1, 0, (1, 0, 0))}
        assert uow.rollouts.counts(first.id + second.id + 1) == {}


def test_shadow_pairs_are_kept_in_order_and_picked_by_request(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        first = uow.rollouts.add(a_rollout(mode="shadow"))
        second = uow.rollouts.add(a_rollout("spend", mode="shadow"))
        uow.commit()
    assert first.id is not None and second.id is not None
    q2 = a_pair(first.id, "q2", at=T0 + timedelta(seconds=1), predictions=[1.5, -2.0],
                agreed=None, score_diff=3.25)  # fmt: skip
    q1 = a_pair(first.id, "q1")
    failed = a_pair(first.id, "q3", agreed=None, score_diff=None, predictions=None,
                    error="ValueError: could not convert 'x'")  # fmt: skip
    elsewhere = a_pair(second.id, "q1", n_rows=1)
    with uow_factory() as uow:
        uow.rollouts.add_shadow([q2, q1])
        uow.rollouts.add_shadow([failed, elsewhere])
        uow.rollouts.add_shadow([])
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.shadow(first.id) == [q2, q1, failed]
        assert uow.rollouts.shadow(first.id, ["q3", "q2", "q3", "unknown"]) == [q2, failed]
        assert uow.rollouts.shadow(first.id, []) == []
        assert uow.rollouts.shadow(second.id, ["q1", "q2"]) == [elsewhere]
        assert uow.rollouts.shadow(first.id + second.id + 1) == []


def test_shadow_pairs_picked_by_many_requests_stay_in_the_order_kept(
    uow_factory: UowFactory,
) -> None:
    with uow_factory() as uow:
        rollout = uow.rollouts.add(a_rollout(mode="shadow"))
        uow.commit()
    assert rollout.id is not None
    names = [f"q{n:04d}" for n in reversed(range(1200))]  # more than one query's worth
    pairs = [a_pair(rollout.id, name) for name in names]
    with uow_factory() as uow:
        uow.rollouts.add_shadow(pairs)
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.shadow(rollout.id, names) == pairs
        assert uow.rollouts.shadow(rollout.id, sorted(names[::2])) == pairs[::2]


def test_shadow_errors_are_distinct_sorted_and_limited(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        first = uow.rollouts.add(a_rollout(mode="shadow"))
        second = uow.rollouts.add(a_rollout("spend", mode="shadow"))
        uow.commit()
    assert first.id is not None and second.id is not None
    # one case only: MariaDB's collation folds case, so "B" and "b" would be one error there
    failing = {"q1": "valueerror: b", "q2": "keyerror: a", "q3": "valueerror: b",
               "q4": "typeerror: c"}  # fmt: skip
    with uow_factory() as uow:
        uow.rollouts.add_shadow(
            [a_pair(first.id, r, predictions=None, error=e) for r, e in failing.items()]
            + [a_pair(first.id, "q5"), a_pair(second.id, "q1", error="oserror: z")]
        )
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.shadow_errors(first.id, 5) == [
            "keyerror: a", "typeerror: c", "valueerror: b",
        ]  # fmt: skip
        assert uow.rollouts.shadow_errors(first.id, 2) == ["keyerror: a", "typeerror: c"]
        assert uow.rollouts.shadow_errors(second.id, 5) == ["oserror: z"]
        assert uow.rollouts.shadow_errors(first.id + second.id + 1, 5) == []


def a_schedule(model: str = "churn", **changes: object) -> Schedule:
    base = Schedule(model, T0, "ada", cron="0 3 * * *", next_run_at=T0 + timedelta(hours=15))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_schedules_round_trip_and_are_listed_by_model(uow_factory: UowFactory) -> None:
    drift = a_schedule(
        "spend", cron=None, on_drift=True, new_rows=5000, alias="staging", enabled=False,
        policy={"replay_days": 3, "mode": "shadow", "share": 1.0, "then_canary": 0.1},
        next_run_at=None, next_check_at=T0 + timedelta(minutes=5), last_fired_at=T0,
        pending_job="j" * 32, last_outcome="promoted v3", revision=4,
    )  # fmt: skip
    with uow_factory() as uow:
        nightly = uow.rollouts.add_schedule(a_schedule())
        other = uow.rollouts.add_schedule(drift)
        weekly = uow.rollouts.add_schedule(a_schedule(cron="0 3 * * 1"))
        uow.commit()
    assert nightly.id is not None and other.id is not None and weekly.id is not None
    assert len({nightly.id, other.id, weekly.id}) == 3
    assert other == replace(drift, id=other.id)
    with uow_factory() as uow:
        assert uow.rollouts.get_schedule(other.id) == other
        assert uow.rollouts.get_schedule(nightly.id + other.id + weekly.id) is None
        assert uow.rollouts.schedules("churn") == [nightly, weekly]
        assert uow.rollouts.schedules(None) == [nightly, other, weekly]
        assert uow.rollouts.schedules("nope") == []


def test_a_schedule_is_saved_only_at_the_revision_read(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        schedule = uow.rollouts.add_schedule(a_schedule())
        uow.commit()
    assert schedule.id is not None
    fired = replace(schedule, pending_job="j" * 32, last_fired_at=T0, revision=1)
    with uow_factory() as uow:
        assert uow.rollouts.save_schedule_if(fired, revision=0) is True
        uow.commit()
    with uow_factory() as uow:  # another replica read revision 0 too: it loses
        assert uow.rollouts.save_schedule_if(
            replace(schedule, pending_job="k" * 32, revision=1), revision=0
        ) is False  # fmt: skip
        missing = replace(fired, id=schedule.id + 100)
        assert uow.rollouts.save_schedule_if(missing, revision=1) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get_schedule(schedule.id) == fired
        assert uow.rollouts.get_schedule(schedule.id + 100) is None
        done = replace(fired, pending_job=None, last_outcome="promoted v2", revision=2)
        assert uow.rollouts.save_schedule_if(done, revision=1) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get_schedule(schedule.id) == done


def test_a_deleted_schedule_is_gone(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        gone = uow.rollouts.add_schedule(a_schedule())
        kept = uow.rollouts.add_schedule(a_schedule("spend"))
        uow.commit()
    assert gone.id is not None and kept.id is not None
    with uow_factory() as uow:
        uow.rollouts.delete_schedule(gone.id)
        uow.rollouts.delete_schedule(gone.id + kept.id + 1)  # unknown: nothing happens
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get_schedule(gone.id) is None
        assert uow.rollouts.schedules(None) == [kept]
        assert uow.rollouts.save_schedule_if(gone, revision=0) is False


def test_floats_keep_double_precision(uow_factory: UowFactory) -> None:
    """MySQL and MariaDB kept a bare FLOAT in four bytes (0.0123456789 read back as 0.0123457)
    until migration 0016: every store gives back the very float it was given."""
    precise = a_rollout(
        share=0.123456789012345, alpha=0.0123456789, max_error_rate=0.0987654321,
        max_latency_ratio=1.23456789012, min_agreement=0.876543210987, then_canary=0.3333333333,
        mode="shadow",
    )  # fmt: skip
    with uow_factory() as uow:
        stored = uow.rollouts.add(precise)
        uow.commit()
    assert stored.id is not None
    pair = a_pair(stored.id, "q1", score_diff=1234.56789012345)
    with uow_factory() as uow:
        uow.rollouts.add_shadow([pair])
        uow.rollouts.add_counts(
            [(stored.id, "candidate", SideCounts(1, 0, (), compared=1, agreed=1,
                                                  score_diff=9876.54321098765))]
        )  # fmt: skip
        uow.commit()
    with uow_factory() as uow:
        assert uow.rollouts.get(stored.id) == stored
        assert uow.rollouts.shadow(stored.id)[0].score_diff == 1234.56789012345
        assert uow.rollouts.counts(stored.id)["candidate"].score_diff == 9876.54321098765
