"""The steps every training path shares: check the spec, find the source, read the rows, record
the lineage, fit a model that reads its table itself, and register what was trained.

Each path (training/tabular.py, generator_path.py, forecaster_path.py, dask_path.py) is these
steps around its own fit; training/service.py picks the path.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from mlgate.columns import Column
from mlgate.errors import InvalidInput, NotFound
from mlgate.registry.model import Lineage, ModelVersion, Task, check_name
from mlgate.registry.service import (
    NewVersion,
    read_attachment,
    register_version,
    resolve_version,
)
from mlgate.registry.store import ArtifactStore
from mlgate.signing.model import SignVersion
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.training.catalogue import Algorithm, FeatureLayout, get_algorithm
from mlgate.training.generation import WholeFit
from mlgate.training.libraries import library_versions
from mlgate.training.spaces import Space
from mlgate.training.tuning import TuneSpec, search
from mlgate.uow import UnitOfWork

STAGES = ("read", "prepare", "tune", "fit", "evaluate", "report", "register")
AUTO = "auto"


class Progress(Protocol):
    def __call__(self, stage: str, detail: str) -> None:
        """Called as each of STAGES starts, with a line for people to read."""


def quiet(stage: str, detail: str) -> None:
    """Progress nobody reads (a tuning trial's)."""


@dataclass(frozen=True)
class TrainSpec:
    """What to train. Exactly one of `table` and `query` names the rows."""

    model_name: str
    source: str
    target: str
    algorithm: str
    table: str | None = None
    query: str | None = None
    drop: tuple[str, ...] = ()
    params: dict[str, Any] | None = None
    test_size: float = 0.2
    seed: int = 42
    task: Task | None = None  # None: the algorithm's only task, else inferred from the target
    report: bool = True  # plots, importances, coefficients: a few seconds more
    tune: TuneSpec | None = None  # cross-validated search over the algorithm's space
    cv: int | None = None  # k-fold CV metrics of the final model's settings (on with tune/auto)
    snapshot_of: tuple[str, int] | None = None  # retrain on the rows stored with (model, version)
    actor: str = ""  # who asked for it, recorded in the lineage
    dask: str | None = None  # a Dask scheduler's address, or "local": train on that cluster
    partitions: int | None = None  # how many parts the cluster reads (default: 4 per worker)
    partition_by: str | None = None  # the column to split by (default: the integer primary key)
    slices: tuple[str, ...] = ()  # columns to slice the holdout by, for the model card


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    n_rows_without_target: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Rows:
    """The rows a run learns from: where they came from, as read, and as stored (Parquet)."""

    config: SourceConfig
    frame: pd.DataFrame
    snapshot: bytes

    @classmethod
    def read(cls, config: SourceConfig, frame: pd.DataFrame) -> Rows:
        return cls(config, frame, parquet(frame))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.snapshot).hexdigest()


@dataclass(frozen=True)
class Trained:
    """What every path hands the tail they share, `register_trained`."""

    algorithm: Algorithm  # as fitted: auto's choice, not "auto"
    task: Task
    estimator: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    columns: Sequence[Column]
    classes: Sequence[Any] | None
    lineage: Lineage
    fit_seconds: float
    details: dict[str, Any]  # the version's report JSON
    page: bytes | None  # the HTML report, when one was drawn
    at: datetime  # when it was trained: the version's time, and the report's
    n_rows_without_target: int
    warnings: tuple[str, ...]
    # The rows as stored with the version, for retraining: one Parquet file, or a cluster's
    # parts, each written when the registry asks for it.
    snapshot: Mapping[str, bytes | Callable[[], bytes]]


MAX_SLICE_COLUMNS = 20


