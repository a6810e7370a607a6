"""`mlgate serve` and `mlgate quickstart`: the HTTP API, and the whole journey in one command."""

from __future__ import annotations

import json
import secrets
import shlex
from pathlib import Path
from typing import Annotated

import typer

from mlgate.access.service import create_key
from mlgate.bootstrap import Services
from mlgate.cli.context import console, services
from mlgate.cli.training import cli_actor, print_result, run_training
from mlgate.sources import demo
from mlgate.sources import service as sources

DEMO_CONSUMER = "demo-customer"
DEMO_PLAN = "starter"
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]


Workers = Annotated[
    int,
    typer.Option(
        min=1,
        max=64,
        help="Worker processes. More than one needs MLGATE_REDIS_URL, so that plan limits are "
        "counted across them.",
    ),
]


def serve(
    ctx: typer.Context, host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1
) -> None:
    """Serve every registered model over HTTP (docs at /docs)."""
    run_server(services(ctx), host, port, workers=workers)


def quickstart(
    ctx: typer.Context,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop before serving.")] = False,
) -> None:
    """Demo data -> source -> trained model -> API key -> server, with a curl to try."""
    s = services(ctx)
    console.print(f"mlgate home: {s.settings.home}")
    database = s.settings.home / "demo" / "churn.db"
    frame = demo.churn_frame()
    demo.write_sqlite(database, frame)
    console.print(f"1. demo data: {len(frame):,} customers in {database} (table {demo.TABLE})")

    if "demo" not in {c.name for c in sources.list_sources(s.uow())}:
        sources.add_source(
            s.uow(),
            s.open_source,
            name="demo",
            url=f"sqlite:///{database}",
            cwd=Path.cwd(),
            now=s.clock(),
        )
    console.print("2. source: demo")

    from mlgate.training.service import TrainSpec

    spec = TrainSpec(
        model_name="churn",
        source="demo",
        target=demo.TARGET,
        algorithm="logistic_regression",
        table=demo.TABLE,
        drop=(demo.ID_COLUMN,),
        actor=cli_actor(),
    )
    console.print("3. training churn (logistic_regression):")
    print_result(run_training(ctx, spec))

    token = _quickstart_access(s)

    row = frame.drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[0].to_dict()
    body = json.dumps({"rows": [{k: _plain(v) for k, v in row.items()}]})
    url = f"http://{host}:{port}/v1/models/churn/predict"
    console.print("6. try it:")
    print(
        f"curl -s {url} -H {shlex.quote('Authorization: Bearer ' + token)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    if no_serve:
        console.print(f"Start the server with `mlgate serve --port {port}`, then run the curl.")
        return
    run_server(s, host, port)


def _quickstart_access(s: Services) -> str:
    """An admin (the first time, with a password printed once), a demo consumer allowed to
    call churn, and a key of that consumer's: the token for the curl."""
    from mlgate.access import accounts, grants
    from mlgate.access.audit import local_actor

    uow = s.uow()
    with uow:
        has_admin = any(u.is_admin for u in uow.users.all())
        has_consumer = uow.consumers.get(DEMO_CONSUMER) is not None
        has_grant = any(
            g.target.model == "churn" for g in uow.grants.of_subject("consumer", DEMO_CONSUMER)
        )
    if not has_admin:
        password = secrets.token_urlsafe(18)
        accounts.create_user(
            s.uow(), by=None, name="admin", password=password, is_admin=True, now=s.clock()
        )
        console.print("4. admin user [bold]admin[/], password (shown once, store it now):")
        print(password)
    else:
        console.print("4. an admin exists already")
    if not has_consumer:
        accounts.create_consumer(
            s.uow(), by=None, name=DEMO_CONSUMER, description="quickstart", now=s.clock()
        )
    from mlgate.plans import service as plans

    if DEMO_PLAN not in {p.name for p in plans.list_plans(s.uow())}:
        plans.create_plan(
            s.uow(),
            plans.make_plan(
                DEMO_PLAN,
                s.clock(),
                per_second=20,
                per_minute=600,
                requests_per_month=100_000,
                rows_per_month=10_000_000,
                max_rows_per_request=1_000,
                price_per_1k_rows="0.50",
                description="quickstart: 600 calls a minute, 100,000 a month",
            ),
            by=None,
        )
    if plans.active_subscription(s.uow(), DEMO_CONSUMER, s.clock()) is None:
        plans.subscribe(s.uow(), by=None, consumer=DEMO_CONSUMER, plan=DEMO_PLAN, now=s.clock())
    if not has_grant:
        grants.add_grant(
            s.uow(),
            by=None,
            subject_kind="consumer",
            subject=DEMO_CONSUMER,
            target="churn",
            role="consumer",
            now=s.clock(),
            actor=local_actor(),
        )
    key, token = create_key(
        s.uow(),
        s.server_secret,
        by=None,
        owner_kind="consumer",
        owner=DEMO_CONSUMER,
        name="quickstart",
        now=s.clock(),
    )
    console.print(
        f"5. consumer {DEMO_CONSUMER} on plan {DEMO_PLAN} may call churn; "
        f"its API key {key.prefix} (shown once):"
    )
    print(token)
    return token


def run_server(s: Services, host: str, port: int, *, workers: int = 1) -> None:
    import os

    import uvicorn

    from mlgate.api.app import create_app
    from mlgate.errors import ConfigError

    console.print(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    if workers == 1:
        uvicorn.run(create_app(s), host=host, port=port, log_level="info")
        return
    if not s.settings.redis_url:
        raise ConfigError(
            "--workers above 1 needs MLGATE_REDIS_URL: each worker would count plan limits "
            "on its own"
        )
    os.environ["MLGATE_SERVE_WORKERS"] = str(workers)  # read by each worker's app factory
    os.environ["MLGATE_HOME"] = str(s.settings.home)
    uvicorn.run(
        "mlgate.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: a missing value
        return None
    return value
