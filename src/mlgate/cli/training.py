"""`mlgate train` and `mlgate algorithms`: fit a model on rows from a source."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlgate.cli.context import console, services
from mlgate.errors import InvalidInput
from mlgate.registry.model import Task
from mlgate.training.catalogue import CATALOGUE, get_algorithm
from mlgate.training.undefined import metric_rows, stated, stated_or_blank

if TYPE_CHECKING:  # scikit-learn and friends load when a command trains, not for --help
    from mlgate.training.service import TrainResult, TrainSpec

algorithms = typer.Typer(help="The algorithms `mlgate train` can fit.", no_args_is_help=True)


def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name; a new version if it exists.")],
    source: Annotated[str, typer.Option(help="A source from `mlgate sources list`.")],
    target: Annotated[
        str, typer.Option(help="The column to predict (a gan learns every column: none).")
    ] = "",
    algorithm: Annotated[
        str,
        typer.Option(
            help=f"One of: {', '.join(sorted(CATALOGUE))}; or auto to cross-validate a shortlist."
        ),
    ] = "logistic_regression",
    table: Annotated[str | None, typer.Option(help="Train on every row of this table.")] = None,
    query: Annotated[str | None, typer.Option(help="Train on the rows this SQL returns.")] = None,
    drop: Annotated[
        list[str] | None, typer.Option(help="A column to leave out (repeatable), e.g. an id.")
    ] = None,
    test_size: Annotated[
        float,
        typer.Option(
            help="Share of rows held out for metrics (0.05-0.5); 0 fits on every row and "
            "evaluates cross-fitted predictions (leave-one-out under 30 rows, else --cv or 5 "
            "folds)."
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the holdout split.")] = 42,
    task: Annotated[
        str | None,
        typer.Option(help="classification or regression; inferred from the target if left out."),
    ] = None,
    tune: Annotated[
        str | None,
        typer.Option(help="Search hyperparameters by cross-validation: trials=50 or time=5m."),
    ] = None,
    report: Annotated[
        bool, typer.Option(help="Draw the report (plots, importances, coefficients).")
    ] = True,
    cv: Annotated[
        int | None,
        typer.Option(help="Also report k-fold cross-validated metrics (on with --tune/auto)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="A hyperparameter, NAME=VALUE (repeatable), e.g. max_depth=6."),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Train on a Dask cluster: a scheduler's address (tcp://host:8786), or local "
            "(one worker per core here). Default: MLGATE_DASK_ADDRESS; `none` trains here."
        ),
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(help="On Dask: how many parts to read (default 4 per worker).")
    ] = None,
    partition_by: Annotated[
        str | None,
        typer.Option(help="On Dask: the column to split by (default: the integer primary key)."),
    ] = None,
    slices: Annotated[
        str | None,
        typer.Option(
            help="Columns to slice the holdout by for the model card, e.g. region,age_band: "
            "each slice's metrics with intervals (`mlgate models card`)."
        ),
    ] = None,
) -> None:
    """Train MODEL on rows from a source and register it as a new version."""
    from mlgate.cli.models import slice_columns
    from mlgate.training.service import TrainSpec
    from mlgate.training.tuning import TuneSpec

    spec = TrainSpec(
        model_name=model,
        source=source,
        target=target,
        algorithm=algorithm,
        table=table,
        query=query,
        drop=tuple(drop or ()),
        params=_params(param or []),
        test_size=test_size,
        seed=seed,
        task=_task(task),
        tune=TuneSpec.parse(tune) if tune else None,
        actor=cli_actor(),
        report=report,
        cv=cv,
        dask=_dask_address(dask, services(ctx).settings.dask_address, algorithm, table, tune),
        partitions=partitions,
        partition_by=partition_by,
        slices=tuple(slice_columns(slices)) if slices else (),
    )
    result = run_training(ctx, spec)
    print_result(result)
    if spec.slices and not any(w.startswith("no slices") for w in result.warnings):
        version = result.version
        console.print(f"metrics per slice of {slices}: mlgate models card {model}@{version.number}")


def _dask_address(
    given: str | None, configured: str | None, algorithm: str, table: str | None, tune: str | None
) -> str | None:
    """--dask as given (a training the cluster cannot do is refused with the reason), else
    MLGATE_DASK_ADDRESS for the trainings the cluster can do."""
    from mlgate.training.distributed import default_address

    if given is not None:
        return None if given.lower() in ("", "none", "off") else given
    return default_address(configured, algorithm, table=table, tuned=bool(tune))


def cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _params(pairs: list[str]) -> dict[str, Any] | None:
    """NAME=VALUE pairs; values read as JSON where they parse (6, 0.1, true, null), else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--param {pair!r}: write NAME=VALUE, e.g. --param max_depth=6")
        try:
            out[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[name.strip()] = raw
    return out or None


def _task(value: str | None) -> Task | None:
    if value is None:
        return None
    if value not in ("classification", "regression"):
        raise InvalidInput(f"--task is classification or regression, not {value!r}")
    return value  # type: ignore[return-value]


def run_training(ctx: typer.Context, spec: TrainSpec) -> TrainResult:
    from mlgate.training.service import STAGES, train_model

    s = services(ctx)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=len(STAGES))

        def report(stage: str, detail: str) -> None:
            progress.update(task, completed=STAGES.index(stage), description=detail)

        result = train_model(
            s.uow(), s.artifacts, s.open_source, spec, now=s.clock, progress=report,
            sign=s.signing.sign_new, slice_card=s.slice_card,
        )  # fmt: skip
        progress.update(task, completed=len(STAGES))
    return result


