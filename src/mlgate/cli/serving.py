"""`mlgate serve` and `mlgate quickstart`: the HTTP API, and the whole journey in one command."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from mlgate.bootstrap import Services
from mlgate.cli.context import console, services
from mlgate.cli.training import cli_actor, print_result, run_training
from mlgate.runtime.predictors import limit_model_threads

DEMO_CONSUMER = "demo-customer"
DEMO_PLAN = "starter"
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]


Workers = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=64,
        help="Worker processes [default: one per core with MLGATE_REDIS_URL set, else 1: "
        "plan limits counted in a process cannot be shared by several].",
        show_default=False,
    ),
]


def serve(
    ctx: typer.Context, host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = None
) -> None:
    """Serve every registered model over HTTP (docs at /docs)."""
    s = services(ctx)
    s.settings.check_sign_in()
    if workers is None:
        workers = (os.cpu_count() or 1) if s.settings.redis_url else 1
    run_server(s, host, port, workers=workers)


def quickstart(
    ctx: typer.Context,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop before serving.")] = False,
) -> None:
    """Demo data -> source -> trained model -> API key -> server, with a curl to try. Run again,
    it keeps what is there (data, source, model, admin, consumer) and makes a new key."""
    from mlgate.sources import demo  # pandas: loaded by the commands that use it

    s = services(ctx)
    me = runnable()
    console.print(f"mlgate home: {s.settings.home}")
    database = s.settings.home / "demo" / "churn.db"
    frame = demo.churn_frame()
    if database.exists():
        console.print(f"1. demo data: kept, in {database} (table {demo.TABLE})")
    else:
        demo.write_sqlite(database, frame)
        console.print(f"1. demo data: {len(frame):,} customers in {database} (table {demo.TABLE})")

    if "demo" not in {c.name for c in s.sources.all()}:
        s.sources.add(name="demo", url=f"sqlite:///{database}", cwd=Path.cwd())
        console.print("2. source: demo")
    else:
        console.print("2. source: demo, kept")

    trained = "churn" in {m.name for m in s.registry.models()} and s.registry.versions("churn")[1]
    if not trained:
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
    else:
        console.print(
            "3. model churn: kept, as it is "
            f"(`{me} models list`; `{me} models retrain churn` trains a new version)"
        )

    token, admin = _quickstart_access(s, me, f"http://{host}:{port}")

    row = frame.drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[0].to_dict()
    body = json.dumps({"rows": [{k: _plain(v) for k, v in row.items()}]})
    url = f"http://{host}:{port}/v1/models/churn/predict"
    console.print("6. try it:")
    print(
        f"curl -s {url} -H {shlex.quote('Authorization: Bearer ' + token)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    console.print(
        f"7. dashboard: http://{host}:{port}/ui (log in as {admin}); the consumer portal is at "
        f"http://{host}:{port}/portal (`{me} consumers password {DEMO_CONSUMER}` lets "
        f"{DEMO_CONSUMER} in)"
    )
    if no_serve:
        console.print(f"Start the server with `{me} serve --port {port}`, then run the curl.")
        return
    run_server(s, host, port)


def runnable(
    argv0: str | None = None, path: str | None = None, executable: str = sys.executable
) -> str:
    """How the user can run mlgate again from this shell: `mlgate` where that name finds this
    very program on PATH; else the path it was started by (`.venv/bin/mlgate`, without an
    activated environment), or `python -m mlgate`."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    started = Path(argv0)
    if started.name in ("__main__.py", "-m", "-c", "") or not started.name.startswith("mlgate"):
        return f"{shlex.quote(executable)} -m mlgate"
    found = shutil.which("mlgate", path=path)
    itself = shutil.which(argv0, path=path) if started.name == argv0 else argv0
    if found is not None and itself is not None and Path(found).resolve() == Path(itself).resolve():
        return "mlgate"
    return shlex.quote(argv0)