def check_slices(spec: TrainSpec, columns: Sequence[str]) -> None:
    """Before anything is fitted: every column the card is to be sliced by must be a column of
    the rows read, and not the target (a slow training that ends in a refusal loses an hour)."""
    if len(spec.slices) > MAX_SLICE_COLUMNS:
        raise InvalidInput(f"slice the card by at most {MAX_SLICE_COLUMNS} columns")
    unknown = [c for c in spec.slices if c not in columns or c == spec.target]
    if unknown:
        known = [c for c in columns if c != spec.target]
        shown = ", ".join(known[:30]) + (f", … ({len(known)} in all)" if len(known) > 30 else "")
        raise InvalidInput(
            f"slices: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a column "
            f"of the rows read (nor may the target slice itself); the columns are: {shown}"
        )


def check(spec: TrainSpec) -> Algorithm | None:
    """The spec makes sense before anything is read; its algorithm (None for auto)."""
    check_name("model", spec.model_name)
    algorithm = None if spec.algorithm == AUTO else get_algorithm(spec.algorithm)
    if (spec.table is None) == (spec.query is None):
        raise InvalidInput("name the rows with exactly one of a table and a query")
    if spec.test_size != 0 and not 0.05 <= spec.test_size <= 0.5:
        raise InvalidInput(
            f"the holdout fraction must be 0 (fit on every row, metrics from cross-fitted "
            f"predictions) or lie in [0.05, 0.5], got {spec.test_size}"
        )
    if spec.test_size == 0 and spec.dask:
        raise InvalidInput(
            "a Dask cluster fits on a hashed split; --test-size 0 (every row, cross-fitted "
            "metrics) runs on this machine: leave out --dask, or hold rows out"
        )
    if spec.task is not None and algorithm is not None:
        algorithm.build(spec.task, FeatureLayout(1, 0))  # an algorithm that cannot do it says so
    return algorithm


def source_of(uow: UnitOfWork, spec: TrainSpec) -> SourceConfig:
    with uow:
        config = uow.sources.get(spec.source)
    if config is None:
        raise NotFound(
            f"no source named {spec.source!r}; add it first (`mlgate sources add`, or Sources "
            "in the dashboard)"
        )
    return config


def read_rows(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    open_source: Callable[[SourceConfig], Source],
    spec: TrainSpec,
    config: SourceConfig,
    report: Progress,
) -> Rows:
    """The source's rows, or those stored with the version being retrained."""
    if spec.snapshot_of:
        model_name, number = spec.snapshot_of
        report("read", f"reading the rows stored with {model_name}@v{number}")
        return Rows.read(config, read_snapshot(uow, artifacts, model_name, number))
    report("read", f"reading rows from {spec.source}")
    source = open_source(config)
    try:
        frame = source.read_table(spec.table) if spec.table else source.read_query(spec.query or "")
    finally:
        source.close()
    return Rows.read(config, frame)


def read_snapshot(
    uow: UnitOfWork, artifacts: ArtifactStore, model_name: str, number: int
) -> pd.DataFrame:
    """The training rows stored with a version, as they were read (sha256 checked)."""
    version = resolve_version(uow, model_name, number)
    stored = (version.report or {}).get("attachments") or {}
    parts = sorted(name for name in stored if name.startswith("snapshot/part-"))
    if parts and "snapshot.parquet" not in stored:  # trained on a cluster: one file a partition
        return pd.concat(
            [pd.read_parquet(io.BytesIO(read_attachment(uow, artifacts, version, name)))
             for name in parts],
            ignore_index=True,
        )  # fmt: skip
    data = read_attachment(uow, artifacts, version, "snapshot.parquet")
    return pd.read_parquet(io.BytesIO(data))


def lineage_of(
    spec: TrainSpec,
    config: SourceConfig,
    *,
    n_rows: int,
    data_sha256: str,
    test_size: float | None = None,
) -> Lineage:
    """Where a version's rows came from and how it was trained: every path records it so."""
    return Lineage(
        source_name=config.name,
        source_url=config.redacted_url,
        table=spec.table,
        query=spec.query,
        n_rows=n_rows,
        data_sha256=data_sha256,
        dropped_columns=spec.drop,
        test_size=spec.test_size if test_size is None else test_size,
        seed=spec.seed,
        trained_by=spec.actor,
    )


