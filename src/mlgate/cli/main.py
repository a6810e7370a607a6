"""The `mlgate` command: its groups, and the one place our errors become exit codes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mlgate import __version__
from mlgate.cli import (
    access,
    batches,
    keys,
    models,
    monitoring,
    plans,
    rollouts,
    serving,
    sources,
    training,
)
from mlgate.cli.context import console, errors, services
from mlgate.errors import MlgateError
from mlgate.sources.urls import redact

# Commands that change nothing here: a failure of any other command is recorded as a failed
# attempt when it failed before reaching a use case (which records its own attempts).
READ_ONLY = {
    *("audit", "login", "logout", "whoami", "serve", "predict", "generate", "monitor"),
    *("init", "doctor", "version", "status", "download", "list", "show", "test", "report"),
    *("aliases", "export", "replay", "algorithms"),
}


class Group(TyperGroup):
    """The one catcher of our errors: users see "Error: ..." and exit code 1, no traceback."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        ctx.meta["command_words"] = [a for a in args if not a.startswith("-")]
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        # Local changes are recorded by the use cases that make them, the operator at this
        # machine as their actor (remote ones are recorded by the server).
        from mlgate.access import audit

        with audit.acting(audit.local_actor(), "local") as scope:
            try:
                return super().invoke(ctx)
            except MlgateError as exc:
                errors.print(f"Error: {exc}", markup=False)
                if scope.recorded == 0:
                    _failed_attempt(ctx, exc)
                raise typer.Exit(code=getattr(exc, "exit_code", 1)) from exc
            except OSError as exc:
                if exc.filename is None:  # not about a path the user named: a fault of ours
                    raise
                # An --output in a folder that is not there, a file not to be written.
                errors.print(f"Error: {exc.filename}: {exc.strerror}", markup=False)
                raise typer.Exit(code=1) from exc


def _failed_attempt(ctx: Any, exc: MlgateError) -> None:
    """A change refused before any use case ran (a version that is not there, a password typed
    differently twice): recorded as the command's failed attempt."""
    from mlgate.access import audit

    words: list[str] = ctx.meta.get("command_words", [])
    group = ctx.command.commands.get(words[0]) if words else None
    command = words[:2] if hasattr(group, "commands") else words[:1]
    if not command or command[-1] in READ_ONLY or ctx.meta.get("remote") is not None:
        return
    if ctx.obj is None:
        return  # the error came before the home was opened: nothing to write to
    s = services(ctx)
    rest = words[len(command) :]
    audit.record(
        s.uow(),
        at=s.clock(),
        actor=audit.local_actor(),
        action=f"cli.{'.'.join(command)}",
        target="@".join(rest[:2]) if command[0] == "models" else (rest[:1] or [""])[0],
        address="local",
        result="failed",
        detail={"error": str(getattr(exc, "code", "") or type(exc).__name__)},
    )


app = typer.Typer(
    cls=Group,
    help="mlgate: from rows in a database to a versioned, access-controlled prediction API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(batches.app, name="batches")
app.add_typer(sources.app, name="sources")
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(access.users, name="users")
app.add_typer(access.consumers, name="consumers")
app.add_typer(access.grants_app, name="grants")
app.add_typer(plans.app, name="plans")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(rollouts.schedules_app, name="schedules")
access.consumers.command("subscribe")(plans.subscribe)
app.add_typer(plans.usage_app, name="usage")
app.command("audit")(access.audit_log)
app.command("login")(access.login)
app.command("logout")(access.logout)
app.command("whoami")(access.whoami)
app.add_typer(training.algorithms, name="algorithms")
app.command("train")(training.train)
app.command("serve")(serving.serve)
app.command("quickstart")(serving.quickstart)
app.command("predict")(serving.predict)
app.command("generate")(serving.generate)
app.command("monitor")(monitoring.monitor)
app.command("monitor-config")(monitoring.monitor_config)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="MLGATE_URL",
            help="Work against the mlgate server at this URL instead of the local home "
            "(users, consumers, keys, grants, audit, login, batches; the other commands "
            "refuse it).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MLGATE_TOKEN",
            help="The token for --url: from `mlgate login`, or an API key. Prefer the "
            "environment variable: command lines show up in process lists.",
        ),
    ] = None,
) -> None:
    if url:
        from mlgate.cli.remote import Remote

        remote = Remote(url, token)
        ctx.meta["remote"] = remote
        ctx.call_on_close(remote.close)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create the home folder and bring the metadata database to the latest schema."""
    from mlgate.db import migrate

    s = services(ctx)
    console.print(f"home:      {s.settings.home}")
    console.print(f"database:  {redact(s.settings.database_url)}")
    console.print(f"artifacts: {s.settings.artifact_dir}")
    schema = migrate.current_revision(s.engine) if s.engine is not None else "none (in memory)"
    console.print(f"schema:    {schema} (head)")


# How `doctor` says a signature's state (signing/model.py State) in a sentence.
_SIGNATURE_SAYS = {
    "untrusted": "is by a key this server does not trust",
    "invalid": "does not verify",
    "mismatch": "does not match the files",
}


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove files that belong to no version.")
    ] = False,
) -> None:
    """Check the registry: every version's files exist and match their sha256; every file
    belongs to a version. Exits 1 when something is wrong, saying how to fix it."""
    s = services(ctx)
    registry = s.registry
    if fix:
        for key in registry.remove_orphans():
            console.print(f"removed {key}")
    n_versions, findings = registry.check()
    problems = [(f.problem, f.fix) for f in findings]
    unsigned = []
    for found in s.signing.verify_all():  # signing/: each version's signature and files
        if found.state == "unsigned" and not s.settings.require_signatures:
            unsigned.append(found.ref)  # registered before signing: loads, with a warning
        elif found.state == "unsigned":
            problems.append((
                f"{found.ref} is unsigned and MLGATE_REQUIRE_SIGNATURES refuses it at load",
                "mlgate models sign --all, once you know its files are the ones registered",
            ))  # fmt: skip
        elif not found.ok:
            problems.append((
                f"{found.ref}: its signature {_SIGNATURE_SAYS.get(found.state, found.state)}: "
                f"{'; '.join(found.problems)}; it is refused at load",
                "restore its files from a backup (or trust its key: MLGATE_TRUSTED_KEYS), or "
                "delete the version",
            ))  # fmt: skip
    if s.settings.usage_export_format == "stripe" and s.settings.usage_export_url:
        lacking = s.plans.unbilled()
        if lacking:
            problems.append((
                f"{len(lacking)} consumer(s) on a plan have no billing id; the Stripe export "
                f"sends nothing of theirs: {', '.join(lacking[:10])}",
                "mlgate consumers update NAME --billing-id cus_…, then mlgate usage export "
                "--replay",
            ))  # fmt: skip
    if unsigned:
        console.print(
            f"[yellow]unsigned[/] {len(unsigned)} version(s) registered before signing load "
            f"with a warning: {', '.join(unsigned[:10])}; `mlgate models sign --all` signs them"
        )
    if not problems:
        console.print(f"[green]ok[/] {n_versions} versions, every file present and intact")
        return
    for problem, how in problems:
        console.print(f"[red]problem[/] {problem}\n  fix: {how}")
    raise typer.Exit(1)


@app.command("version")
def version() -> None:
    """Print mlgate's version."""
    print(__version__)


def main() -> None:
    app()
