"""Plan and subscription use cases, usage queries and the billing export."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from mlgate.access.audit import audited
from mlgate.access.model import Principal, Target
from mlgate.access.policy import authorize_global
from mlgate.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from mlgate.outbound.client import Outbound
from mlgate.plans.model import LIMIT_FIELDS, MAX_SPEND_CAP, NANOS, Plan, Subscription, UsageRow
from mlgate.registry.model import check_name
from mlgate.uow import UnitOfWork

# Counts stay exact as 64-bit integers in the database and as doubles in Redis's Lua (2**53).
MAX_LIMIT = 10**15


PRICES = ("price_per_1k_rows", "price_per_1k_overage_rows", "price_per_1k_explained_rows")


def make_plan(name: str, now: datetime, **settings: Any) -> Plan:
    """A validated plan: every limit a positive whole number or absent, prices non-negative."""
    check_name("plan", name)
    problems = []
    values: dict[str, Any] = {}
    for field in LIMIT_FIELDS:
        value = settings.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
            problems.append(
                FieldError(field, f"must be a whole number from 1 to 10**15, got {value!r}")
            )
        values[field] = value
    for field in PRICES:
        value = settings.get(field)
        if value is None:
            continue
        try:
            price = Decimal(str(value))
        except InvalidOperation:
            problems.append(FieldError(field, f"must be a number, got {value!r}"))
            continue
        if not price.is_finite() or price < 0:
            problems.append(FieldError(field, f"must be zero or more, got {value}"))
        values[field] = price
    models = []
    for ref in settings.get("models") or ():
        target = Target.parse(str(ref))
        try:
            check_name("model", target.model)
        except InvalidInput as exc:
            problems.append(FieldError("models", str(exc)))
        models.append(target)
    size = settings.get("max_batch_bytes")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            problems.append(FieldError("max_batch_bytes", f"must be a positive size, got {size!r}"))
        values["max_batch_bytes"] = size
    thresholds = settings.get("thresholds")
    if thresholds is not None:
        try:
            values["thresholds"] = tuple(sorted({int(t) for t in thresholds}))
        except (TypeError, ValueError):
            values["thresholds"] = ()
            problems.append(FieldError("thresholds", f"must be whole percents, got {thresholds}"))
        if not all(1 <= t <= 100 for t in values["thresholds"]) or len(values["thresholds"]) > 5:
            problems.append(
                FieldError("thresholds", f"at most 5 percents from 1 to 100, got {thresholds}")
            )
    if problems:
        raise InvalidInput(
            f"the plan {name!r} has invalid settings: "
            + "; ".join(f"{p.field} {p.message}" for p in problems),
            errors=problems,
        )
    return Plan(
        name=name,
        created_at=now,
        models=tuple(models),
        overage=bool(settings.get("overage", False)),
        description=str(settings.get("description") or "")[:1000],
        explain=bool(settings.get("explain", False)),
        **values,
    )


@audited("plans.create_plan", lambda a: str(a["plan"].name))
def create_plan(uow: UnitOfWork, plan: Plan, *, by: Principal | None) -> Plan:
    _admin(by)
    with uow:
        uow.plans.add(plan)
        uow.commit()
    return plan


@audited("plans.update_plan", "name")
def update_plan(uow: UnitOfWork, name: str, *, by: Principal | None, **changes: Any) -> Plan:
    """Change a plan's settings; every subscriber is on the new terms from the next call."""
    _admin(by)
    with uow:
        current = uow.plans.get(name)
        if current is None:
            raise NotFound(f"no plan named {name!r}; `mlgate plans list` shows them")
        merged = {f: getattr(current, f) for f in LIMIT_FIELDS}
        merged |= {
            "models": [str(t) for t in current.models],
            "overage": current.overage,
            "price_per_1k_rows": current.price_per_1k_rows,
            "price_per_1k_overage_rows": current.price_per_1k_overage_rows,
            "price_per_1k_explained_rows": current.price_per_1k_explained_rows,
            "description": current.description,
            "explain": current.explain,
            "thresholds": list(current.thresholds),
            "max_batch_bytes": current.max_batch_bytes,
        }
        merged |= changes
        plan = make_plan(name, current.created_at, **merged)
        uow.plans.save(plan)
        uow.commit()
    return plan


def list_plans(uow: UnitOfWork) -> list[Plan]:
    with uow:
        return uow.plans.all()