def _quickstart_access(s: Services, me: str, base: str) -> tuple[str, str]:
    """An admin (the first time, with a password printed once), a demo consumer allowed to
    call churn, and a new key of that consumer's: the token for the curl, and the admin's name."""
    from mlgate.access.audit import local_actor

    uow = s.uow()
    with uow:
        admins = sorted(u.name for u in uow.users.all() if u.is_admin and u.disabled_at is None)
        has_consumer = uow.consumers.get(DEMO_CONSUMER) is not None
        has_grant = any(
            g.target.model == "churn" for g in uow.grants.of_subject("consumer", DEMO_CONSUMER)
        )
    if not admins:
        password = secrets.token_urlsafe(18)
        s.access.create_user(by=None, name="admin", password=password, is_admin=True)
        console.print("4. admin user [bold]admin[/], password (shown once, store it now):")
        print(password)
        admin = "admin"
    else:
        admin = "admin" if "admin" in admins else admins[0]
        console.print(
            f"4. admin: {', '.join(admins)} (kept). Log in at {base}/ui/login; "
            f"a forgotten password: `{me} users password {admin} --generate` sets a new one"
        )
    if not has_consumer:
        s.access.create_consumer(by=None, name=DEMO_CONSUMER, description="quickstart")
    from mlgate.plans import service as plans

    if DEMO_PLAN not in {p.name for p in s.plans.plans()}:
        s.plans.create_plan(
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
    if s.plans.active_subscription(DEMO_CONSUMER) is None:
        s.plans.subscribe(by=None, consumer=DEMO_CONSUMER, plan=DEMO_PLAN)
    if not has_grant:
        s.access.add_grant(
            by=None,
            subject_kind="consumer",
            subject=DEMO_CONSUMER,
            target="churn",
            role="consumer",
            actor=local_actor(),
        )
    key, token = s.access.create_key(
        by=None, owner_kind="consumer", owner=DEMO_CONSUMER, name="quickstart"
    )
    kept = " (kept)" if has_consumer else ""
    console.print(
        f"5. consumer {DEMO_CONSUMER}{kept} on plan {DEMO_PLAN} may call churn; "
        f"a new API key {key.prefix} (shown once; `{me} keys list` shows the earlier ones):"
    )
    print(token)
    return token, admin


def run_server(s: Services, host: str, port: int, *, workers: int = 1) -> None:
    import uvicorn

    from mlgate.access.audit import unattended
    from mlgate.api.app import create_app, settle_heap
    from mlgate.api.observe import configure_logging
    from mlgate.errors import ConfigError

    # The model libraries get the cores shared out, not each all of them: threads of several
    # workers fighting over two cores made a 1,000-row xgboost predict ~20x slower here.
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # an operator's own value wins
    console.print(
        f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs); "
        f"{workers} worker(s), {os.environ['OMP_NUM_THREADS']} model thread(s) each"
    )
    if workers == 1:
        configure_logging()
        limit_model_threads()
        app = create_app(s)
        settle_heap()
        unattended(
            lambda: uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
        )
        return
    if not s.settings.redis_url:
        raise ConfigError(
            "--workers above 1 needs MLGATE_REDIS_URL: each worker would count plan limits "
            "on its own"
        )
    os.environ["MLGATE_HOME"] = str(s.settings.home)
    # Metrics summed over the workers: each writes its own files here (prometheus_client's
    # multiprocess mode), /metrics in any of them reads them all.
    run_dir = s.settings.home / "run"
    for old in run_dir.glob("metrics-*"):  # left by servers that are gone
        pid = old.name.removeprefix("metrics-")
        if not pid.isdecimal() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    metrics_dir = run_dir / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "mlgate.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


def _plain(value: object) -> object:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: a missing value
        return None
    return value


def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL, MODEL@ALIAS or MODEL@VERSION.")],
    source: Annotated[str, typer.Option(help="A source from `mlgate sources list`.")],
    table: Annotated[str | None, typer.Option(help="The table to score.")] = None,
    query: Annotated[str | None, typer.Option(help="Or a SELECT of the rows to score.")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the scored rows to this .parquet or .csv file.")
    ] = None,
    into_table: Annotated[
        str | None,
        typer.Option(
            help="Or into this new table of the source's database (on SQLite, the scored rows "
            "are held in memory until the read ends: SQLite allows no write while it is read)."
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read and scored at a time.")
    ] = 50_000,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Score on a Dask cluster (an address, or local): the workers read and score "
            "the table's partitions. Default: MLGATE_DASK_ADDRESS for tables; none: here."
        ),
    ] = None,
    in_database: Annotated[
        bool,
        typer.Option(
            "--in-database",
            help="With --table and --into-table: score inside the source's own database by the "
            "version's SQL, checked there first (SQLite, PostgreSQL, MySQL): no row leaves it.",
        ),
    ] = False,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="With --in-database: a column the output table keeps."),
    ] = None,
) -> None:
    """Score a whole table offline, in chunks (tables larger than memory stream through), with
    a progress bar. Each row keeps its columns and gains `prediction` (and, for classifiers,
    one `probability_<class>` per class). With --in-database the table is scored where it
    lies instead, by the version's checked SQL (`mlgate models export --format sql`)."""
    from mlgate.errors import InvalidInput
    from mlgate.serving.offline import score_on_cluster, score_rows

    if in_database:
        if table is None or into_table is None or output is not None or query is not None:
            raise InvalidInput("--in-database scores a --table into an --into-table")
        from mlgate.access import audit
        from mlgate.registry import service as registry_service

        name, number, alias = registry_service.parse_ref(model)
        with console.status(f"checking {model}'s SQL on {source}, then scoring {table} there"):
            run = services(ctx).registry.score_in_database(
                name, number, alias, source=source, table=table, into_table=into_table,
                key=tuple(key or ()), actor=audit.local_actor(),
            )  # fmt: skip
        console.print(
            f"scored {run.n_rows:,} rows of {table} into {into_table} in {source}'s database "
            f"with {run.export.version.ref} ({run.export.conformance.engine}); "
            f"{run.export.note}"
        )
        return
    if (output is None) == (into_table is None):
        raise InvalidInput("say where the predictions go: --output FILE or --into-table NAME")
    if output is not None and output.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInput(f"--output {output}: write a .parquet or a .csv file")
    s = services(ctx)
    config = s.sources.get(source)
    address = dask if dask is not None else (s.settings.dask_address if table else None)
    if address is not None and address.lower() not in ("", "none", "off"):
        if table is None:
            raise InvalidInput("on a Dask cluster, score a table (or a view): a query is not split")
        from mlgate.training.distributed import connect

        with connect(address) as client:
            scoring = score_on_cluster(
                s.uow(), s.artifacts, client, config, model_ref=model, table=table,
                verify=s.predictors.verify,
            )  # fmt: skip
            _write_scored(scoring, s.open_source(config), output, into_table, source)
        return
    opened = s.open_source(config)
    scoring = score_rows(
        s.uow(), s.predictors, opened, model_ref=model, table=table, query=query,
        chunk_rows=chunk_rows,
    )  # fmt: skip
    _write_scored(scoring, opened, output, into_table, source)


