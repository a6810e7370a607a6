"""`mlgate plans ...`, `mlgate consumers subscribe`, `mlgate usage`: plans, subscriptions and
metered usage, on the local home."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mlgate.cli.context import console, errors, services
from mlgate.errors import InvalidInput
from mlgate.plans import service
from mlgate.plans.model import LIMITS, Plan

if TYPE_CHECKING:
    from mlgate.bootstrap import Services

app = typer.Typer(help="Subscription plans: rate limits, quotas, prices.", no_args_is_help=True)


def with_limit_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` an option per plan limit (plans/model.py LIMITS: --per-minute, ...,
    --max-rows), handed to it together as `limits` (only those given)."""
    signature = inspect.signature(command, eval_str=True)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("limits")
    options = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[int | None, typer.Option(f.option, min=1, help=f.label)],
        )
        for f in LIMITS
    ]

    @functools.wraps(command)
    def with_limits(*args: Any, **kwargs: Any) -> None:
        given = {f.name: kwargs.pop(f.name) for f in LIMITS}
        command(*args, limits={k: v for k, v in given.items() if v is not None}, **kwargs)

    shown = params[:at] + options + params[at + 1 :]  # in --help, right after the arguments
    with_limits.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return with_limits


def _settings(
    limits: dict[str, int],
    model: list[str] | None,
    overage: bool | None,
    price_per_1k_rows: str | None,
    price_per_1k_overage_rows: str | None,
    description: str | None,
    explain: bool | None = None,
    price_per_1k_explained_rows: str | None = None,
    thresholds: str | None = None,
    max_batch_bytes: int | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "max_batch_bytes": max_batch_bytes,
        "thresholds": None if thresholds is None else [t for t in thresholds.split(",") if t],
        "models": model,
        "overage": overage,
        "explain": explain,
        "price_per_1k_explained_rows": price_per_1k_explained_rows,
        "price_per_1k_rows": price_per_1k_rows,
        "price_per_1k_overage_rows": price_per_1k_overage_rows,
        "description": description,
    }
    return {**limits, **{k: v for k, v in values.items() if v is not None}}


@app.command("create")
@with_limit_options
def create(
    ctx: typer.Context,
    name: str,
    limits: dict[str, int],
    model: Annotated[
        list[str] | None, typer.Option(help="Allow only MODEL\\[@ALIAS|@VERSION]; repeatable.")
    ] = None,
    overage: Annotated[
        bool, typer.Option("--overage/--hard", help="Past a quota: serve and meter, or refuse.")
    ] = False,
    price_per_1k_rows: Annotated[str | None, typer.Option(help="For the billing export.")] = None,
    price_per_1k_overage_rows: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str, typer.Option()] = "",
    explain: Annotated[
        bool,
        typer.Option("--explain/--no-explain", help="May consumers ask for explanations."),
    ] = False,
    price_per_1k_explained_rows: Annotated[
        str | None, typer.Option(help="Explained rows, on top of their rows' price.")
    ] = None,
    thresholds: Annotated[
        str | None,
        typer.Option(help="Percents of each quota announced by webhook, e.g. 50,80,100."),
    ] = None,
    max_batch_bytes: Annotated[
        int | None, typer.Option(min=1, help="The largest batch file a consumer may upload.")
    ] = None,
) -> None:
    """Create a plan. Limits are per consumer; rate limits (per second/minute/hour) are always
    hard, quotas (per day/month, in requests or rows) hard unless --overage."""
    s = services(ctx)
    settings = _settings(
        limits, model, overage, price_per_1k_rows, price_per_1k_overage_rows, description, explain,
        price_per_1k_explained_rows, thresholds, max_batch_bytes,
    )  # fmt: skip
    plan = s.plans.create_plan(service.make_plan(name, s.clock(), **settings), by=None)
    _show(plan)
    console.print(f"Next: `mlgate consumers subscribe CONSUMER {name}` puts a consumer on it.")


