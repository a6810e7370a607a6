"""`mlgate sources ...`: where training rows come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlgate.cli.context import console, services

app = typer.Typer(help="Add, list, test and look into data sources.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short name to refer to the source by.")],
    url: Annotated[
        str,
        typer.Argument(
            help="A SQLAlchemy URL (postgresql+psycopg://..., mysql+pymysql://..., "
            "sqlite:///file.db) or the path of a .csv/.parquet file or folder."
        ),
    ],
) -> None:
    """Add a data source after checking that it can be reached."""
    s = services(ctx)
    config, tables = s.sources.add(name=name, url=url, cwd=Path.cwd())
    console.print(f"Added source [bold]{config.name}[/] ({config.kind}: {config.redacted_url})")
    console.print(f"{len(tables)} table(s): {', '.join(tables) or '(none)'}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the data sources (passwords shown as ***)."""
    configs = services(ctx).sources.all()
    if not configs:
        console.print("No sources yet. Add one with `mlgate sources add NAME URL`.")
        return
    table = Table("name", "kind", "url", "added")
    for c in configs:
        table.add_row(c.name, c.kind, c.redacted_url, f"{c.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@app.command("test")
def test(ctx: typer.Context, name: str) -> None:
    """Connect to a source and list its tables."""
    s = services(ctx)
    config, tables = s.sources.test(name)
    console.print(f"[green]ok[/] {config.name} ({config.redacted_url}) is reachable")
    console.print(f"{len(tables)} table(s): {', '.join(tables) or '(none)'}")


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    table: Annotated[str, typer.Option("--table", "-t", help="The table to look into.")],
    rows: Annotated[int, typer.Option(min=0, max=100, help="Sample rows to print.")] = 5,
) -> None:
    """Show a table's columns, their inferred types and a few sample rows."""
    s = services(ctx)
    sample = s.sources.describe_table(name, table=table, n_rows=rows)
    types = Table("column", "inferred type", title=f"{name}.{sample.table}")
    for column in sample.columns:
        types.add_row(column.name, column.type)
    console.print(types)
    if sample.rows:
        grid = Table(*[c.name for c in sample.columns], title="sample rows")
        for row in sample.rows:
            grid.add_row(*["" if v is None else str(v) for v in row.values()])
        console.print(grid)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Remove a data source (models trained from it keep their lineage)."""
    services(ctx).sources.remove(name)
    console.print(f"Removed source {name}")
