"""Plans, subscriptions, usage and billing as the edges call them: bound once at the
composition root (bootstrap.Services.plans) with the unit of work, the clock and the outbound
client, so an edge passes only the request's data and who asks (`by`).

Each method delegates to the use case in service.py, which records its own audit event;
nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mlgate.access.model import Principal
from mlgate.plans import service
from mlgate.plans.model import Plan, Subscription, UsageRow
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    from mlgate.outbound.client import Outbound
    from mlgate.plans.exporter import ExportResult


@dataclass(frozen=True)
class Plans:
    """Plans and what consumers used of them, with this process's adapters bound."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    outbound: Callable[[], Outbound]
    # the billing sink the settings name (plans/sinks.py), made for each pass; None: no sink
    usage_sink: Callable[[], Any] = lambda: None

    # -- usage pushed to billing --------------------------------------------------------------

    def export_usage(self) -> ExportResult | None:
        """One pass of closed hours to the billing sink (plans/exporter.py); None without one."""
        from mlgate.plans.exporter import export_usage

        sink = self.usage_sink()
        if sink is None:
            return None
        try:
            return export_usage(self.uow(), sink, now=self.clock())
        finally:
            sink.close()

    def replay_usage(self) -> tuple[int, int] | None:
        """Send the sink's dead letters again: (sent, still pending); None without a sink."""
        from mlgate.plans.exporter import replay_dead_letters

        sink = self.usage_sink()
        if sink is None:
            return None
        try:
            return replay_dead_letters(self.uow(), sink, now=self.clock())
        finally:
            sink.close()

    # -- plans and subscriptions ----------------------------------------------------------

    def create_plan(self, plan: Plan, *, by: Principal | None) -> Plan:
        return service.create_plan(self.uow(), plan, by=by)

    def update_plan(self, name: str, *, by: Principal | None, **changes: Any) -> Plan:
        return service.update_plan(self.uow(), name, by=by, **changes)

    def plans(self) -> list[Plan]:
        return service.list_plans(self.uow())

    def plan(self, name: str) -> Plan:
        return service.get_plan(self.uow(), name)

    def delete_plan(self, name: str, *, by: Principal | None) -> None:
        service.delete_plan(self.uow(), name, by=by, now=self.clock())

    def subscribe(
        self,
        *,
        by: Principal | None,
        consumer: str,
        plan: str,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        pins: dict[str, int] | None = None,
    ) -> Subscription:
        return service.subscribe(
            self.uow(), by=by, consumer=consumer, plan=plan, now=self.clock(),
            starts_at=starts_at, ends_at=ends_at, pins=pins,
        )  # fmt: skip

    def subscriptions_of(self, consumer: str | None = None) -> list[Subscription]:
        return service.subscriptions_of(self.uow(), consumer)

    def active_subscription(
        self, consumer: str, at: datetime | None = None
    ) -> tuple[Subscription, Plan] | None:
        """The consumer's subscription in force `at` (default: now), and its plan."""
        return service.active_subscription(self.uow(), consumer, at or self.clock())

    def unbilled(self) -> list[str]:
        """Consumers on a plan now with no billing id: never exported to Stripe."""
        return service.unbilled(self.uow(), self.clock())

    # -- usage, spend and billing -----------------------------------------------------------

    def usage(
        self,
        *,
        by: Principal | None,
        month: str,
        consumer: str | None = None,
        model: str | None = None,
        group: str = "day",
    ) -> list[UsageRow]:
        return service.usage(self.uow(), by=by, month=month, consumer=consumer, model=model,
                             group=group)  # fmt: skip

    def daily_calls(
        self, *, days: int, models: Sequence[str] | None = None, consumer: str | None = None
    ) -> tuple[list[str], dict[str, dict[str, tuple[int, int]]]]:
        """Calls and rows per model per day, the last `days` days up to now."""
        return service.daily_calls(self.uow(), days=days, now=self.clock(), models=models,
                                   consumer=consumer)  # fmt: skip

    def usage_csv(
        self,
        *,
        by: Principal | None,
        month: str,
        consumer: str | None = None,
        model: str | None = None,
    ) -> str:
        return service.usage_csv(self.uow(), by=by, month=month, consumer=consumer, model=model)

    def bill_csv(self, *, by: Principal | None, consumer: str, month: str) -> str:
        return service.bill_csv(self.uow(), by=by, consumer=consumer, month=month)

    def set_spend_cap(self, *, by: Principal | None, consumer: str, cap: Any) -> Decimal | None:
        return service.set_spend_cap(self.uow(), by=by, consumer=consumer, cap=cap,
                                     now=self.clock())  # fmt: skip

    def set_consumer_webhook(
        self, *, by: Principal | None, consumer: str, url: str | None, own: set[str]
    ) -> str | None:
        return service.set_consumer_webhook(
            self.uow(), by=by, consumer=consumer, url=url, own=own, now=self.clock(),
            outbound=self.outbound(),
        )  # fmt: skip

    def crossings_of(self, consumer: str) -> list[dict[str, Any]]:
        return service.crossings_of(self.uow(), consumer, self.clock())

    def spend_of(self, consumer: str) -> service.Spend:
        return service.spend_of(self.uow(), consumer, self.clock())
