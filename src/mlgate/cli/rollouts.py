"""`mlgate rollout start|list|show|decide|stop`: a canary of a candidate version, on this
machine's metadata (the servers pick it up within a second)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mlgate.cli.context import console, services

app = typer.Typer(no_args_is_help=True, help="Try a candidate version on a share of callers.")


@app.command("start")
def start(
    ctx: typer.Context,
    model: str,
    candidate: Annotated[int, typer.Option(min=1, help="The version to try.")],
    mode: Annotated[
        str,
        typer.Option(
            help="canary: the candidate answers a share of callers; shadow: it scores a copy "
            "of a share of the calls and answers none."
        ),
    ] = "canary",
    share: Annotated[
        float, typer.Option(help="Of the callers (canary, at most 0.5) or the calls (shadow).")
    ] = 0.05,
    alias: Annotated[str, typer.Option(help="The alias whose traffic is shared.")] = "production",
    alpha: Annotated[float, typer.Option(help="The sequential test's error rate.")] = 0.05,
    auto: Annotated[bool, typer.Option(help="Promote or roll back on the test's verdict.")] = False,
    days: Annotated[float, typer.Option(help="Undecided after this many days: it expires.")] = 14.0,
    max_error_rate: Annotated[
        float, typer.Option(help="Guard rail: the candidate's failed calls.")
    ] = 0.05,
    max_latency_ratio: Annotated[
        float, typer.Option(help="Guard rail: its p99 over the incumbent's.")
    ] = 3.0,
    min_agreement: Annotated[
        float, typer.Option(help="Guard rail (shadow): the share of rows both sides agree on.")
    ] = 0.0,
    then_canary: Annotated[
        float | None, typer.Option(help="Shadow: found better, a canary of this share follows.")
    ] = None,
) -> None:
    """Start a rollout of CANDIDATE against the version ALIAS points at."""
    from mlgate.cli.training import cli_actor

    rollout = services(ctx).rollouts.start(
        model, candidate, mode=mode, share=share, actor=cli_actor(), alias=alias, alpha=alpha,
        auto=auto, days=days, max_error_rate=max_error_rate,
        max_latency_ratio=max_latency_ratio, min_agreement=min_agreement,
        then_canary=then_canary,
    )  # fmt: skip
    what = (f"answers {share:.0%} of the callers of" if rollout.mode == "canary"
            else f"scores a copy of {share:.0%} of the calls to")  # fmt: skip
    console.print(
        f"rollout {rollout.id}: {model} v{candidate} {what} {alias} (v{rollout.incumbent}); "
        f"{'decides by itself' if auto else 'reports'} at α = {alpha:g}; expires "
        f"{rollout.deadline:%Y-%m-%d %H:%M} UTC"
    )


@app.command("replay")
def replay(
    ctx: typer.Context,
    model: str,
    candidate: Annotated[int, typer.Option(min=1, help="The version to replay the calls on.")],
    days: Annotated[float, typer.Option(help="How far back in the prediction log.")] = 7.0,
    alpha: Annotated[float, typer.Option(help="The test's error rate.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Score CANDIDATE on the calls the prediction log kept from the last DAYS days: agreement
    with what was answered, the test on the labels fed back, and the bill it would have made."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    s = services(ctx)
    with Progress(TextColumn(f"replaying on {model} v{candidate}"), BarColumn(),
                  MofNCompleteColumn(), console=console, transient=True) as bar:  # fmt: skip
        task = bar.add_task("calls", total=None)
        report = s.rollouts.replay(model, candidate, days=days, alpha=alpha,
                                   progress=lambda done, total: bar.update(
                                       task, completed=done, total=total))  # fmt: skip
    if as_json:
        console.print_json(json.dumps(report, default=str))
        return
    console.print(
        f"{report['logged_calls']:,} logged calls ({report['logged_rows']:,} rows) since "
        f"{report['since'][:16]}, answered by {', '.join(report['answered_by']) or 'none'}"
    )
    if report["agreement"] is not None:
        console.print(f"v{candidate} agrees on {report['agreement']:.2%} of "
                      f"{report['compared_rows']:,} rows")  # fmt: skip
    elif report["mean_absolute_difference"] is not None:
        console.print(f"v{candidate} differs by {report['mean_absolute_difference']:.4g} on "
                      f"average over {report['compared_rows']:,} rows")  # fmt: skip
    for why, count in report["not_replayed"].items():
        console.print(f"not replayed: {count:,} call(s): {why}")
    _print_test(report)
    table = Table("account", "rows then", f"rows by v{candidate}", "amount then",
                  f"amount by v{candidate}")  # fmt: skip
    for line in report["bill"]:
        table.add_row(line["account"], f"{line['rows_then']:,}", f"{line['rows_by_candidate']:,}",
                      line["amount_then"] or "", line["amount_by_candidate"] or "")  # fmt: skip
    console.print(table)


@app.command("list")
def list_(ctx: typer.Context, model: str) -> None:
    """The model's rollouts."""
    table = Table("id", "alias", "incumbent", "candidate", "mode", "share", "state", "reason")
    for r in services(ctx).rollouts.of_model(model):
        table.add_row(str(r.id), r.alias, f"v{r.incumbent}", f"v{r.candidate}", r.mode,
                      f"{r.share:g}", r.state, r.reason or "")  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    model: str,
    rollout_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """A rollout, and a fresh look at its evidence while it runs."""
    s = services(ctx)
    rollout = s.rollouts.get(model, rollout_id)
    out = rollout.to_json()
    if rollout.running:
        out["look"] = s.rollouts.look(rollout)
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    console.print(f"rollout {rollout.id} of {model}@{rollout.alias}: [bold]{rollout.state}[/bold]"
                  + (f": {rollout.reason}" if rollout.reason else ""))  # fmt: skip
    seen = out.get("look") or rollout.last_look
    if seen:
        _print_look(seen)


