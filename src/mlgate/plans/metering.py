"""Usage metering: every call, aggregated per hour in memory (or Redis), flushed to the
metadata database every second.

An aggregate's key is (hour, consumer, key prefix, model, version, status); its value is
[requests, rows, overage rows, total latency in ms, explained rows]. The database's `usage`
table is the ledger: monthly quotas are reconciled from it, and bills are computed from it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mlgate.plans.model import FIELDS, Aggregates


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