def _write_scored(
    scoring: Any, opened: Any, output: Path | None, into_table: str | None, source: str
) -> None:
    """The scored chunks to the file or the new table, with a progress bar; closes `opened`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        columns = [TextColumn(f"scoring with {scoring.version.ref}"), BarColumn()]
        with Progress(*columns, MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("rows", total=scoring.total)

            def counted() -> Iterator[Any]:
                for chunk in scoring.chunks:
                    yield chunk
                    bar.advance(task, len(chunk))

            if output is not None:
                written = _write_file(output, counted())
            else:
                written = opened.write_table(into_table or "", counted())
    finally:
        opened.close()
    where = output if output is not None else f"table {into_table} of source {source}"
    console.print(f"Scored {written:,} rows with {scoring.version.ref} into {where}")


def _write_file(path: Path, chunks: Iterator[Any]) -> int:
    """Chunks to a Parquet or CSV file, written aside and moved into place at the end."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = path.with_name(f".{path.name}.partial")
    written = 0
    writer: Any = None
    try:
        for chunk in chunks:
            if path.suffix.lower() == ".csv":
                chunk.to_csv(partial, mode="a", header=written == 0, index=False)
            else:
                batch = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(partial, batch.schema)
                writer.write_table(batch.cast(writer.schema))
            written += len(chunk)
        if writer is not None:
            writer.close()
            writer = None
        if written == 0:
            from mlgate.errors import InvalidInput

            raise InvalidInput("the source gave no rows to score; nothing was written")
        partial.replace(path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return written


def generate(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A gan model: MODEL, MODEL@ALIAS or MODEL@VERSION.")],
    n: Annotated[int, typer.Option("-n", "--rows", min=1, help="How many synthetic rows.")],
    output: Annotated[Path, typer.Option(help="Write them to this .csv or .parquet file.")],
    seed: Annotated[int | None, typer.Option(help="The same seed gives the same rows.")] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows generated at a time.")] = 50_000,
) -> None:
    """Generate synthetic rows with a gan into a file, in chunks, with a progress bar."""
    import pandas as pd
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mlgate.errors import InvalidInput
    from mlgate.registry.service import parse_ref

    if output.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInput(f"--output {output}: write a .parquet or a .csv file")
    s = services(ctx)
    name, number, alias = parse_ref(model)
    version = s.registry.resolve(name, number, alias)
    predictor = s.predictors.get(version)
    base = seed if seed is not None else secrets.randbelow(2**31)
    columns = [TextColumn(f"generating with {version.ref}"), BarColumn()]
    with Progress(*columns, MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("rows", total=n)

        def chunks() -> Iterator[Any]:
            for index, start in enumerate(range(0, n, chunk_rows)):
                size = min(chunk_rows, n - start)
                # Each chunk its own seed, derived from the one given: repeatable, not repeated.
                yield pd.DataFrame(predictor.generate(size, base + index))
                bar.advance(task, size)

        written = _write_file(output, chunks())
    console.print(f"Generated {written:,} rows with {version.ref} into {output}")
