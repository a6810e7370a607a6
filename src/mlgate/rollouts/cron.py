"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC, read by
cronsim (maintained, the healthchecks.io engine): numbers, ranges, steps, lists, month and day
names, `L` and `#`, Vixie cron's rule that a day matches either restricted day field, Sunday as
0 or 7. Here: the shorthands (@hourly, @daily, @weekly, @monthly, @yearly), the refusal of a date
that never comes (30 February) when the schedule is made, and errors that say which field is
wrong and what it takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim, CronSimError

from mlgate.errors import FieldError, InvalidInput

SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS = {  # cronsim's word for a field: ours, and what it takes
    "minute": ("minute", "values from 0 to 59"),
    "hour": ("hour", "values from 0 to 23"),
    "day-of-month": ("day of month", "values from 1 to 31"),
    "month": ("month", "values from 1 to 12 or jan-dec"),
    "day-of-week": ("day of week", "values from 0 to 7 (0 and 7 are Sunday) or sun-sat"),
}
_FORMS = "a number, a range a-b, a step */n or a-b/n, or a list a,b"


@dataclass(frozen=True)
class Cron:
    text: str
    expanded: str

    def next_after(self, at: datetime) -> datetime:
        """The first matching minute strictly after `at` (same time zone as `at`)."""
        try:
            return next(CronSim(self.expanded, at))
        except StopIteration:  # cronsim looks a few years ahead at most
            raise InvalidInput(f"cron {self.text!r} never comes round", errors=[
                FieldError("cron", "a date that exists")]) from None  # fmt: skip


def parse(text: str) -> Cron:
    """A cron expression, or InvalidInput naming the field that is wrong."""
    expanded = SHORTHANDS.get(text.strip().lower(), text.strip())
    parts = expanded.split()
    if len(parts) != 5:
        raise InvalidInput(
            f"cron {text!r} has {len(parts)} fields; it needs 5: minute hour day-of-month "
            'month day-of-week, e.g. "0 3 * * 1" for Mondays at 03:00 UTC',
            errors=[FieldError("cron", "5 fields")],
        )
    try:
        CronSim(expanded, datetime(2000, 1, 1))
    except CronSimError as exc:
        said = str(exc).lower()
        word = next((w for w in _FIELDS if said.endswith(w)), None)
        if word is None:
            raise InvalidInput(f"cron {text!r}: {exc}", errors=[
                FieldError("cron", str(exc))]) from None  # fmt: skip
        name, values = _FIELDS[word]
        what = f"{values}: {_FORMS}"
        if word == "day-of-month" and parts[2] not in ("*", "?") and parts[3] != "*":
            what += "; and a day that exists in the month (no 30 February)"
        raise InvalidInput(f"cron {text!r}: the {name} field needs {what}", errors=[
            FieldError("cron", f"{name}: {what}")]) from None  # fmt: skip
    cron = Cron(text, expanded)
    cron.next_after(datetime(2000, 1, 1))
    return cron
