"""Counting calls against a plan's limits: fixed UTC windows, checked and counted atomically.

A call is counted when it has been answered: `commit` checks every hard limit and, only if all
hold, adds the call to every window and to the usage aggregates in one atomic step (a lock here,
a Lua script in Redis: one round trip). A worker killed before that step counted nothing; one
killed after it had its answer ready. `peek` reads counts without changing them.
"""

from __future__ import annotations

import calendar
import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from mlgate.plans.metering import UsageBuffer, UsageEvent
from mlgate.plans.model import Limit, Window


@dataclass(frozen=True)
class Charge:
    """One limit's counter for this call: its key (window bucket included), the amount to add,
    and when the window ends."""

    limit: Limit
    key: str
    amount: int
    reset_in: int  # seconds until the window ends
    ttl: int  # how long the counter must live
    extra: int = 0  # spend: added per overage row (an overage row's own price); always last

    def amount_with(self, overage: int) -> int:
        return self.amount + overage * self.extra


@dataclass(frozen=True)
class LimitState:
    limit: Limit
    used: int
    reset_in: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit.limit - self.used)


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    states: tuple[LimitState, ...]
    blocked: LimitState | None = None
    overage_rows: int = 0

    @property
    def retry_after(self) -> int:
        return max(1, self.blocked.reset_in) if self.blocked else 0


def bucket(window: Window, now: datetime) -> tuple[str, int, int]:
    """The window's id at `now`, the seconds until it ends, and its length in seconds."""
    return _bucket(window, int(now.timestamp()))


