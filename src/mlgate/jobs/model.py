"""A job as stored: work that outlives the request that started it (a training run, a batch
of rows to score), one row of the jobs table whatever its kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: tuple[State, ...] = ("succeeded", "failed", "cancelled")
LOG_LINES = 50


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: State
    spec: dict[str, Any]
    created_at: datetime
    stage: str = ""
    progress: float = 0.0  # 0..1: the stages passed (training), the rows done (batches)
    log: tuple[str, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    owner: str = ""  # host:pid of the process that runs it
    heartbeat_at: datetime | None = None  # when that process last said it is alive

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "log": list(self.log[-LOG_LINES:]),
            "result": self.result,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
