"""The retention rule: how long a model's logs are kept, read from `--log-retention 3650d`.

The setting lives with the model's monitoring settings (`log_retention_days`); None keeps every
log for ever. It may not be shorter than MIN_DAYS, because the model's usage ledger rows are
deleted with its logs and they are what a bill is made from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlgate.errors import InvalidInput

# The usage ledger is billed by calendar month, and a billing sink's first pass reaches back to
# the first of the previous month (plans/exporter.py): two whole months, 62 days at most.
MIN_DAYS = 62
MAX_DAYS = 36_525  # a hundred years, leap days counted: beyond that, say "forever"
# Only the word: an empty value (`--log-retention "$UNSET"`) or "none" (keep none?) is refused
# rather than read as "keep every log for ever".
FOREVER = ("forever",)
TOO_SHORT = (
    f"at least {MIN_DAYS} days: the model's usage ledger rows go with its logs, and they are "
    "kept for the billing period at least (the month being billed and the one before it, "
    "which a billing sink's first pass reaches back to)"
)

# The EU AI Act keeps a high-risk system's automatic logs "for a period appropriate to the
# intended purpose ... of at least six months" (Articles 19(1) and 26(6)); six months are at
# most 184 days. Shorter is allowed (not every model is high-risk), and said.
SIX_MONTHS = 184
SHORTER_THAN_SIX_MONTHS = (
    f"shorter than six months ({SIX_MONTHS} days): the EU AI Act asks a high-risk AI system's "
    "logs to be kept at least six months (Articles 19(1) and 26(6))"
)

# The audit events about a model: those of these areas (use cases' and API routes' actions)
# whose target names the model. Access events (grants, keys) are about people and stay; the
# purges' own records ("retention.purge") are never purged.
MODEL_AREAS = (
    "models.", "lifecycle.", "monitoring.", "rollouts.", "schedules.", "training.",
    "batches.", "mlflow.", "open inference protocol.",
)  # fmt: skip
PURGE_ACTION = "retention.purge"


def parse_retention(text: str) -> int | None:
    """`3650d` (days), `10y` (years) or `forever` as a number of days (None: forever);
    InvalidInput for anything else or for a number out of bounds. A year counts its leap
    day: `10y` is 3653 days, the most ten calendar years hold, so nothing is deleted before
    it is ten years old (at 365 days a year it would be, by up to three days)."""
    given = text.strip().lower()
    if given in FOREVER:
        return None
    found = re.fullmatch(r"([0-9]{1,6})\s*([dy])", given)  # ASCII digits only
    if found is None:
        raise InvalidInput(
            f"a log retention is a number of days or years, like 3650d or 10y, or 'forever'; "
            f"not {text!r}"
        )
    number = int(found.group(1))
    days = years_in_days(number) if found.group(2) == "y" else number
    check_days(days)
    return days


def years_in_days(years: int) -> int:
    """The most days `years` calendar years can hold: 365 each and a leap day every four."""
    return 365 * years + (years + 3) // 4


def check_days(days: int | None) -> None:
    """InvalidInput unless `days` is None (forever) or MIN_DAYS..MAX_DAYS, saying why."""
    if days is None:
        return
    if days < MIN_DAYS:
        raise InvalidInput(f"log retention of {days} days refused: it must be {TOO_SHORT}")
    if days > MAX_DAYS:
        raise InvalidInput(f"log retention must be at most {MAX_DAYS} days, or 'forever'")


def stated(days: int | None) -> str:
    return "forever" if days is None else f"{days}d"


@dataclass(frozen=True)
class Purged:
    """What one purge removed of a model's logs: rows at or after `cutoff` stay."""

    model: str
    cutoff: datetime
    retention_days: int
    predictions: int = 0
    feedback: int = 0
    usage: int = 0
    usage_traces: int = 0
    audit_events: int = 0

    @property
    def total(self) -> int:
        return self.predictions + self.feedback + self.usage + self.usage_traces + self.audit_events

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cutoff": self.cutoff.isoformat(),
            "retention_days": self.retention_days,
            "predictions": self.predictions,
            "feedback": self.feedback,
            "usage": self.usage,
            "usage_traces": self.usage_traces,
            "audit_events": self.audit_events,
        }


def policy(days: int | None) -> dict[str, Any]:
    """The retention policy of a model as the dossier states it."""
    return {
        "log_retention": stated(days),
        "log_retention_days": days,
        "covers": [
            "the prediction log (sampled requests: inputs and predictions) and its feedback labels",
            "the usage ledger rows of the model (and their trace ids)",
            "the audit log's events about the model (its versions, aliases, monitoring, "
            "rollouts, schedules, training and batch jobs)",
        ],
        "kept": [
            "the model's versions, reports, cards, signatures and files",
            "the alias history",
            "usage hours a billing sink has not been sent yet",
            "audit events about access (grants, keys, users) and every retention purge's own "
            "record (action retention.purge)",
        ],
        "enforced_by": "the server (`mlgate serve`), every MLGATE_RETENTION_INTERVAL seconds",
        "minimum_days": MIN_DAYS,
        "minimum_reason": TOO_SHORT,
        "high_risk_minimum_days": SIX_MONTHS,
        "meets_high_risk_minimum": days is None or days >= SIX_MONTHS,
    }