def get_plan(uow: UnitOfWork, name: str) -> Plan:
    with uow:
        plan = uow.plans.get(name)
    if plan is None:
        raise NotFound(f"no plan named {name!r}; `mlgate plans list` shows them")
    return plan


@audited("plans.delete_plan", "name")
def delete_plan(uow: UnitOfWork, name: str, *, by: Principal | None, now: datetime) -> None:
    _admin(by)
    with uow:
        if uow.plans.get(name) is None:
            raise NotFound(f"no plan named {name!r}")
        active = [s.consumer for s in uow.plans.subscriptions() if s.plan == name and s.active(now)]
        if active:
            raise Conflict(f"{', '.join(sorted(active))} subscribe to {name!r}; move them first")
        uow.plans.remove(name)
        uow.commit()


@audited("plans.subscribe", "{consumer} to {plan}")
def subscribe(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    consumer: str,
    plan: str,
    now: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    pins: dict[str, int] | None = None,
) -> Subscription:
    """Put a consumer on a plan from `starts_at` (default: now). A subscription that would
    overlap ends where the new one starts, so a change of plan takes effect at once."""
    _admin(by)
    start = starts_at or now
    if ends_at is not None and ends_at <= start:
        raise InvalidInput("a subscription must end after it starts")
    for model, version in (pins or {}).items():
        check_name("model", model)
        if not isinstance(version, int) or version < 1:
            raise InvalidInput(f"pin {model}={version!r}: a version is a number from 1")
    with uow:
        if uow.consumers.get(consumer) is None:
            raise NotFound(f"no consumer named {consumer!r}; `mlgate consumers create` makes one")
        if uow.plans.get(plan) is None:
            raise NotFound(f"no plan named {plan!r}; `mlgate plans list` shows them")
        for model, version in (pins or {}).items():
            if uow.models.get_version(model, version) is None:
                raise NotFound(f"cannot pin {model}@{version}: no such version")
        for current in uow.plans.subscriptions(consumer):
            if current.ends_at is None or current.ends_at > start:
                uow.plans.end_subscription(current.id, max(start, current.starts_at))
        made = uow.plans.add_subscription(
            Subscription(
                id=0,
                consumer=consumer,
                plan=plan,
                starts_at=start,
                created_at=now,
                ends_at=ends_at,
                pins=dict(pins or {}),
            )
        )
        uow.commit()
    return made


def subscriptions_of(uow: UnitOfWork, consumer: str | None = None) -> list[Subscription]:
    with uow:
        return uow.plans.subscriptions(consumer)


def active_subscription(
    uow: UnitOfWork, consumer: str, now: datetime
) -> tuple[Subscription, Plan] | None:
    with uow:
        for subscription in reversed(uow.plans.subscriptions(consumer)):
            if subscription.active(now):
                plan = uow.plans.get(subscription.plan)
                return (subscription, plan) if plan else None
    return None


def unbilled(uow: UnitOfWork, now: datetime) -> list[str]:
    """The consumers on a plan today without a billing id: a Stripe export sends them nothing
    (plans/sinks.py) until `mlgate consumers update NAME --billing-id cus_…`."""
    with uow:
        lacking = {c.name for c in uow.consumers.all() if not c.billing_id}
        subscribed = {s.consumer for s in uow.plans.subscriptions() if s.active(now)}
    return sorted(lacking & subscribed)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-11' -> the first instants of November and December 2026, UTC."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"a month is written YYYY-MM, e.g. 2026-11; got {month!r}") from None
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def usage(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    month: str,
    consumer: str | None = None,
    model: str | None = None,
    group: str = "day",
) -> list[UsageRow]:
    """Usage in a month: admins see everyone's; a consumer sees its own."""
    if consumer is not None:
        check_name("consumer", consumer)
    if by is not None and not by.is_admin:
        if by.kind != "consumer" or (consumer is not None and consumer != by.name):
            raise PermissionDenied("only admins see other accounts' usage", code="admin_only")
        consumer = by.name
    if group not in ("hour", "day", "month"):
        raise InvalidInput("group usage by hour, day or month")
    since, until = month_bounds(month)
    with uow:
        return uow.usage.query(
            since=since,
            until=until,
            account=None if consumer is None else f"consumer:{consumer}",
            model=model,
            by=group,
        )


