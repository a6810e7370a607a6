"""Usage metering: every call, aggregated per hour in memory (or Redis), flushed to the
metadata database every second.

An aggregate's key is (hour, consumer, key prefix, model, version, status); its value is
[requests, rows, overage rows, total latency in ms, explained rows]. The database's `usage`
table is the ledger: monthly quotas are reconciled from it, and bills are computed from it.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mlgate.plans.model import FIELDS, TRACES_PER_ROW, Aggregates, UsageTrace


@dataclass(frozen=True)
class UsageEvent:
    at: datetime
    consumer: str
    key_prefix: str
    model: str
    version: int
    status: int
    rows: int
    latency_ms: float
    overage_rows: int = 0
    explained_rows: int = 0  # rows explained as well as scored (explainers/explain.py)

    def with_overage(self, overage_rows: int) -> UsageEvent:
        return (
            replace(self, overage_rows=overage_rows) if overage_rows != self.overage_rows else self
        )

    @property
    def key(self) -> tuple[str, ...]:
        return (
            _hour(self.at),
            self.consumer,
            self.key_prefix,
            self.model,
            str(self.version),
            str(self.status),
        )

    @property
    def values(self) -> list[int]:
        return [1, self.rows, self.overage_rows, round(self.latency_ms), self.explained_rows]


def _hour(at: datetime) -> str:
    """The aggregate's hour, as text (strftime on every call showed in profiles)."""
    if at.tzinfo is UTC:
        return _utc_hour(int(at.timestamp()) // 3600)
    return at.strftime("%Y-%m-%dT%H")


@functools.lru_cache(maxsize=16)
def _utc_hour(hours: int) -> str:
    return datetime.fromtimestamp(hours * 3600, UTC).strftime("%Y-%m-%dT%H")


class UsageTraces:
    """Traced calls' trace ids, the first few per usage aggregate and hour, kept until the
    flusher writes them beside the ledger (thread-safe). Only calls the tracer sampled come
    here, so this stays small; past `capacity` waiting, more are dropped."""

    def __init__(self, capacity: int = 10_000, per_key: int = TRACES_PER_ROW) -> None:
        self._lock = threading.Lock()
        self._waiting: list[UsageTrace] = []
        self._counted: dict[tuple[str, ...], int] = {}  # this hour's, per aggregate
        self._hour = ""
        self._capacity = capacity
        self._per_key = per_key

    def offer(self, event: UsageEvent, trace_id: str) -> None:
        key = event.key
        with self._lock:
            if key[0] != self._hour:
                self._hour, self._counted = key[0], {}
            seen = self._counted.get(key, 0)
            if seen >= self._per_key or len(self._waiting) >= self._capacity:
                return
            self._counted[key] = seen + 1
            hour = datetime.strptime(key[0], "%Y-%m-%dT%H").replace(tzinfo=UTC)
            self._waiting.append(UsageTrace(
                hour, event.consumer, event.key_prefix, event.model, event.version,
                event.status, trace_id,
            ))  # fmt: skip

    def take(self) -> list[UsageTrace]:
        with self._lock:
            taken, self._waiting = self._waiting, []
        return taken


class UsageBuffer:
    """Aggregates in memory; not thread-safe on its own (the owner holds a lock)."""

    def __init__(self) -> None:
        self._data: Aggregates = {}

    def add(self, event: UsageEvent) -> None:
        into = self._data.setdefault(event.key, [0] * len(FIELDS))
        for i, value in enumerate(event.values):
            into[i] += value

    def take(self) -> Aggregates:
        taken, self._data = self._data, {}
        return taken
