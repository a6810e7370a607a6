"""Continuous training: a model retrains itself on a schedule, and hands the new version to a
rollout policy, every step recorded.

A schedule fires on a cron expression (UTC), when the model's monitoring check finds it
drifting or degraded, or when its source has `new_rows` more rows than the alias's version was
trained on (counted at most once an hour). Firing retrains the alias's version with the same
settings on the source's rows of now (a training job), and once the job ends:

- it failed: the alias stays, and the schedule's outcome says why;
- with `replay_days`, the new version first replays the logged calls of those days
  (rollouts/replay.py); a verdict of "worse" stops it there, the alias unmoved;
- then the policy's rollout starts (shadow or canary, `auto` to let the test decide), or with
  mode "none" the version stays a candidate for people to promote.

Several replicas may run the same ticks: each change of a schedule is written only if its
revision is the one the replica read (a compare-and-set in the database), so one replica fires
a schedule once per period and one handles the end of its job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mlgate.access.audit import audited, records_its_own
from mlgate.errors import Conflict, MlgateError, NotFound
from mlgate.registry.model import PRODUCTION, ModelVersion, check_alias
from mlgate.rollouts import cron as crontab
from mlgate.rollouts.model import DEFAULT_POLICY, Schedule
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.rollouts")
ROWS_EVERY = timedelta(hours=1)  # how often a new-rows trigger counts the source


@audited("schedules.add", "model")
def add_schedule(
    uow: UnitOfWork,
    model: str,
    *,
    actor: str,
    now: datetime,
    cron: str | None = None,
    on_drift: bool = False,
    new_rows: int | None = None,
    alias: str = PRODUCTION,
    policy: dict[str, Any] | None = None,
) -> Schedule:
    check_alias(alias)
    parsed = crontab.parse(cron) if cron else None
    schedule = Schedule(
        model=model, created_at=now, created_by=actor, cron=cron, on_drift=on_drift,
        new_rows=new_rows, alias=alias, policy={**DEFAULT_POLICY, **(policy or {})},
        next_run_at=parsed.next_after(now) if parsed else None,
        next_check_at=now if new_rows is not None else None,
    )  # fmt: skip
    with uow:
        if uow.models.get(model) is None:
            raise NotFound(f"no model named {model!r}")
        if alias not in uow.models.aliases(model):
            raise Conflict(
                f"model {model!r} has no alias {alias!r}: a schedule retrains the version an "
                f"alias points at; promote one first (mlgate models promote {model} <version> "
                f"--alias {alias})"
            )
        stored = uow.rollouts.add_schedule(schedule)
        uow.commit()
    return stored


def schedules_of(uow: UnitOfWork, model: str | None = None) -> list[Schedule]:
    with uow:
        if model is not None and uow.models.get(model) is None:
            raise NotFound(f"no model named {model!r}")
        return uow.rollouts.schedules(model)


@audited("schedules.remove", "{model} #{schedule_id}")
def remove_schedule(uow: UnitOfWork, model: str, schedule_id: int) -> Schedule:
    with uow:
        found = uow.rollouts.get_schedule(schedule_id)
        if found is None or found.model != model:
            raise NotFound(f"model {model!r} has no schedule {schedule_id}")
        uow.rollouts.delete_schedule(schedule_id)
        uow.commit()
    return found


Submit = Callable[[ModelVersion, str], str]  # (version to retrain, actor) -> job id
JobState = Callable[[str], tuple[str, dict[str, Any], str | None]]  # id -> state, result, error
CountRows = Callable[[ModelVersion], int | None]  # the source's rows now (None: cannot tell)
FollowUp = Callable[[Schedule, int], str]  # (schedule, new version) -> outcome


@dataclass(frozen=True)
class Hands:
    """What a tick does with the world: start a retrain, read a job, count a source's rows,
    and hand a new version to the policy (replay, then a rollout)."""

    submit: Submit
    job_state: JobState
    count_rows: CountRows
    follow_up: FollowUp


@records_its_own
def tick(uow: Callable[[], UnitOfWork], hands: Hands, *, now: datetime) -> list[str]:
    """One round over every enabled schedule; what it did, a line each."""
    with uow() as work:
        every = [s for s in work.rollouts.schedules(None) if s.enabled]
    done = []
    for schedule in every:
        try:
            line = _tick_one(uow, hands, schedule, now)
        except MlgateError as exc:
            line = f"schedule {schedule.id} of {schedule.model}: {exc}"
            _save(uow, schedule, last_outcome=line)
        if line:
            done.append(line)
    return done


def _tick_one(
    uow: Callable[[], UnitOfWork], hands: Hands, schedule: Schedule, now: datetime
) -> str | None:
    if schedule.pending_job:
        state, result, error = hands.job_state(schedule.pending_job)
        if state not in ("succeeded", "failed", "cancelled"):
            return None
        claimed = _save(uow, schedule, pending_job=None, last_outcome="handling the retrain")
        if claimed is None:
            return None  # another replica handles it
        if state != "succeeded":
            outcome = (f"the retrain {state}: {error or 'no reason given'}; "
                       f"{schedule.alias} stays where it was")  # fmt: skip
        else:
            outcome = hands.follow_up(claimed, int(result["version"]))
        _save(uow, claimed, last_outcome=outcome)
        _audit(uow, schedule, now, "schedules.outcome", outcome=outcome, job=schedule.pending_job)
        return f"schedule {schedule.id} of {schedule.model}: {outcome}"
    reason, changes = _due(uow, hands, schedule, now)
    if reason is None:
        if changes:
            _save(uow, schedule, **changes)
        return None
    claimed = _save(uow, schedule, last_fired_at=now, pending_job="starting",
                    last_outcome=f"fired: {reason}", **changes)  # fmt: skip
    if claimed is None:
        return None  # another replica fired it for this period
    with uow() as work:
        target = work.models.aliases(schedule.model).get(schedule.alias)
        version = None if target is None else work.models.get_version(schedule.model, target)
    if version is None:
        _save(uow, claimed, pending_job=None,
              last_outcome=f"fired ({reason}) but {schedule.alias} points at nothing")  # fmt: skip
        return f"schedule {schedule.id} of {schedule.model}: no version to retrain"
    try:
        job = hands.submit(version, f"schedule:{schedule.id}")
    except MlgateError as exc:  # free the claim, or the schedule would wait on "starting" for ever
        line = f"schedule {schedule.id} of {schedule.model}: {exc}"
        _save(uow, claimed, pending_job=None, last_outcome=line)
        return line
    _save(uow, claimed, pending_job=job, last_outcome=f"retraining {version.ref}: {reason}")
    _audit(uow, schedule, now, "schedules.fired", reason=reason, retrains=version.ref, job=job)
    return f"schedule {schedule.id} of {schedule.model}: {reason}; job {job}"


def _audit(
    uow: Callable[[], UnitOfWork], schedule: Schedule, now: datetime, action: str, **detail: Any
) -> None:
    from mlgate.access.audit import record

    record(uow(), at=now, actor=f"schedule:{schedule.id}", action=action,
           target=f"{schedule.model}@{schedule.alias}", address="server", result="ok",
           detail={"schedule": schedule.id, **detail})  # fmt: skip


def _due(
    uow: Callable[[], UnitOfWork], hands: Hands, schedule: Schedule, now: datetime
) -> tuple[str | None, dict[str, Any]]:
    """Why the schedule fires now (None: it does not), and what to note either way."""
    changes: dict[str, Any] = {}
    if schedule.cron and schedule.next_run_at is not None and schedule.next_run_at <= now:
        changes["next_run_at"] = crontab.parse(schedule.cron).next_after(now)
        return f"cron {schedule.cron!r} came round", changes
    if schedule.on_drift:
        with uow() as work:
            check = work.monitoring.last_check(schedule.model)
        since = schedule.last_fired_at or schedule.created_at
        if check is not None and check.state != "ok" and check.checked_at > since:
            return f"the monitoring check found it {check.state}", changes
    if schedule.new_rows is not None and (schedule.next_check_at or now) <= now:
        changes["next_check_at"] = now + ROWS_EVERY
        with uow() as work:
            target = work.models.aliases(schedule.model).get(schedule.alias)
            version = None if target is None else work.models.get_version(schedule.model, target)
        if version is not None:
            count = hands.count_rows(version)
            trained = version.lineage.n_rows
            if count is not None and count - trained >= schedule.new_rows:
                return (f"the source has {count - trained:,} rows more than {version.ref} "
                        f"was trained on"), changes  # fmt: skip
    return None, changes


def _save(uow: Callable[[], UnitOfWork], schedule: Schedule, **changes: Any) -> Schedule | None:
    """Write the changes if nobody changed the schedule since it was read; the new schedule, or
    None when another replica got there first."""
    changed = replace(schedule, revision=schedule.revision + 1, **changes)
    with uow() as work:
        if not work.rollouts.save_schedule_if(changed, revision=schedule.revision):
            return None
        work.commit()
    return changed


def new_rows_of(version: ModelVersion, open_source: Callable[[str], Any]) -> int | None:
    """The rows the version's source holds now: its table counted, or its query's rows."""
    lineage = version.lineage
    if not lineage.source_name:
        return None
    source = open_source(lineage.source_name)
    try:
        if lineage.table:
            return source.count(lineage.table)  # type: ignore[no-any-return]
        if lineage.query:
            frame = source.read_query(f"SELECT COUNT(*) AS n FROM ({lineage.query}) AS q")
            return int(frame.iloc[0, 0])
    finally:
        source.close()
    return None


@records_its_own
def hand_over(
    uow: Callable[[], UnitOfWork],
    predictors: Any,
    schedule: Schedule,
    number: int,
    *,
    now: datetime,
    outbound: Any = None,
) -> str:
    """The policy for a version a schedule trained: replay, then a rollout (or none).
    `outbound`: the server's outbound client, for the rollout's webhook."""
    from mlgate.rollouts.replay import replay
    from mlgate.rollouts.service import start_rollout

    policy = schedule.policy
    alpha = float(policy.get("alpha", 0.05))
    said = f"trained v{number}"
    days = float(policy.get("replay_days", 0))
    if days > 0:
        report = replay(uow(), predictors, schedule.model, number, days=days, now=now,
                        alpha=alpha)  # fmt: skip
        test = report["test"]
        if test["verdict"] == "worse":
            return (
                f"{said}; the replay of {report['logged_calls']:,} logged calls found it worse "
                f"({report['metric']} {test['candidate_loss']:.4f} against "
                f"{test['incumbent_loss']:.4f} on {test['candidate_rows']:,} labelled rows); "
                f"{schedule.alias} stays where it was"
            )
        agreement = report["agreement"]
        said += f"; replayed {report['logged_calls']:,} logged calls" + (
            "" if agreement is None else f" (agreement {agreement:.1%})"
        )
    mode = policy.get("mode", "canary")
    if mode == "none":
        return f"{said}; no rollout (policy): a candidate for people to promote"
    try:
        rollout = start_rollout(
            uow(), schedule.model, number, mode=mode, share=float(policy.get("share", 0.05)),
            actor=f"schedule:{schedule.id}", now=now, alias=schedule.alias, alpha=alpha,
            auto=bool(policy.get("auto", True)),
            then_canary=policy.get("then_canary") if mode == "shadow" else None,
            outbound=outbound,
        )  # fmt: skip
    except MlgateError as exc:
        return f"{said}; the rollout could not start: {exc}"
    from mlgate.access.audit import record

    record(uow(), at=now, actor=f"schedule:{schedule.id}", action="rollouts.start",
           target=f"{schedule.model}@{schedule.alias}", address="server", result="ok",
           detail={"rollout": rollout.id, "candidate": number, "mode": mode})  # fmt: skip
    return f"{said}; {mode} rollout {rollout.id} started"