def daily_calls(
    uow: UnitOfWork,
    *,
    days: int,
    now: datetime,
    models: Sequence[str] | None = None,
    consumer: str | None = None,
) -> tuple[list[str], dict[str, dict[str, tuple[int, int]]]]:
    """The last `days` days (oldest first, `YYYY-MM-DD`) and, per model, the counted calls
    (requests, rows) on each day that had any. The caller decides who may see which models."""
    until = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    since = until - timedelta(days=days)
    labels = [(since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    with uow:
        rows = uow.usage.query(
            since=since,
            until=until,
            account=None if consumer is None else f"consumer:{consumer}",
            by="day",
        )
    wanted = None if models is None else set(models)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        if r.status >= 400 or (wanted is not None and r.model not in wanted):
            continue
        day = out.setdefault(r.model, {})
        requests, n_rows = day.get(r.period[:10], (0, 0))
        day[r.period[:10]] = (requests + r.requests, n_rows + r.rows)
    return labels, out


USAGE_COLUMNS = (
    "day", "account", "key_prefix", "model", "version", "status", "requests", "rows",
    "overage_rows", "latency_ms", "explained_rows",
)  # fmt: skip


def usage_csv(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    month: str,
    consumer: str | None = None,
    model: str | None = None,
) -> str:
    """Every day's usage in the month, one line per account, key, model version and status:
    the ledger as a spreadsheet takes it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    for r in usage(uow, by=by, month=month, consumer=consumer, model=model, group="day"):
        writer.writerow(
            [r.period, r.account, r.key_prefix, r.model, r.version, r.status, r.requests,
             r.rows, r.overage_rows, r.latency_ms, r.explained_rows]
        )  # fmt: skip
    return out.getvalue()


BILL_COLUMNS = (
    "consumer", "month", "plan", "model", "version", "requests", "rows", "overage_rows",
    "explained_rows", "price_per_1k_rows", "price_per_1k_overage_rows",
    "price_per_1k_explained_rows", "amount",
)  # fmt: skip


def bill_csv(uow: UnitOfWork, *, by: Principal | None, consumer: str, month: str) -> str:
    """One line per model version the consumer called in the month (counted calls only):
    rows, overage rows, explained rows, and the amount at the prices of the plan in force at the
    month's end (explained rows cost their own price on top of the rows' price)."""
    rows = usage(uow, by=by, month=month, consumer=consumer, group="month")
    _, until = month_bounds(month)
    with uow:
        subs = [s for s in uow.plans.subscriptions(consumer) if s.starts_at < until]
        plan = uow.plans.get(subs[-1].plan) if subs else None
    price = plan.price_per_1k_rows if plan and plan.price_per_1k_rows is not None else Decimal(0)
    over = (
        plan.price_per_1k_overage_rows
        if plan and plan.price_per_1k_overage_rows is not None
        else price
    )
    explain = (
        plan.price_per_1k_explained_rows
        if plan and plan.price_per_1k_explained_rows is not None
        else Decimal(0)
    )
    totals: dict[tuple[str, int], list[int]] = {}
    for r in rows:
        if r.status >= 400:
            continue
        into = totals.setdefault((r.model, r.version), [0, 0, 0, 0])
        into[0] += r.requests
        into[1] += r.rows
        into[2] += r.overage_rows
        into[3] += r.explained_rows
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BILL_COLUMNS)
    for (model, version), (requests, n_rows, overage, explained) in sorted(totals.items()):
        amount = (
            Decimal(n_rows - overage) * price + Decimal(overage) * over
            + Decimal(explained) * explain
        ) / 1000  # fmt: skip
        writer.writerow(
            [
                consumer, month, plan.name if plan else "", model, version, requests, n_rows,
                overage, explained, price, over, explain, amount.quantize(Decimal("0.01")),
            ]
        )  # fmt: skip
    return out.getvalue()


@audited("plans.set_spend_cap", "consumer")
def set_spend_cap(
    uow: UnitOfWork, *, by: Principal | None, consumer: str, cap: Any, now: datetime
) -> Decimal | None:
    """Set a consumer's monthly spend cap (None removes it): an admin, or the consumer itself.
    Calls past it are refused with 402 until it is raised or the month ends."""
    check_name("consumer", consumer)
    if by is not None and not by.is_admin and not (by.kind == "consumer" and by.name == consumer):
        raise PermissionDenied("only admins and the consumer itself set its spend cap",
                               code="admin_only")  # fmt: skip
    value: Decimal | None = None
    if cap is not None:
        try:
            value = Decimal(str(cap))
        except InvalidOperation:
            raise InvalidInput(f"a spend cap is an amount such as 25.00, not {cap!r}") from None
        if not value.is_finite() or value < 0 or value > MAX_SPEND_CAP:
            raise InvalidInput(f"a spend cap lies between 0 and {MAX_SPEND_CAP:,}; got {cap}")
        if value != value.quantize(Decimal("0.01")):
            raise InvalidInput(f"a spend cap is in whole cents, e.g. 25.00; got {cap}")
    with uow:
        if uow.consumers.get(consumer) is None:
            raise NotFound(f"no consumer named {consumer!r}")
        uow.plans.set_spend_cap(consumer, value, by=by.actor if by else "cli", at=now)
        uow.commit()
    return value


@audited("plans.set_webhook", "consumer")
def set_consumer_webhook(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    consumer: str,
    url: str | None,
    own: set[str],
    now: datetime,
    outbound: Outbound | None = None,
) -> str | None:
    """Where a consumer is told of quota thresholds (None removes it): an http(s) URL whose
    host resolves to public addresses only, or to receivers the operator allowed (`outbound`'s
    allow-list; without it, public only), and that is not this server (`own`: its host:port as
    the request named it). Returns the new signing secret (shown once; each change makes a new
    one). Raises AddressRefused (422) naming the rule a URL breaks."""
    import secrets

    from mlgate.errors import AddressRefused

    check_name("consumer", consumer)
    if by is not None and not by.is_admin and not (by.kind == "consumer" and by.name == consumer):
        raise PermissionDenied("only admins and the consumer itself set its webhook",
                               code="admin_only")  # fmt: skip
    secret = None
    if url is not None:
        target = (outbound or Outbound()).check(url, what="a webhook")
        shown = f"[{target.host}]" if ":" in target.host else target.host
        if f"{shown}:{target.port}" in own or f"{target.host}:{target.port}" in own:
            raise AddressRefused(f"{url[:80]!r} points at this server; give your own endpoint")
        secret = secrets.token_urlsafe(32)
    with uow:
        if uow.consumers.get(consumer) is None:
            raise NotFound(f"no consumer named {consumer!r}")
        uow.plans.set_consumer_webhook(consumer, url, secret or "", now)
        uow.commit()
    return secret


def crossings_of(uow: UnitOfWork, consumer: str, now: datetime) -> list[dict[str, Any]]:
    """This month's threshold crossings of a consumer, newest first, as the webhook said them."""
    from mlgate.plans.thresholds import describe

    start, _ = month_bounds(now.strftime("%Y-%m"))
    with uow:
        found = uow.plans.crossings(consumer, start)
    return [describe(c) for c in reversed(found)]


@dataclass(frozen=True)
class Spend:
    """A consumer's spend this month at its plan's prices, from the ledger."""

    consumer: str
    month: str
    plan: str | None
    spent: Decimal
    cap: Decimal | None
    projected: Decimal  # at this month's pace so far, by its end

    def to_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "month": self.month,
            "plan": self.plan,
            "spent": f"{self.spent:.6f}",
            "cap": None if self.cap is None else f"{self.cap:.2f}",
            "projected": f"{self.projected:.2f}",
        }


