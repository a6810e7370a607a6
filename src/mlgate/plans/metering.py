"""Usage metering: every call, aggregated per hour in memory (or Redis), flushed to the
metadata database every second.

An aggregate's key is (hour, consumer, key prefix, model, version, status); its value is
[requests, rows, overage rows, total latency in ms]. The database's `usage` table is the ledger:
monthly quotas are reconciled from it, and bills are computed from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

Aggregates = dict[tuple[str, ...], list[int]]
FIELDS = ("requests", "rows", "overage_rows", "latency_ms")


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

    def with_overage(self, overage_rows: int) -> UsageEvent:
        return replace(self, overage_rows=overage_rows)

    @property
    def key(self) -> tuple[str, ...]:
        hour = self.at.strftime("%Y-%m-%dT%H")
        return (
            hour,
            self.consumer,
            self.key_prefix,
            self.model,
            str(self.version),
            str(self.status),
        )

    @property
    def values(self) -> list[int]:
        return [1, self.rows, self.overage_rows, round(self.latency_ms)]


class UsageBuffer:
    """Aggregates in memory; not thread-safe on its own (the owner holds a lock)."""

    def __init__(self) -> None:
        self._data: Aggregates = {}

    def add(self, event: UsageEvent) -> None:
        into = self._data.setdefault(event.key, [0, 0, 0, 0])
        for i, value in enumerate(event.values):
            into[i] += value

    def take(self) -> Aggregates:
        taken, self._data = self._data, {}
        return taken
