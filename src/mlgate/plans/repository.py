"""The plans storage seams; db/ implements them over SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from mlgate.plans.model import (
    Aggregates,
    Crossing,
    DeadLetter,
    ExportCursor,
    Plan,
    Subscription,
    UsageRow,
    UsageTrace,
)


class PlanRepository(Protocol):
    def add(self, plan: Plan) -> None: ...

    def get(self, name: str) -> Plan | None: ...

    def all(self) -> list[Plan]: ...

    def save(self, plan: Plan) -> None: ...

    def remove(self, name: str) -> None: ...

    def add_subscription(self, subscription: Subscription) -> Subscription: ...

    def subscriptions(self, consumer: str | None = None) -> list[Subscription]: ...

    def end_subscription(self, subscription_id: int, at: datetime) -> None: ...

    def spend_cap(self, consumer: str) -> Decimal | None: ...

    def set_spend_cap(self, consumer: str, cap: Decimal | None, *, by: str, at: datetime) -> None:
        """Set (or, with None, remove) a consumer's monthly spend cap."""
        ...

    def add_crossing(self, crossing: Crossing) -> bool:
        """Record a threshold crossing once: False if that threshold of that window was
        recorded before (by any process)."""
        ...

    def crossings(self, consumer: str, since: datetime) -> list[Crossing]: ...

    def consumer_webhook(self, consumer: str) -> tuple[str, str] | None:
        """(url, signing secret)."""
        ...

    def set_consumer_webhook(
        self, consumer: str, url: str | None, secret: str, at: datetime
    ) -> None: ...


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

    def add_traces(self, traces: Sequence[UsageTrace]) -> None:
        """File traced calls' ids beside the ledger; `query` names up to TRACES_PER_ROW of
        them on each row they fall in."""
        ...


class UsageExportRepository(Protocol):
    def cursor(self, sink: str) -> ExportCursor | None: ...

    def save_cursor(self, cursor: ExportCursor, *, expected: datetime | None) -> bool:
        """Write `cursor` if the stored one is still at `expected` (or absent, for None):
        False when another process moved it first."""
        ...

    def add_dead_letters(
        self, sink: str, letters: list[tuple[str, dict[str, Any], str]], at: datetime
    ) -> None:
        """(event id, event, error) each, once per sink and event id."""
        ...

    def dead_letters(self, sink: str, *, pending: bool = True) -> list[DeadLetter]: ...

    def mark_replayed(self, ids: list[int], at: datetime) -> None: ...