@functools.lru_cache(maxsize=64)
def _bucket(window: Window, second: int) -> tuple[str, int, int]:
    """`bucket` at a whole second: every figure depends on the second alone, and a busy server
    asks for the same few windows thousands of times a second (strftime showed in profiles)."""
    if window == "second":
        return str(second), 1, 1
    if window == "minute":
        return str(second // 60), 60 - second % 60, 60
    if window == "hour":
        return str(second // 3600), 3600 - second % 3600, 3600
    now = datetime.fromtimestamp(second, UTC)
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if window == "day":
        return (
            day_start.strftime("%Y-%m-%d"),
            86_400 - (second - int(day_start.timestamp())),
            86_400,
        )
    days = calendar.monthrange(now.year, now.month)[1]
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    length = days * 86_400
    return now.strftime("%Y-%m"), length - (second - int(month_start.timestamp())), length


def charges(consumer: str, limits: Iterable[Limit], rows: int, now: datetime) -> list[Charge]:
    out = []
    for limit in limits:
        name, reset_in, length = bucket(limit.window, now)
        out.append(
            Charge(
                limit=limit,
                key=f"{consumer}:{limit.unit}:{limit.window}:{name}",
                amount=1 if limit.unit == "requests" else rows,
                reset_in=max(1, reset_in),
                ttl=length + 60,
            )
        )
    return out


def spend_charge(
    consumer: str, cap_nanos: int, rates: tuple[int, int, int], rows: int, explained: int,
    now: datetime,
) -> Charge:  # fmt: skip
    """The month's spend as a hard limit: this call's cost in nanos (its overage rows' extra
    added once `decide` knows them; so it goes after every other charge)."""
    name, reset_in, length = bucket("month", now)
    row, extra, per_explained = rates
    return Charge(
        limit=Limit("spend", "month", cap_nanos, hard=True),
        key=f"{consumer}:spend:month:{name}",
        amount=rows * row + explained * per_explained,
        reset_in=max(1, reset_in),
        ttl=length + 60,
        extra=extra,
    )


def decide(
    charged: list[Charge], before: list[int], rows: int
) -> tuple[bool, LimitState | None, int]:
    """Pure: whether the call fits every hard limit given the counts before it, which limit
    blocks it if not, and how many of its rows are overage (past a soft quota). A spend
    charge, last, counts the overage rows known by then."""
    overage = 0
    for charge, used in zip(charged, before, strict=True):
        after = used + charge.amount_with(overage)
        if after > charge.limit.limit:
            if charge.limit.hard:
                return False, LimitState(charge.limit, used, charge.reset_in), 0
            if charge.limit.unit == "rows":
                overage = max(overage, min(rows, after - charge.limit.limit))
            else:
                overage = rows
    return True, None, overage


class Counters(Protocol):
    """Where the counts live: this process (MemoryCounters) or Redis (plans/redis.py)."""

    def peek(self, keys: list[str]) -> list[int]: ...

    def commit(
        self, charged: list[Charge], rows: int, event: UsageEvent
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        """Atomically: check, count and meter (allowed), or refuse (nothing counted). Returns
        (allowed, the blocking limit, overage rows, the counts after)."""
        ...

    def reserve(
        self, charged: list[Charge], rows: int
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        """`commit` without metering: a batch job meters its chunks in the ledger itself."""
        ...

    def meter(self, event: UsageEvent) -> None:
        """Meter a call that was not counted (refused, failed)."""
        ...

    def seed(self, counts: dict[str, tuple[int, int]]) -> None:
        """Set counters that do not exist yet (key -> (value, ttl)): reconciling from the ledger."""
        ...

    def drain(self) -> Iterable[tuple[str, dict[tuple[str, ...], list[int]]]]:
        """Hand over the metered aggregates for the database, as (batch id, aggregates)."""
        ...

    def drained(self, batch: str) -> None:
        """The batch is in the database: forget it."""
        ...


class MemoryCounters:
    """The embedded default: counts in this process (one worker), behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._usage = UsageBuffer()
        self._pending: dict[str, dict[tuple[str, ...], list[int]]] = {}
        self._batches = 0

    def peek(self, keys: list[str]) -> list[int]:
        with self._lock:
            return [self._counts.get(k, 0) for k in keys]

    def commit(
        self, charged: list[Charge], rows: int, event: UsageEvent
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        return self._count(charged, rows, event)

    def reserve(
        self, charged: list[Charge], rows: int
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        return self._count(charged, rows, None)

    def _count(
        self, charged: list[Charge], rows: int, event: UsageEvent | None
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        """Check, count and (with an event) meter, under the lock."""
        with self._lock:
            before = [self._counts.get(c.key, 0) for c in charged]
            allowed, blocked, overage = decide(charged, before, rows)
            if not allowed:
                return False, blocked, 0, before
            after = [used + c.amount_with(overage) for c, used in zip(charged, before, strict=True)]
            for charge, value in zip(charged, after, strict=True):
                self._counts[charge.key] = value
            if event is not None:
                self._usage.add(event.with_overage(overage))
            return True, None, overage, after

    def meter(self, event: UsageEvent) -> None:
        with self._lock:
            self._usage.add(event)

    def seed(self, counts: dict[str, tuple[int, int]]) -> None:
        with self._lock:
            for key, (value, _ttl) in counts.items():
                self._counts.setdefault(key, value)

    def drain(self) -> Iterable[tuple[str, dict[tuple[str, ...], list[int]]]]:
        with self._lock:
            taken = self._usage.take()
            if taken:
                self._batches += 1
                self._pending[f"memory-{id(self)}-{self._batches}"] = taken
            return list(self._pending.items())

    def drained(self, batch: str) -> None:
        with self._lock:
            self._pending.pop(batch, None)

    def prune(self, now: datetime) -> None:
        """Forget counters of windows that ended (seconds, minutes and hours pile up)."""
        with self._lock:
            live = {
                k
                for k in self._counts
                if k.split(":")[2] not in ("second", "minute", "hour") or _current(k, now)
            }
            self._counts = {k: v for k, v in self._counts.items() if k in live}


def _current(key: str, now: datetime) -> bool:
    _consumer, _unit, window, name = key.rsplit(":", 3)
    return bucket(window, now)[0] == name  # type: ignore[arg-type]