@app.command("decide")
def decide(ctx: typer.Context, model: str, rollout_id: int) -> None:
    """Look now and act as the servers' referee would (guard rails; the verdict with --auto;
    the deadline)."""
    rollout = services(ctx).rollouts.decide(model, rollout_id, address="local")
    console.print(f"rollout {rollout.id}: [bold]{rollout.state}[/bold]"
                  + (f": {rollout.reason}" if rollout.reason else ""))  # fmt: skip
    if rollout.last_look:
        _print_look(rollout.last_look)


@app.command("stop")
def stop(
    ctx: typer.Context,
    model: str,
    rollout_id: int,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
) -> None:
    """End a rollout: every caller back on the incumbent, no alias moves."""
    from mlgate.cli.training import cli_actor

    services(ctx).rollouts.stop(model, rollout_id, actor=cli_actor(), reason=reason)
    console.print(f"rollout {rollout_id}: stopped")


def _print_look(seen: dict[str, Any]) -> None:
    table = Table("side", "calls", "failed", "p99 ms")
    for side, c in seen["sides"].items():
        p99 = "" if c["p99_ms"] is None else f"{c['p99_ms']:.1f}"
        table.add_row(side, f"{c['calls']:,}", f"{c['failed']:,}", p99)
    console.print(table)
    shadow = seen.get("shadow")
    if shadow:
        agreement = shadow["agreement"]
        console.print(
            f"shadow: {shadow['copied_calls']:,} calls copied, {shadow['skipped_calls']:,} "
            f"skipped (queue full), {shadow['failed_calls']:,} failed; "
            + ("" if agreement is None else f"agreement {agreement:.2%} on ")
            + f"{shadow['compared_rows']:,} rows"
        )
    _print_test(seen)


def _print_test(seen: dict[str, Any]) -> None:
    t = seen["test"]
    if t["low"] is None:
        console.print(
            f"{seen['metric']}: {t['incumbent_rows']:,} and {t['candidate_rows']:,} labelled "
            "rows; not enough to decide yet"
        )
        return
    console.print(
        f"{seen['metric']}: incumbent {t['incumbent_loss']:.4f} ({t['incumbent_rows']:,} "
        f"labelled), candidate {t['candidate_loss']:.4f} ({t['candidate_rows']:,}); "
        f"difference {t['estimate']:+.4f}, always-valid {1 - t['alpha']:.0%} interval "
        f"[{t['low']:+.4f}, {t['high']:+.4f}]: [bold]{t['verdict']}[/bold]"
    )


