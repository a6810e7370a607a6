"""What a rollout is: a candidate version tried against the version an alias points at, on a
share of the alias's traffic, until a sequential test or a guard rail decides."""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mlgate.errors import FieldError, InvalidInput
from mlgate.registry.model import PRODUCTION

Mode = Literal["shadow", "canary"]
MODES: tuple[Mode, ...] = ("shadow", "canary")
RUNNING = "running"
ENDED = ("promoted", "passed", "rolled_back", "stopped", "expired")  # how a rollout can end
SIDES = ("incumbent", "candidate")


@dataclass(frozen=True)
class Rollout:
    model: str
    alias: str
    incumbent: int  # the version the alias pointed at when the rollout started
    candidate: int
    mode: Mode
    share: float  # of the alias's calls: answered by (canary) or copied to (shadow) the candidate
    started_at: datetime
    started_by: str
    deadline: datetime  # undecided by then: the rollout stops and the alias stays
    alpha: float = 0.05  # the chance of a wrong "better" or "worse", at any look
    auto: bool = False  # promote or roll back on the test's verdict, not only report it
    max_error_rate: float = 0.05  # guard rail: the candidate's failed calls over its calls
    max_latency_ratio: float = 3.0  # guard rail: its p99 over the incumbent's
    min_agreement: float = 0.0  # guard rail (shadow): rows where both sides say the same
    then_canary: float | None = None  # shadow: found better, a canary of this share follows
    state: str = RUNNING
    reason: str | None = None
    ended_at: datetime | None = None
    last_look: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(FieldError("mode", "shadow or canary"))
        if not 0.0 < self.share <= 1.0:
            problems.append(FieldError("share", "above 0 and at most 1"))
        if self.mode == "canary" and self.share > 0.5:
            problems.append(FieldError("share", "at most 0.5 for a canary (more is a promotion)"))
        if not 0.0 < self.alpha <= 0.2:
            problems.append(FieldError("alpha", "above 0 and at most 0.2"))
        if not 0.0 < self.max_error_rate < 1.0:
            problems.append(FieldError("max_error_rate", "between 0 and 1"))
        if self.max_latency_ratio <= 1.0:
            problems.append(FieldError("max_latency_ratio", "above 1"))
        if self.then_canary is not None and (
            self.mode != "shadow" or not 0.0 < self.then_canary <= 0.5
        ):
            problems.append(FieldError("then_canary", "a share up to 0.5, after a shadow only"))
        if not 0.0 <= self.min_agreement <= 1.0:
            problems.append(FieldError("min_agreement", "between 0 and 1"))
        if self.candidate == self.incumbent:
            problems.append(FieldError("candidate", f"another version than {self.incumbent}"))
        if self.deadline <= self.started_at:
            problems.append(FieldError("deadline", "after the start"))
        if problems:
            raise InvalidInput(
                "rollout: " + "; ".join(f"{p.field} must be {p.message}" for p in problems),
                errors=problems,
            )

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def answers_with_candidate(self, caller: str) -> bool:
        """Whether a canary answers this caller's calls with the candidate: a hash of the
        rollout and the caller, so a caller stays on one side for the whole rollout, in every
        worker and replica."""
        return self.mode == "canary" and side_draw(self.id or 0, caller) < self.share

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "alias": self.alias,
            "incumbent": self.incumbent,
            "candidate": self.candidate,
            "mode": self.mode,
            "share": self.share,
            "alpha": self.alpha,
            "auto": self.auto,
            "max_error_rate": self.max_error_rate,
            "max_latency_ratio": self.max_latency_ratio,
            "min_agreement": self.min_agreement,
            "then_canary": self.then_canary,
            "state": self.state,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "started_by": self.started_by,
            "deadline": self.deadline.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "last_look": self.last_look,
        }


