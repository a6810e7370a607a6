"""Rollouts and retraining schedules as the edges call them: bound once at the composition root
(bootstrap.Services.rollouts) with the unit of work, the clock, the loaded models, the outbound
client and the training jobs, so an edge passes only the request's data.

Each method delegates to the use case in service.py, schedules.py or replay.py, which records
its own audit event; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlgate.errors import NotFound
from mlgate.registry.model import PRODUCTION, ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.rollouts import schedules
from mlgate.rollouts import service as rollouts
from mlgate.rollouts.model import Rollout, Schedule
from mlgate.rollouts.replay import Progress, replay
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    from mlgate.outbound.client import Outbound
    from mlgate.runtime.predictors import PredictorCache
    from mlgate.sources.base import Source
    from mlgate.sources.model import SourceConfig
    from mlgate.training.steps import TrainSpec

SubmitTraining = Callable[["TrainSpec", dict[str, Any]], str]  # (spec, its JSON) -> job id
JobState = Callable[[str], tuple[str, dict[str, Any], str | None]]  # id -> state, result, error


@dataclass(frozen=True)
class Rollouts:
    """The rollouts' and the schedules' use cases with this process's adapters bound.

    `changed` drops the process's caches after a rollout starts or ends (an alias may have
    moved); `flush_tally` writes this process's counts of calls before a look reads them."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    predictors: PredictorCache
    outbound: Callable[[], Outbound]
    submit_training: SubmitTraining
    job_state: JobState
    open_source: Callable[[SourceConfig], Source]
    changed: Callable[[], None]
    flush_tally: Callable[[], None]

    # -- rollouts -------------------------------------------------------------------------

    def of_model(self, model: str) -> list[Rollout]:
        return rollouts.rollouts_of(self.uow(), model)

    def get(self, model: str, rollout_id: int) -> Rollout:
        return rollouts.get_rollout(self.uow(), model, rollout_id)

    def start(self, model: str, candidate: int, *, actor: str, **fields: Any) -> Rollout:
        """As a promotion does: the candidate is loaded (and verified) first, so a broken
        artifact is refused here rather than failing the callers it would answer."""
        self.predictors.get(resolve_version(self.uow(), model, candidate))
        started = rollouts.start_rollout(
            self.uow(), model, candidate, actor=actor, now=self.clock(),
            outbound=self.outbound(), **fields,
        )  # fmt: skip
        self.changed()
        return started

    def look(self, rollout: Rollout, *, points: int = 0) -> dict[str, Any]:
        """The evidence now; a running rollout's counts in this process are written first."""
        if rollout.running:
            self.flush_tally()
        return rollouts.look(self.uow(), rollout, points=points)

    def decide(self, model: str, rollout_id: int, *, address: str = "server") -> Rollout:
        rollout = self.get(model, rollout_id)
        self.flush_tally()
        decided = rollouts.decide(self.uow(), rollout, now=self.clock(), address=address,
                                  outbound=self.outbound())  # fmt: skip
        self.changed()
        return decided

    def stop(self, model: str, rollout_id: int, *, actor: str, reason: str = "") -> Rollout:
        stopped = rollouts.stop_rollout(self.uow(), model, rollout_id, actor=actor,
                                        now=self.clock(), reason=reason,
                                        outbound=self.outbound())  # fmt: skip
        self.changed()
        return stopped

    def decide_all(self) -> list[Rollout]:
        """The referee's round over every running rollout (the server runs it periodically)."""
        decided = rollouts.decide_all(self.uow, self.clock, self.outbound())
        if any(r.state != "running" for r in decided):
            self.changed()  # an alias moved, or a canary ended: follow it now
        return decided

    def replay(
        self,
        model: str,
        candidate: int,
        *,
        days: float,
        alpha: float = 0.05,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        return replay(self.uow(), self.predictors, model, candidate, days=days, now=self.clock(),
                      alpha=alpha, progress=progress)  # fmt: skip

    # -- schedules --------------------------------------------------------------------------

    def schedules(self, model: str | None = None) -> list[Schedule]:
        return schedules.schedules_of(self.uow(), model)

    def add_schedule(
        self,
        model: str,
        *,
        actor: str,
        cron: str | None = None,
        on_drift: bool = False,
        new_rows: int | None = None,
        alias: str = PRODUCTION,
        policy: dict[str, Any] | None = None,
    ) -> Schedule:
        return schedules.add_schedule(
            self.uow(), model, actor=actor, now=self.clock(), cron=cron, on_drift=on_drift,
            new_rows=new_rows, alias=alias, policy=policy,
        )  # fmt: skip

    def remove_schedule(self, model: str, schedule_id: int) -> Schedule:
        return schedules.remove_schedule(self.uow(), model, schedule_id)

    def retrain(self, version: ModelVersion, *, actor: str, reason: str) -> str:
        """A training job on fresh rows from the version's own source and query: a candidate
        version, promoted by people or by a rollout's policy. Returns the job's id."""
        from mlgate.training.service import retrain_spec

        spec = retrain_spec(version, from_snapshot=False, actor=actor)
        body = {"model": version.model_name, "source": spec.source, "target": spec.target,
                "algorithm": spec.algorithm, "table": spec.table, "query": spec.query,
                "reason": reason}  # fmt: skip
        return self.submit_training(spec, body)

    def retrain_on_alert(self, version: ModelVersion) -> str:
        """Monitoring's retrain: a candidate, never promoted by the alert itself."""
        return self.retrain(
            version, actor="monitor", reason=f"monitoring alert on version {version.number}"
        )

    def run_schedules(self) -> list[str]:
        """One round over the retraining schedules (schedules.tick): what it did, a line each."""

        def open_named(name: str) -> Source:
            with self.uow() as uow:
                config = uow.sources.get(name)
            if config is None:
                raise NotFound(f"no source named {name!r}")
            return self.open_source(config)

        hands = schedules.Hands(
            submit=lambda version, actor: self.retrain(
                version, actor=actor, reason=f"{actor}: retrain {version.ref}"
            ),
            job_state=self.job_state,
            count_rows=lambda version: schedules.new_rows_of(version, open_named),
            follow_up=lambda schedule, number: schedules.hand_over(
                self.uow, self.predictors, schedule, number, now=self.clock(),
                outbound=self.outbound(),
            ),
        )  # fmt: skip
        done = schedules.tick(self.uow, hands, now=self.clock())
        if done:
            self.changed()  # a rollout may have started
        return done