def print_result(result: TrainResult) -> None:
    version = result.version
    console.print(
        f"[bold]{version.model_name}[/] v{version.number}  {version.algorithm} ({version.task})  "
        f"{version.lineage.n_rows:,} rows  fitted in {version.fit_seconds:.2f}s"
    )
    evaluation = (version.report or {}).get("evaluation", {})
    cv = (version.report or {}).get("cv", {})
    forecast = (version.report or {}).get("forecast", {})
    generation = (version.report or {}).get("generation", {})
    if generation:  # a generator is judged against the table it learnt
        held_out = f"synthetic vs {generation['compared_rows']:,} real rows"
    elif forecast:  # a forecaster is scored on the held-out ends of its series
        held_out = f"holdout ({forecast.get('test_windows', '?')} windows of {forecast['horizon']})"
    else:
        from mlgate.training.evaluate import metrics_heading

        held_out = metrics_heading(evaluation)
    columns = [held_out, "value", "95% interval"]
    columns += ["baseline"] + ([f"{cv['folds']}-fold CV (mean ± sd)"] if cv else [])
    table = Table(*columns)
    for row in metric_rows(version.metrics, evaluation):
        name, low_high = row["name"], row["interval"]
        interval = (
            f"{stated(low_high[0], '.4f')} – {stated(low_high[1], '.4f')}" if low_high else ""
        )
        base = stated_or_blank(row["baseline"], ".4f", row["reason"])
        cells = [name, stated(row["value"], ".4f", row["reason"]), interval, base]
        if cv:
            mean_sd = cv["metrics"].get(name)
            cells.append(
                f"{stated(mean_sd[0], '.4f')} ± {stated(mean_sd[1], '.4f')}" if mean_sd else ""
            )
        table.add_row(*cells)
    console.print(table)
    leaderboard = (version.report or {}).get("leaderboard", [])
    if leaderboard:
        board = Table("candidate", f"cv {leaderboard[0]['metric']}", "± sd", "trials", "seconds")
        for row in leaderboard:
            board.add_row(
                row["algorithm"],
                f"{row['cv_score']:.4f}",
                f"{row['cv_std']:.4f}",
                str(row["trials"]),
                f"{row['seconds']:.1f}",
            )
        console.print(board)
    if result.n_rows_without_target:
        console.print(
            f"[yellow]note[/] {result.n_rows_without_target:,} rows had no "
            f"{version.target!r} and were left out"
        )
    shown = set(result.warnings)
    for note in (version.report or {}).get("notes", []):  # the evaluation's and the report's
        if note not in shown:
            console.print(f"[yellow]note[/] {note}")
    for message in result.warnings:
        console.print(f"[yellow]note[/] {message}")


@algorithms.command("list")
def list_algorithms() -> None:
    """List the algorithms in the catalogue."""
    table = Table("name", "tasks", "what it does")
    for algorithm in CATALOGUE.values():
        table.add_row(algorithm.name, ", ".join(algorithm.tasks), algorithm.description)
    console.print(table)


@algorithms.command("show")
def show_algorithm(name: str) -> None:
    """Show an algorithm's tasks, defaults and search space."""
    algorithm = get_algorithm(name)
    console.print(f"[bold]{algorithm.name}[/] ({', '.join(algorithm.tasks)}; {algorithm.library})")
    console.print(algorithm.description)
    console.print(
        f"scaling: {'yes' if algorithm.needs_scaling else 'no'}; categories: {algorithm.encoding}; "
        f"saved as: {algorithm.format}"
    )
    space = Table("parameter", "default", "search space")
    for key, value in sorted(algorithm.defaults().items()):
        dist = algorithm.space.get(key)
        space.add_row(key, repr(value), "" if dist is None else str(dist))
    console.print(space)