def side_draw(rollout_id: int, caller: str) -> float:
    """A number in [0, 1) fixed by the rollout and the caller, spread evenly over callers."""
    digest = hashlib.sha256(f"{rollout_id}:{caller}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class SideCounts:
    """A side's calls as the serving processes counted them (summed over their flushes)."""

    calls: int = 0
    failed: int = 0
    latency: tuple[int, ...] = ()  # calls per LATENCY_BOUNDS bucket
    compared: int = 0  # shadow: rows scored by both sides
    agreed: int = 0  # shadow: of those, rows both labelled alike (classification)
    score_diff: float = 0.0  # shadow: summed |Δ prediction| or mean |Δ p| per row

    def p99_ms(self) -> float | None:
        return quantile_ms(self.latency, 0.99)


def add_counts(a: SideCounts | None, b: SideCounts) -> SideCounts:
    """Two processes' (or flushes') counts of one side, summed."""
    if a is None:
        return b
    left = a.latency or (0,) * len(b.latency)
    right = b.latency or (0,) * len(a.latency)
    latency = tuple(x + y for x, y in zip(left, right, strict=True))
    return SideCounts(a.calls + b.calls, a.failed + b.failed, latency, a.compared + b.compared,
                      a.agreed + b.agreed, a.score_diff + b.score_diff)  # fmt: skip


LATENCY_BOUNDS = tuple(0.25 * 2 ** (k / 2) for k in range(40))  # 0.25 ms … ~260 s, √2 apart


def bucket_of(ms: float) -> int:
    return min(bisect.bisect_left(LATENCY_BOUNDS, ms), len(LATENCY_BOUNDS) - 1)


def quantile_ms(counts: tuple[int, ...], q: float) -> float | None:
    """The bucket bound below which a share q of the calls fell (None: no calls)."""
    total = sum(counts)
    if total == 0:
        return None
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= q * total:
            return LATENCY_BOUNDS[index]
    return LATENCY_BOUNDS[-1]


@dataclass(frozen=True)
class ShadowPair:
    """One copied call: the candidate's answer beside the incumbent's."""

    rollout_id: int
    request_id: str
    at: datetime
    n_rows: int
    agreed: int | None  # rows where both predicted the same label (classification)
    score_diff: float | None  # summed over rows: |Δ prediction| (regression) or mean |Δ p|
    predictions: list[Any] | None  # the candidate's, for the test on labels
    error: str | None = None  # the candidate failed: what it raised


# A schedule: a model that retrains itself (rollouts/schedules.py says how it fires).
POLICY_MODES = ("shadow", "canary", "none")
DEFAULT_POLICY: dict[str, Any] = {
    "replay_days": 7, "mode": "canary", "share": 0.05, "auto": True, "alpha": 0.05,
}  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    model: str
    created_at: datetime
    created_by: str
    cron: str | None = None
    on_drift: bool = False
    new_rows: int | None = None
    alias: str = PRODUCTION
    policy: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    enabled: bool = True
    next_run_at: datetime | None = None  # the cron's next time
    next_check_at: datetime | None = None  # the next count of the source's rows
    last_fired_at: datetime | None = None
    pending_job: str | None = None  # the retrain running now
    last_outcome: str | None = None
    revision: int = 0  # bumped by every change: the compare-and-set replicas agree on
    id: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.cron is None and not self.on_drift and self.new_rows is None:
            problems.append(FieldError("cron", "set, or on_drift, or new_rows: a trigger"))
        if self.new_rows is not None and self.new_rows < 1:
            problems.append(FieldError("new_rows", "at least 1"))
        policy = self.policy
        if policy.get("mode") not in POLICY_MODES:
            problems.append(FieldError("policy.mode", "shadow, canary or none"))
        if not 0 <= float(policy.get("replay_days", 0)) <= 90:
            problems.append(FieldError("policy.replay_days", "0 to 90"))
        share = float(policy.get("share", 0.05))
        if not 0 < share <= (0.5 if policy.get("mode") == "canary" else 1.0):
            problems.append(FieldError("policy.share", "above 0, at most 0.5 for a canary"))
        then = policy.get("then_canary")
        if then is not None and (policy.get("mode") != "shadow" or not 0 < float(then) <= 0.5):
            problems.append(FieldError("policy.then_canary", "a share up to 0.5, after a shadow"))
        if not 0 < float(policy.get("alpha", 0.05)) <= 0.2:
            problems.append(FieldError("policy.alpha", "above 0 and at most 0.2"))
        if problems:
            raise InvalidInput(
                "schedule: " + "; ".join(f"{p.field} must be {p.message}" for p in problems),
                errors=problems,
            )

    def to_json(self) -> dict[str, Any]:
        def when(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat()

        return {
            "id": self.id, "model": self.model, "alias": self.alias, "cron": self.cron,
            "on_drift": self.on_drift, "new_rows": self.new_rows, "policy": self.policy,
            "enabled": self.enabled, "created_at": when(self.created_at),
            "created_by": self.created_by, "next_run_at": when(self.next_run_at),
            "next_check_at": when(self.next_check_at),
            "last_fired_at": when(self.last_fired_at), "pending_job": self.pending_job,
            "last_outcome": self.last_outcome,
        }  # fmt: skip
