"""The `mlgate` command: its groups, and the one place our errors become exit codes."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from mlgate import __version__
from mlgate.cli import keys, models, serving, sources, training
from mlgate.cli.context import console, errors, services
from mlgate.errors import MlgateError
from mlgate.sources.urls import redact


class Group(TyperGroup):
    """The one catcher of our errors: users see "Error: ..." and exit code 1, no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MlgateError as exc:
            errors.print(f"Error: {exc}", markup=False)
            raise typer.Exit(code=1) from exc


app = typer.Typer(
    cls=Group,
    help="mlgate: from rows in a database to a versioned, access-controlled prediction API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sources.app, name="sources")
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(training.algorithms, name="algorithms")
app.command("train")(training.train)
app.command("serve")(serving.serve)
app.command("quickstart")(serving.quickstart)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create the home folder and bring the metadata database to the latest schema."""
    from mlgate.db import migrate

    s = services(ctx)
    console.print(f"home:      {s.settings.home}")
    console.print(f"database:  {redact(s.settings.database_url)}")
    console.print(f"artifacts: {s.settings.artifact_dir}")
    console.print(f"schema:    {migrate.current_revision(s.engine)} (head)")


@app.command("version")
def version() -> None:
    """Print mlgate's version."""
    print(__version__)


def main() -> None:
    app()