schedules_app = typer.Typer(
    no_args_is_help=True, help="Retrain a model on a schedule and roll the new version out."
)


@schedules_app.command("add")
def add_schedule(
    ctx: typer.Context,
    model: str,
    cron: Annotated[str | None, typer.Option(help='When, in UTC: e.g. "0 3 * * 1".')] = None,
    on_drift: Annotated[bool, typer.Option(help="Also when monitoring finds it drifting.")] = False,
    new_rows: Annotated[
        int | None, typer.Option(min=1, help="Also when the source has this many new rows.")
    ] = None,
    alias: Annotated[
        str, typer.Option(help="The alias whose version is retrained.")
    ] = "production",
    replay_days: Annotated[float, typer.Option(help="Replay the log first (0: no).")] = 7.0,
    mode: Annotated[str, typer.Option(help="The rollout: canary, shadow or none.")] = "canary",
    share: Annotated[float, typer.Option(help="The rollout's share.")] = 0.05,
    auto: Annotated[bool, typer.Option(help="The rollout decides by itself.")] = True,
    alpha: Annotated[float, typer.Option(help="The test's error rate.")] = 0.05,
    then_canary: Annotated[
        float | None, typer.Option(help="With --mode shadow: found better, a canary follows.")
    ] = None,
) -> None:
    """Retrain MODEL's alias version when a trigger fires, then replay and roll it out."""
    from mlgate.cli.training import cli_actor

    schedule = services(ctx).rollouts.add_schedule(
        model, actor=cli_actor(), cron=cron, on_drift=on_drift, new_rows=new_rows, alias=alias,
        policy={"replay_days": replay_days, "mode": mode, "share": share, "auto": auto,
                "alpha": alpha, "then_canary": then_canary},
    )  # fmt: skip
    nxt = schedule.next_run_at
    console.print(f"schedule {schedule.id} of {model}"
                  + (f": next run {nxt:%Y-%m-%d %H:%M} UTC" if nxt else ""))  # fmt: skip


@schedules_app.command("list")
def list_schedules(
    ctx: typer.Context, model: Annotated[str | None, typer.Argument()] = None
) -> None:
    """Every schedule (or MODEL's): triggers, policy, next run, last outcome."""
    table = Table("id", "model", "triggers", "policy", "next run (UTC)", "last outcome")
    for s in services(ctx).rollouts.schedules(model):
        triggers = ", ".join(
            t for t in (f"cron {s.cron}" if s.cron else "", "drift" if s.on_drift else "",
                        f"{s.new_rows:,} new rows" if s.new_rows else "") if t
        )  # fmt: skip
        p = s.policy
        policy = (("" if not p.get("replay_days") else f"replay {p['replay_days']:g} d, ")
                  + (p["mode"] if p["mode"] == "none" else f"{p['mode']} {p['share']:g}")
                  + (" auto" if p.get("auto") and p["mode"] != "none" else ""))  # fmt: skip
        nxt = "" if s.next_run_at is None else f"{s.next_run_at:%Y-%m-%d %H:%M}"
        table.add_row(str(s.id), s.model, triggers, policy, nxt, s.last_outcome or "")
    console.print(table)


@schedules_app.command("remove")
def remove_schedule(ctx: typer.Context, model: str, schedule_id: int) -> None:
    """Remove a schedule (a retrain it started runs on; nothing follows it)."""
    services(ctx).rollouts.remove_schedule(model, schedule_id)
    console.print(f"schedule {schedule_id} of {model}: removed")


@schedules_app.command("run")
def run_schedules(ctx: typer.Context) -> None:
    """One round over the schedules now, as `mlgate serve` does every 30 seconds: fire what is
    due, and hand what finished training to its policy."""
    for line in services(ctx).rollouts.run_schedules() or ["nothing due"]:
        console.print(line)