@dataclass(frozen=True)
class WholeTable:
    """How a model that reads its table itself (a generator, a forecaster) is fitted and tuned:
    no target column of ours, no holdout of ours; its own fit scores it."""

    task: Task
    params: dict[str, Any]  # what the model is built with, before tuning
    fit: Callable[
        [Any, pd.DataFrame, bool, Progress, str], WholeFit
    ]  # (model, rows, draw, .., title)
    title: str  # the report's
    label: str  # the search's, in progress lines
    space: dict[str, Space]
    trial_rows: Callable[[], pd.DataFrame]  # what a tuning trial may see
    trial_error: Callable[[WholeFit], float]  # a trial's score: lower is better


def fit_whole_table(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    whole: WholeTable,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """Tune (if asked) and fit a model that reads its table itself; the lineage's fingerprint
    is the stored rows', and no row lacks a target."""
    tuned: dict[str, Any] = {}
    if spec.tune:
        seen = whole.trial_rows()

        def trial_error(params: dict[str, Any]) -> float:
            trial = algorithm.build(whole.task, FeatureLayout(0, 0), {**whole.params, **params})
            return whole.trial_error(whole.fit(trial, seen, False, quiet, ""))

        tuned, _, _ = search(
            whole.space, spec.tune, seed=spec.seed, label=whole.label, score=trial_error,
            report=report,
        )  # fmt: skip
    estimator = algorithm.build(whole.task, FeatureLayout(0, 0), {**whole.params, **tuned})
    fitted = whole.fit(estimator, rows.frame, spec.report, report, whole.title)
    details = {**fitted.details, "requested_params": spec.params or {}}
    if tuned:
        details["tuned"] = tuned
    return Trained(
        algorithm=algorithm,
        task=whole.task,
        estimator=fitted.model,
        params=json_safe(fitted.model.get_params()),
        metrics=fitted.metrics,
        columns=fitted.columns,
        classes=None,
        lineage=lineage_of(
            spec,
            rows.config,
            n_rows=len(rows.frame),
            data_sha256=rows.sha256,
            test_size=spec.test_size if whole.task == "forecast" else 0.0,
        ),  # fmt: skip
        fit_seconds=fitted.fit_seconds,
        details=details,
        page=fitted.page,
        at=now(),
        n_rows_without_target=0,
        warnings=fitted.notes,
        snapshot={"snapshot.parquet": rows.snapshot},
    )


def register_trained(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    spec: TrainSpec,
    trained: Trained,
    report: Progress,
    sign: SignVersion | None = None,
) -> TrainResult:
    """The tail every path shares: the rows as stored (for retraining) and the report page kept
    with the version, the libraries it ran on named, the version registered."""
    attachments = dict(trained.snapshot)
    if trained.page is not None:
        attachments["report.html"] = trained.page
    new = NewVersion(
        task=trained.task,
        target="" if trained.task == "generation" else spec.target,  # a gan predicts no column
        algorithm=trained.algorithm.name,
        estimator=trained.estimator,
        params=trained.params,
        metrics=trained.metrics,
        columns=trained.columns,
        classes=trained.classes,
        lineage=trained.lineage,
        library_versions=library_versions(),
        fit_seconds=trained.fit_seconds,
        artifact_format=trained.algorithm.format,
        report=trained.details,
        attachments=attachments,
    )
    report("register", f"registering a new version of {spec.model_name}")
    version = register_version(
        uow, artifacts, new, model_name=spec.model_name, now=trained.at, sign=sign
    )
    return TrainResult(version, trained.n_rows_without_target, trained.warnings)


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if value is None or isinstance(value, bool | int | float | str) else repr(value)
        for key, value in params.items()
    }
