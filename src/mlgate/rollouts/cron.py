"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC: `*`,
numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and day names (`jan`,
`mon`), and the shorthands @hourly, @daily, @weekly, @monthly. As in Vixie cron, when both
day fields are restricted a day matches either of them; Sunday is 0 or 7."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (  # name, lowest, highest, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
SEARCH_DAYS = 366 * 5  # a day that never comes (Feb 30) is refused, not searched for ever


@dataclass(frozen=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def matches_day(self, at: datetime) -> bool:
        if at.month not in self.months:
            return False
        by_date = at.day in self.days
        by_weekday = (at.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_date
        return by_date or by_weekday

    def next_after(self, at: datetime) -> datetime:
        """The first matching minute strictly after `at` (same time zone as `at`)."""
        start = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(SEARCH_DAYS):
            current = day + timedelta(days=offset)
            if not self.matches_day(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = current.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        raise InvalidInput(f"cron {self.text!r} never comes round", errors=[
            FieldError("cron", "a date that exists")])  # fmt: skip


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
    values = [_field(part, *spec, text) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    cron = Cron(text, values[0], values[1], values[2], values[3], weekdays,
                parts[2] == "*", parts[4] == "*")  # fmt: skip
    cron.next_after(datetime(2000, 1, 1))  # refuse a date that never comes (30 feb)
    return cron


def _field(
    part: str, name: str, low: int, high: int, names: dict[str, int], text: str
) -> frozenset[int]:
    out: set[int] = set()
    for item in part.lower().split(","):
        body, _, step_text = item.partition("/")
        step = _number(step_text, name, text, names={}) if step_text else 1
        if step < 1:
            raise _bad(text, name, f"a step of at least 1, not {step_text!r}")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _number(a, name, text, names), _number(b, name, text, names)
        else:
            first = _number(body, name, text, names)
            last = high if step_text else first
        if not low <= first <= last <= high:
            raise _bad(text, name, f"values from {low} to {high}, not {item!r}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _number(token: str, name: str, text: str, names: dict[str, int]) -> int:
    if token in names:
        return names[token]
    if not token.isdecimal():
        raise _bad(text, name, f"a number, not {token!r}")
    return int(token)


def _bad(text: str, name: str, what: str) -> InvalidInput:
    return InvalidInput(f"cron {text!r}: the {name} field needs {what}",
                        errors=[FieldError("cron", f"{name}: {what}")])  # fmt: skip
