"""`mlgate --url URL batches ...`: a consumer's batch jobs on a server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from mlgate.cli.context import console
from mlgate.cli.remote import remote_of
from mlgate.errors import InvalidInput, MlgateError

app = typer.Typer(
    help="Score files of rows as batch jobs on a server (give --url and a token).",
    no_args_is_help=True,
)


@contextlib.contextmanager
def _client(ctx: typer.Context) -> Iterator[Any]:
    """The Python client on the server of --url; what the server refuses (a result removed,
    a batch that is not there) becomes our error, printed as every other one, not a traceback."""
    from mlgate.client import Client, errors

    remote = remote_of(ctx)
    if remote is None:
        raise InvalidInput(
            "batch jobs run on a server: mlgate --url https://… --token … batches submit …"
        )
    with Client(remote.url, remote.token, timeout=300.0) as client:
        try:
            yield client
        except errors.MlgateError as exc:
            raise MlgateError(str(exc)) from None


@app.command("submit")
def submit(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL (or MODEL@ALIAS) to score with.")],
    path: Annotated[Path, typer.Argument(help="A .csv or .parquet file of rows.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where the result goes.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow it to its end.")] = True,
) -> None:
    """Upload the file (streamed) and score it on the server, with a progress bar."""
    with _client(ctx) as client:
        try:
            batch = client.predict_file(model, path, output=output, wait=wait, progress=wait)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    data = batch.data
    console.print(
        f"batch {batch.id}: {data['state']}, {data['rows_done']:,} of {data['rows']:,} rows"
        + (f", {data['rows_failed']:,} failed" if data.get("rows_failed") else "")
        + (f"; result in {output}" if output is not None and wait else "")
    )


@app.command("status")
def status(ctx: typer.Context, batch_id: str) -> None:
    """A batch's state, rows done and failed, and ETA."""
    with _client(ctx) as client:
        data = client.batch(batch_id).data
    eta = f", about {data['eta_seconds']:.0f} s left" if data.get("eta_seconds") else ""
    console.print(f"{data['state']}: {data['rows_done']:,} of {data['rows']:,} rows{eta}")
    if data.get("error"):
        console.print(data["error"], markup=False)
    if data.get("result_removed_at"):
        console.print(f"its result was removed at {data['result_removed_at']}")


@app.command("download")
def download(ctx: typer.Context, batch_id: str, output: Path) -> None:
    """Write a finished batch's result to OUTPUT."""
    with _client(ctx) as client:
        client.batch(batch_id).download(output)
    console.print(f"wrote {output}")


@app.command("cancel")
def cancel(ctx: typer.Context, batch_id: str) -> None:
    """Cancel a batch (a finished one: remove its files)."""
    with _client(ctx) as client:
        data = client.batch(batch_id).cancel().data
    console.print(f"batch {batch_id}: {data['state']}")
