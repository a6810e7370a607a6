"""`mlgate monitor MODEL` (drift, live accuracy, state) and `mlgate monitor-config MODEL`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mlgate.cli.context import console, services
from mlgate.retention.model import SHORTER_THAN_SIX_MONTHS, SIX_MONTHS, parse_retention


def monitor(
    ctx: typer.Context,
    model: str,
    by: Annotated[str, typer.Option(help="Windows per day, version or consumer")] = "day",
    days: Annotated[int, typer.Option(min=1, max=365, help="How far back")] = 7,
    version: Annotated[int | None, typer.Option(min=1, help="Only this version")] = None,
    consumer: Annotated[str | None, typer.Option(help="Only this account (consumer:acme)")] = None,
    check: Annotated[bool, typer.Option("--check", help="Judge the model now (alerts)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
) -> None:
    """Drift of every feature (PSI and a two-sample test against the version's training rows),
    drift of the predictions, and accuracy or RMSE from feedback, per window."""
    s = services(ctx)
    report = s.monitor.report(model, by=by, days=days, version=version, account=consumer)  # type: ignore[arg-type]
    if check:
        result = s.monitor.check(model)
        report["state"] = result.state
        report["check"] = result.details
    if as_json:
        console.print_json(json.dumps(report, default=str))
        return
    settings = report["settings"]
    console.print(
        f"[bold]{model}[/bold]: logging {settings['sample_rate']:.0%} of requests; a feature "
        f"drifts at PSI ≥ {settings['psi_threshold']} with p < {settings['p_threshold']}"
        + (f"; state [bold]{report['state']}[/bold]" if report.get("state") else "")
    )
    if not report["windows"]:
        console.print(f"Nothing logged in the last {days} day(s).")
        return
    for window in report["windows"]:
        _print_window(window, by)


def _print_window(window: dict[str, Any], by: str) -> None:
    label = f"version {window['version']}" + ("" if by == "version" else f", {window['key']}")
    quality = ""
    if window.get("accuracy") is not None:
        quality = f", accuracy {window['accuracy']:.4f} on {window['labelled']:,} labels"
    elif window.get("rmse") is not None:
        quality = f", RMSE {window['rmse']:.4g} on {window['labelled']:,} labels"
    console.print(
        f"\n[bold]{label}[/bold]: {window['rows']:,} rows in {window['requests']:,} requests"
        f"{quality}: {window['verdict']}"
    )
    if not window["features"]:
        return
    table = Table("feature", "PSI", "test", "p-value", "drift", box=None)
    rows = sorted(window["features"].items(), key=lambda kv: -kv[1]["psi"])
    if window["prediction"]:
        rows.append(("(predictions)", window["prediction"]))
    for name, stats in rows:
        flag = "[red]DRIFT[/red]" if stats["drifted"] else ""
        table.add_row(name, f"{stats['psi']:.4f}", stats["test"], f"{stats['p_value']:.3g}", flag)
    console.print(table)


def monitor_config(
    ctx: typer.Context,
    model: str,
    sample_rate: Annotated[float | None, typer.Option(min=0, max=1, help="Share logged")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="A column never stored (repeat); '' clears")
    ] = None,
    psi: Annotated[float | None, typer.Option(help="PSI at which a feature drifts")] = None,
    p_value: Annotated[float | None, typer.Option(help="Test level with it")] = None,
    min_rows: Annotated[int | None, typer.Option(help="Rows needed for a verdict")] = None,
    min_accuracy: Annotated[float | None, typer.Option(help="Degraded below")] = None,
    max_rmse: Annotated[float | None, typer.Option(help="Degraded above")] = None,
    window_days: Annotated[int | None, typer.Option(help="Days a check looks at")] = None,
    webhook: Annotated[str | None, typer.Option(help="URL told of state changes")] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(envvar="MLGATE_WEBHOOK_SECRET", help="Signs the webhook body")
    ] = None,
    retrain: Annotated[
        bool | None, typer.Option("--retrain/--no-retrain", help="Train a candidate on alert")
    ] = None,
    log_retention: Annotated[
        str | None,
        typer.Option(
            help="Keep the prediction log, usage rows and audit events of the model this long "
            "(3650d, 10y; at least 62d, the billing period), or 'forever'; the server deletes "
            "what is older"
        ),
    ] = None,
) -> None:
    """Show or change a model's monitoring settings (all left out: show them)."""
    changes: dict[str, Any] = {
        "sample_rate": sample_rate, "psi_threshold": psi, "p_threshold": p_value,
        "min_rows": min_rows, "min_accuracy": min_accuracy, "max_rmse": max_rmse,
        "window_days": window_days, "webhook_url": webhook, "webhook_secret": webhook_secret,
        "retrain": retrain,
    }  # fmt: skip
    changes = {k: v for k, v in changes.items() if v is not None}
    if exclude is not None:
        changes["exclude_columns"] = [c for c in exclude if c]
    if log_retention is not None:
        changes["log_retention_days"] = parse_retention(log_retention)
    s = services(ctx)
    settings = s.monitor.configure(model, **changes) if changes else s.monitor.settings(model)
    table = Table("setting", "value", box=None)
    for key, value in settings.public().items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
    days = settings.log_retention_days
    if "log_retention_days" in changes and days is not None and days < SIX_MONTHS:
        console.print(f"[bold yellow]warning[/] a log retention of {days} days is "
                      f"{SHORTER_THAN_SIX_MONTHS}")  # fmt: skip
