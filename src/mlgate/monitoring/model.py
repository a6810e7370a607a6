"""What monitoring keeps: a model's settings, logged predictions, feedback, the last check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from mlgate.errors import FieldError, InvalidInput
from mlgate.retention.model import MAX_DAYS, MIN_DAYS, TOO_SHORT

STATES = ("ok", "drifting", "degraded", "drifting+degraded")


@dataclass(frozen=True)
class MonitorSettings:
    """Per model. Nothing is logged until `sample_rate` is above 0."""

    sample_rate: float = 0.0  # the share of prediction requests logged, 0 to 1
    exclude_columns: tuple[str, ...] = ()  # never stored (personal data)
    psi_threshold: float = 0.2  # a feature drifts at this population stability index...
    p_threshold: float = 0.01  # ...when its two-sample test also rejects at this level
    min_rows: int = 200  # fewer logged rows in a window: no drift verdict
    min_accuracy: float | None = None  # classification: degraded below this live accuracy
    max_rmse: float | None = None  # regression: degraded above this live RMSE
    window_days: int = 1  # what a check looks at: the last N days
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    retrain: bool = False  # an alert trains a candidate version (no alias moves)
    # Days the model's prediction log, usage rows and audit events are kept (retention/);
    # None: for ever.
    log_retention_days: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.sample_rate <= 1.0:
            problems.append(FieldError("sample_rate", "between 0 and 1"))
        if self.psi_threshold <= 0:
            problems.append(FieldError("psi_threshold", "above 0"))
        if not 0.0 < self.p_threshold < 1.0:
            problems.append(FieldError("p_threshold", "between 0 and 1"))
        if self.min_rows < 10:
            problems.append(FieldError("min_rows", "at least 10"))
        if self.min_accuracy is not None and not 0.0 <= self.min_accuracy <= 1.0:
            problems.append(FieldError("min_accuracy", "between 0 and 1"))
        if self.max_rmse is not None and self.max_rmse <= 0:
            problems.append(FieldError("max_rmse", "above 0"))
        if not 1 <= self.window_days <= 90:
            problems.append(FieldError("window_days", "1 to 90"))
        url = self.webhook_url
        if url is not None and not url.startswith(("http://", "https://")):
            problems.append(FieldError("webhook_url", "an http:// or https:// URL"))
        if url is not None and not self.webhook_secret:
            problems.append(
                FieldError(
                    "webhook_secret",
                    "given with a webhook: it signs each call, so the receiver can tell it "
                    "came from mlgate",
                )
            )
        days = self.log_retention_days
        if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
            why = TOO_SHORT if days < MIN_DAYS else f"at most {MAX_DAYS}, or none (forever)"
            problems.append(FieldError("log_retention_days", why))
        if problems:
            raise InvalidInput(
                "monitoring settings: "
                + "; ".join(f"{p.field} must be {p.message}" for p in problems),
                errors=problems,
            )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["exclude_columns"] = list(self.exclude_columns)
        return out

    def public(self) -> dict[str, Any]:
        """As shown to people: the webhook secret only as whether there is one."""
        out = self.to_json()
        out["webhook_secret"] = "set" if self.webhook_secret else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MonitorSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "exclude_columns" in known:
            known["exclude_columns"] = tuple(known["exclude_columns"])
        return cls(**known)


@dataclass(frozen=True)
class LoggedPrediction:
    request_id: str
    model: str
    version: int
    account: str  # "consumer:acme", "user:ann"
    at: datetime
    inputs: dict[str, list[Any]]  # column -> values, excluded columns left out
    predictions: list[Any]
    trace_id: str | None = None  # the call's trace, where it was traced (tracing/)


@dataclass(frozen=True)
class Label:
    request_id: str
    row: int
    label: Any


@dataclass(frozen=True)
class CheckResult:
    """The last check of a model: its state, and what gave it."""

    model: str
    state: str
    checked_at: datetime
    details: dict[str, Any]