@app.command("update")
@with_limit_options
def update(
    ctx: typer.Context,
    name: str,
    limits: dict[str, int],
    model: Annotated[list[str] | None, typer.Option()] = None,
    overage: Annotated[bool | None, typer.Option("--overage/--hard")] = None,
    price_per_1k_rows: Annotated[str | None, typer.Option()] = None,
    price_per_1k_overage_rows: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    explain: Annotated[bool | None, typer.Option("--explain/--no-explain")] = None,
    price_per_1k_explained_rows: Annotated[str | None, typer.Option()] = None,
    thresholds: Annotated[str | None, typer.Option()] = None,
    max_batch_bytes: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Change a plan; every subscriber is on the new terms within a second."""
    s = services(ctx)
    changes = _settings(
        limits, model, overage, price_per_1k_rows, price_per_1k_overage_rows, description, explain,
        price_per_1k_explained_rows, thresholds, max_batch_bytes,
    )  # fmt: skip
    plan = s.plans.update_plan(name, by=None, **changes)
    _show(plan)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List plans."""
    plans = services(ctx).plans.plans()
    if not plans:
        console.print(
            "No plans yet. Create one with `mlgate plans create NAME --requests-per-month 1000`."
        )
        return
    table = Table("name", "limits", "quotas", "max rows", "past quota", "price / 1k rows")
    for p in plans:
        limits = ", ".join(
            f"{x.limit} {x.name}" for x in p.limits() if x.window in ("second", "minute", "hour")
        )
        quotas = ", ".join(
            f"{x.limit} {x.name}" for x in p.limits() if x.window in ("day", "month")
        )
        table.add_row(
            p.name, limits, quotas, str(p.max_rows_per_request or ""),
            "overage" if p.overage else "refused", str(p.price_per_1k_rows or ""),
        )  # fmt: skip
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """A plan's settings and its subscribers."""
    s = services(ctx)
    _show(s.plans.plan(name))
    now = s.clock()
    subscribers = [x for x in s.plans.subscriptions_of() if x.plan == name and x.active(now)]
    console.print(f"subscribers: {', '.join(x.consumer for x in subscribers) or 'none'}")


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a plan nobody subscribes to."""
    s = services(ctx)
    s.plans.delete_plan(name, by=None)
    console.print(f"Deleted plan {name}")


def subscribe(
    ctx: typer.Context,
    consumer: str,
    plan: str,
    pin: Annotated[
        list[str] | None, typer.Option(help="MODEL=VERSION: hold the consumer to a version.")
    ] = None,
    starts: Annotated[datetime | None, typer.Option(help="Default: now (UTC).")] = None,
    ends: Annotated[datetime | None, typer.Option(help="Default: open-ended.")] = None,
) -> None:
    """Put a consumer on a plan; the plan it had ends where this one starts."""
    s = services(ctx)
    pins: dict[str, int] = {}
    for item in pin or ():
        model, _, version = item.partition("=")
        if not version.isdecimal():
            raise InvalidInput(f"--pin {item!r}: write MODEL=VERSION, e.g. churn=3")
        pins[model] = int(version)
    made = s.plans.subscribe(
        by=None, consumer=consumer, plan=plan, starts_at=_utc(starts), ends_at=_utc(ends), pins=pins
    )
    pinned = f", pinned to {', '.join(f'{m}@{v}' for m, v in pins.items())}" if pins else ""
    console.print(f"{consumer} is on {made.plan} from {made.starts_at:%Y-%m-%d %H:%M} UTC{pinned}")
    from mlgate.cli.access import next_steps

    console.print(next_steps(s, consumer))


@app.command("spend-cap")
def spend_cap(
    ctx: typer.Context,
    consumer: Annotated[str, typer.Argument(help="The consumer.")],
    cap: Annotated[str, typer.Argument(help="The monthly cap, e.g. 25.00; `none` removes it.")],
) -> None:
    """Set a consumer's monthly spend cap: past it, its calls are refused with 402 until the
    cap is raised or the month ends."""
    s = services(ctx)
    value = None if cap.lower() == "none" else cap
    s.plans.set_spend_cap(by=None, consumer=consumer, cap=value)
    spend = s.plans.spend_of(consumer)
    shown = "none" if spend.cap is None else f"{spend.cap:.2f}"
    console.print(
        f"{consumer}: cap {shown}; spent {spend.spent:.2f} in {spend.month}, "
        f"{spend.projected:.2f} projected by its end"
    )


usage_app = typer.Typer(help="Metered usage, bills, and usage pushed to billing.")


@usage_app.callback(invoke_without_command=True)
def usage(
    ctx: typer.Context,
    consumer: Annotated[str | None, typer.Option(help="One consumer (default: everyone).")] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month).")] = None,
    model: Annotated[str | None, typer.Option(help="One model.")] = None,
    by: Annotated[str, typer.Option(help="hour, day or month.")] = "day",
    csv: Annotated[
        Path | None, typer.Option(help="Write the consumer's bill for the month to this CSV file.")
    ] = None,
) -> None:
    """Metered usage: requests, rows, overage rows, errors and latency, per period and model."""
    if ctx.invoked_subcommand is not None:
        return
    s = services(ctx)
    month = month or s.clock().strftime("%Y-%m")
    if csv is not None:
        if consumer is None:
            raise InvalidInput("a bill is per consumer: add --consumer NAME")
        csv.write_text(s.plans.bill_csv(by=None, consumer=consumer, month=month))
        console.print(f"Wrote the {month} bill of {consumer} to {csv}")
        return
    rows = s.plans.usage(by=None, month=month, consumer=consumer, model=model, group=by)
    if not rows:
        console.print(f"No metered calls in {month}.")
        return
    table = Table(
        "period", "account", "model", "v", "status", "requests", "rows", "overage", "avg ms"
    )
    for r in rows:
        table.add_row(
            r.period, r.account, r.model, str(r.version), str(r.status), str(r.requests),
            str(r.rows), str(r.overage_rows), f"{r.latency_ms / max(1, r.requests):.1f}",
        )  # fmt: skip
    console.print(table)


NO_SINK = "no usage sink: set MLGATE_USAGE_EXPORT_URL (and its token)"


def _say_unbilled(s: Services) -> bool:
    """Warn of consumers a Stripe export sends nothing for; True when there are some."""
    if s.settings.usage_export_format != "stripe":
        return False
    lacking = s.plans.unbilled()
    if lacking:
        errors.print(
            f"{len(lacking)} consumer(s) on a plan have no billing id, so Stripe gets nothing "
            f"of theirs: {', '.join(lacking[:10])}{' …' if len(lacking) > 10 else ''}; "
            "`mlgate consumers update NAME --billing-id cus_…`, then "
            "`mlgate usage export --replay`"
        )
    return bool(lacking)


@usage_app.command("export")
def export(
    ctx: typer.Context,
    replay: Annotated[
        bool, typer.Option(help="Send the events the sink refused (the dead letters) again.")
    ] = False,
) -> None:
    """Push closed hours of usage to MLGATE_USAGE_EXPORT_URL now (CloudEvents, or Stripe's meter
    events): what `mlgate serve` does every MLGATE_USAGE_EXPORT_INTERVAL seconds."""
    s = services(ctx)
    if replay:
        replayed = s.plans.replay_usage()
        if replayed is None:
            raise InvalidInput(NO_SINK)
        console.print(f"replayed {replayed[0]} dead letters; {replayed[1]} still pending")
        return
    result = s.plans.export_usage()
    if result is None:
        raise InvalidInput(NO_SINK)
    through = "nothing yet" if result.through is None else f"{result.through:%Y-%m-%d %H:00} UTC"
    console.print(f"sent {result.sent} events, {result.dead} dead-lettered; done up to {through}")
    _say_unbilled(s)
    if result.error:
        errors.print(f"the sink failed: {result.error}; next try after {result.waiting_until}")
        raise typer.Exit(1)


def _show(plan: Plan) -> None:
    console.print(
        f"plan [bold]{plan.name}[/]{' - ' + plan.description if plan.description else ''}"
    )
    for limit in plan.limits():
        kind = "hard" if limit.hard else "overage metered"
        console.print(f"  {limit.limit:>12,} {limit.name} ({kind})")
    if plan.max_rows_per_request:
        console.print(f"  {plan.max_rows_per_request:>12,} rows per request at most")
    if plan.models:
        console.print(f"  models: {', '.join(str(t) for t in plan.models)}")
    if plan.price_per_1k_rows is not None:
        console.print(f"  price per 1,000 rows: {plan.price_per_1k_rows}")
    if plan.price_per_1k_overage_rows is not None:
        console.print(f"  price per 1,000 overage rows: {plan.price_per_1k_overage_rows}")
    console.print(f"  explanations: {'included' if plan.explain else 'not included'}")
    if plan.price_per_1k_explained_rows is not None:
        console.print(f"  price per 1,000 explained rows: {plan.price_per_1k_explained_rows}")


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)
