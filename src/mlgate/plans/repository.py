"""The plans storage seams; db/ implements them over SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mlgate.plans.metering import Aggregates
from mlgate.plans.model import Plan, Subscription


@dataclass(frozen=True)
class UsageRow:
    period: str  # the hour, day or month, as text
    account: str
    key_prefix: str
    model: str
    version: int
    status: int
    requests: int
    rows: int
    overage_rows: int
    latency_ms: int
    explained_rows: int = 0


class PlanRepository(Protocol):
    def add(self, plan: Plan) -> None: ...

    def get(self, name: str) -> Plan | None: ...

    def all(self) -> list[Plan]: ...

    def save(self, plan: Plan) -> None: ...

    def remove(self, name: str) -> None: ...

    def add_subscription(self, subscription: Subscription) -> Subscription: ...

    def subscriptions(self, consumer: str | None = None) -> list[Subscription]: ...

    def end_subscription(self, subscription_id: int, at: datetime) -> None: ...


class UsageRepository(Protocol):
    def add_batch(self, batch: str, aggregates: Aggregates, at: datetime) -> bool:
        """Write a batch once: False (and nothing written) if it was written before."""
        ...

    def query(
        self,
        *,
        since: datetime,
        until: datetime,
        account: str | None = None,
        model: str | None = None,
        by: str = "day",
    ) -> list[UsageRow]: ...

    def totals(self, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
        """Per account: (requests, rows) of the calls that were counted (status below 400)."""
        ...