def spend_of(uow: UnitOfWork, consumer: str, now: datetime) -> Spend:
    """Spend so far this month (what the spend cap counts) and the month-end projection."""
    month = now.strftime("%Y-%m")
    start, end = month_bounds(month)
    found = active_subscription(uow, consumer, now)
    plan = found[1] if found else None
    with uow:
        rows = uow.usage.query(since=start, until=end, account=f"consumer:{consumer}", by="month")
        cap = uow.plans.spend_cap(consumer)
    nanos = spend_nanos(rows, plan) if plan is not None else 0
    spent = Decimal(nanos) / NANOS
    elapsed = (now - start).total_seconds() / (end - start).total_seconds()
    projected = spent / Decimal(str(max(elapsed, 1e-6)))
    return Spend(consumer, month, plan.name if plan else None, spent, cap, projected)


def spend_nanos(rows: Sequence[UsageRow], plan: Plan) -> int:
    """The ledger's counted calls at the plan's rates, in nanos: what the spend counter adds."""
    row, extra, per_explained = plan.rates()
    return sum(
        r.rows * row + r.overage_rows * extra + r.explained_rows * per_explained
        for r in rows
        if r.status < 400
    )


def _admin(by: Principal | None) -> None:
    if by is not None:
        authorize_global(by, "admin")
