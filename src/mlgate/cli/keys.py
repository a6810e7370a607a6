"""`mlgate keys ...`: API keys for prediction calls."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mlgate.access import service
from mlgate.cli.context import console, services

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what will use the key, e.g. billing-service.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="What the key may do: predict (default) and/or train; repeatable."),
    ] = None,
) -> None:
    """Create an API key. Its token is printed once and stored nowhere."""
    s = services(ctx)
    scopes = tuple(scope or ("predict",))
    key, token = service.create_key(
        s.uow(), s.server_secret, name=name, now=s.clock(), scopes=scopes
    )
    console.print(
        f"Created key [bold]{key.prefix}[/] ({key.name}). Keep this token; it is shown once:"
    )
    print(token)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List API keys by prefix (never their secrets)."""
    keys = service.list_keys(services(ctx).uow())
    if not keys:
        console.print("No API keys yet. Create one with `mlgate keys create --name NAME`.")
        return
    table = Table("prefix", "name", "scopes", "created", "status")
    for k in keys:
        status = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(
            k.prefix, k.name, ",".join(k.scopes), f"{k.created_at:%Y-%m-%d %H:%M}", status
        )
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's prefix (mlg_...) or its name.")],
) -> None:
    """Revoke an API key; calls made with it are refused from now on."""
    s = services(ctx)
    revoked = service.revoke_key(s.uow(), key, now=s.clock())
    console.print(f"Revoked key {revoked.prefix} ({revoked.name})")
