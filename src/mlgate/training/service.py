"""The train_model use case: rows from a source -> fitted pipeline -> a registered version."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata
from typing import Any, Protocol

import pandas as pd
from sklearn.model_selection import train_test_split

from mlgate.access.audit import audited
from mlgate.columns import Column
from mlgate.errors import InvalidInput, NotFound
from mlgate.neural.progress import reporting as epochs_reported_to
from mlgate.registry.model import Lineage, ModelVersion, Task, check_name
from mlgate.registry.service import (
    NewVersion,
    read_attachment,
    register_version,
    resolve_version,
)
from mlgate.registry.store import ArtifactStore
from mlgate.schema import feature_columns
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.training import data as training_data
from mlgate.training import inference
from mlgate.training.catalogue import Algorithm, FeatureLayout, get_algorithm
from mlgate.training.crossfit import cross_fit, folds_for
from mlgate.training.evaluate import HOLDOUT, Evaluation, Outputs, evaluate, fit_notes, outputs_of
from mlgate.training.folds import FoldFit
from mlgate.training.forecasting import (
    FORECAST_PARAMS,
    fit_forecaster,
    split_params,
    without_holdout,
)
from mlgate.training.generation import WholeFit, fit_generator
from mlgate.training.preprocess import build_pipeline, layout_of
from mlgate.training.report import ReportInputs, build_report
from mlgate.training.spaces import IntRange
from mlgate.training.tuning import (
    Candidate,
    TuneSpec,
    cross_validate,
    cv_metric,
    cv_metrics,
    search,
    shortlist,
    tune,
)
from mlgate.uow import UnitOfWork

STAGES = ("read", "prepare", "tune", "fit", "evaluate", "report", "register")
AUTO = "auto"
# The libraries a version's lineage names, and the modules they are imported as. Versions are
# read from the modules, never from one distribution's name: XGBoost installs as `xgboost` or
# `xgboost-cpu`, PyTorch as `torch` or a CUDA build, and both import alike.
_LIBRARIES = {
    "mlgate": "mlgate",
    "scikit-learn": "sklearn",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "skops": "skops",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "safetensors": "safetensors",
}


class Progress(Protocol):
    def __call__(self, stage: str, detail: str) -> None:
        """Called as each of STAGES starts, with a line for people to read."""


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


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    n_rows_without_target: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    cross_fitted: bool = False  # no holdout: the "test" rows are every row, predicted out of fold


@dataclass(frozen=True)
class Fitted:
    pipeline: Any
    params: dict[str, Any]
    evaluation: Evaluation
    outputs: Outputs  # what the model said about the holdout rows
    fit_seconds: float
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Trained:
    """What a path that learns on this machine (tabular, forecaster, generator) hands the tail
    they share, `_register_trained`."""

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


@audited("training.train", lambda a: a["spec"].model_name)
def train_model(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    open_source: Callable[[SourceConfig], Source],
    spec: TrainSpec,
    *,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> TrainResult:
    """Train `spec` and register the result as the model's next version.

    Four paths share the steps below: a Dask cluster reads the table itself; a forecaster and a
    generator learn the whole table (training/forecasting.py, training/generation.py); every
    other algorithm learns rows of a table with a target and a holdout (`_train_tabular`).
    The three that learn on this machine hand what they fitted (`Trained`) to one tail,
    `_register_trained`; the Dask path's version is made on the cluster's side.
    """
    report = progress or (lambda stage, detail: None)
    algorithm = _check(spec)
    config = _source_of(uow, spec)
    if spec.dask and not spec.snapshot_of:
        return _train_on_dask(uow, artifacts, spec, algorithm, config, now, report)
    frame = _read_rows(uow, artifacts, open_source, spec, config, report)
    rows = Rows(config, frame, _parquet(frame))
    # A forecaster's own parameters say a forecast is wanted (order_by names the series' order).
    forecasting = spec.task == "forecast" or bool(set(spec.params or {}) & FORECAST_PARAMS)
    if algorithm is not None and "forecast" in algorithm.tasks and forecasting:
        trained = _train_forecaster(spec, algorithm, rows, now, report)
    elif algorithm is not None and algorithm.tasks == ("generation",):
        trained = _train_generator(spec, algorithm, rows, now, report)
    else:
        trained = _train_tabular(spec, algorithm, rows, now, report)
    return _register_trained(uow, artifacts, spec, rows, trained, report)


@dataclass(frozen=True)
class Rows:
    """The rows a run learns from: where they came from, as read, and as stored (Parquet)."""

    config: SourceConfig
    frame: pd.DataFrame
    snapshot: bytes


def _check(spec: TrainSpec) -> Algorithm | None:
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


def _source_of(uow: UnitOfWork, spec: TrainSpec) -> SourceConfig:
    with uow:
        config = uow.sources.get(spec.source)
    if config is None:
        raise NotFound(
            f"no source named {spec.source!r}; add it first (`mlgate sources add`, or Sources "
            "in the dashboard)"
        )
    return config


def _read_rows(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    open_source: Callable[[SourceConfig], Source],
    spec: TrainSpec,
    config: SourceConfig,
    report: Progress,
) -> pd.DataFrame:
    """The source's rows, or those stored with the version being retrained."""
    if spec.snapshot_of:
        model_name, number = spec.snapshot_of
        report("read", f"reading the rows stored with {model_name}@v{number}")
        return read_snapshot(uow, artifacts, model_name, number)
    report("read", f"reading rows from {spec.source}")
    source = open_source(config)
    try:
        return source.read_table(spec.table) if spec.table else source.read_query(spec.query or "")
    finally:
        source.close()


def _train_tabular(
    spec: TrainSpec,
    algorithm: Algorithm | None,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """Rows with a target: prepare, hold out, choose (auto or tuned), cross-validate, fit and
    evaluate, report; train_model registers what it hands back."""
    own_params, standard_errors = inference.standard_errors(spec.params)
    if own_params is not spec.params:  # `se` is the coefficient table's, not the model's
        if algorithm is None or not algorithm.statsmodels_twin:
            raise InvalidInput(
                "se chooses the standard errors of a coefficient table: linear_regression "
                "and logistic_regression have one"
            )
        spec = replace(spec, params=own_params)
    prepared = _prepare(rows.frame, spec, algorithm, report)
    split = split_rows(prepared, spec.test_size, spec.seed)
    algorithm, params, leaderboard = _choose(algorithm, prepared, split, spec, report)
    searched = spec.tune is not None or spec.algorithm == AUTO
    cv: dict[str, tuple[float, float]] = {}
    if split.cross_fitted and not searched:  # --cv sets the cross-fitting's folds instead
        folds = 0
    else:
        folds, cv = _cross_validate(algorithm, prepared, split, params, spec, report)
    report("fit", f"fitting {algorithm.name} ({prepared.task}) on {len(split.X_train):,} rows")
    fitted = fit_and_evaluate(
        algorithm, prepared, split, params, seed=spec.seed, progress=report, folds=spec.cv
    )
    lineage = lineage_of(spec, rows.config, n_rows=prepared.n_rows_read,
                         data_sha256=prepared.sha256)  # fmt: skip
    trained_at = now()
    details: dict[str, Any] = {
        "evaluation": fitted.evaluation.to_json(),
        "notes": list(prepared.notes) + list(fitted.evaluation.notes),
    }
    page: bytes | None = None
    if spec.report:
        report("report", "drawing the report")
        details, page = build_report(
            ReportInputs(
                model_name=spec.model_name,
                algorithm=algorithm.name,
                task=prepared.task,
                target=spec.target,
                pipeline=fitted.pipeline,
                X_train=split.X_train,
                y_train=split.y_train,
                X_test=split.X_test,
                y_test=split.y_test,
                outputs=fitted.outputs,
                evaluation=fitted.evaluation,
                classes=prepared.classes,
                coefficients=algorithm.statsmodels_twin,
                notes=prepared.notes + fitted.evaluation.notes,
                lineage=lineage.to_json(),
                trained_at=trained_at,
                seed=spec.seed,
                cv=cv,
                standard_errors=standard_errors,
                columns=prepared.columns,
            )
        )
    details["n_train"] = len(split.X_train)
    details["requested_params"] = params or {}
    if spec.snapshot_of:
        details["retrained_from"] = {"model": spec.snapshot_of[0], "version": spec.snapshot_of[1]}
    if leaderboard:
        details["leaderboard"] = [c.to_json() for c in leaderboard]
    if cv:
        details["cv"] = {"folds": folds, "metrics": {k: list(v) for k, v in cv.items()}}
    return Trained(
        algorithm=algorithm,
        task=prepared.task,
        estimator=fitted.pipeline,
        params=fitted.params,
        metrics=fitted.evaluation.metrics,
        columns=prepared.columns,
        classes=prepared.classes,
        lineage=lineage,
        fit_seconds=fitted.fit_seconds,
        details=details,
        page=page,
        at=trained_at,
        n_rows_without_target=prepared.n_rows_without_target,
        warnings=prepared.notes + fitted.warnings,
    )


def _prepare(
    frame: pd.DataFrame, spec: TrainSpec, algorithm: Algorithm | None, report: Progress
) -> training_data.TrainingData:
    if not spec.target:
        raise InvalidInput("name the column to predict (the target)")
    report("prepare", f"preparing {len(frame):,} rows")
    tasks: tuple[Task, ...] = ("classification", "regression")
    return training_data.prepare(
        frame,
        target=spec.target,
        drop=spec.drop,
        task=spec.task,
        tasks=[t for t in algorithm.tasks if t in tasks] if algorithm else tasks,
        keep_all=algorithm.positional if algorithm else False,
    )


def _choose(
    algorithm: Algorithm | None,
    prepared: training_data.TrainingData,
    split: Split,
    spec: TrainSpec,
    report: Progress,
) -> tuple[Algorithm, dict[str, Any] | None, list[Candidate]]:
    """The algorithm and parameters to fit: as asked, the best of a shortlist (auto), or the
    best trial of a search (tune); with the leaderboard that chose them."""
    auto = algorithm is None
    if not (auto or spec.tune):
        assert algorithm is not None
        return algorithm, spec.params, []
    pool = shortlist(prepared.task, len(split.X_train), prepared.columns) if auto else []
    leaderboard = _search(pool or [algorithm], prepared, split, spec, report)  # type: ignore[list-item]
    chosen = get_algorithm(leaderboard[0].algorithm)
    params = {**(spec.params or {}), **leaderboard[0].params} if spec.tune else spec.params
    return chosen, None if auto and not spec.tune else params, leaderboard


def _cross_validate(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    spec: TrainSpec,
    report: Progress,
) -> tuple[int, dict[str, tuple[float, float]]]:
    """k-fold metrics of the final settings on the training rows: when asked, and always after
    a search (auto or tune); the number of folds and the metrics (mean, std)."""
    folds = spec.cv or (spec.tune.folds if spec.tune else 5 if spec.algorithm == AUTO else 0)
    if folds and not 2 <= folds <= 20:
        raise InvalidInput(f"cross-validation takes 2 to 20 folds, not {folds}")
    if not folds:
        return 0, {}
    report("tune", f"{folds}-fold cross-validation of {algorithm.name}")
    return folds, cv_metrics(_fold_fit(algorithm, prepared, split, params, spec.seed), folds)


def _fold_fit(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    seed: int,
) -> FoldFit:
    """The split's training rows, to be fitted fold by fold with `algorithm` and `params`."""
    n_classes = len(prepared.classes or ())
    return FoldFit(algorithm, prepared.task, prepared.columns, split.X_train, split.y_train,
                   params, n_classes=n_classes, seed=seed)  # fmt: skip


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


def _register(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    spec: TrainSpec,
    new: NewVersion,
    at: datetime,
    report: Progress,
) -> ModelVersion:
    report("register", f"registering a new version of {spec.model_name}")
    return register_version(uow, artifacts, new, model_name=spec.model_name, now=at)


def _register_trained(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    spec: TrainSpec,
    rows: Rows,
    trained: Trained,
    report: Progress,
) -> TrainResult:
    """The tail every path on this machine shares: the rows as read (for retraining) and the
    report page stored with the version, the libraries it ran on named, the version registered.
    A Dask run's version is made by training/distributed.py: its rows never come here."""
    attachments = {"snapshot.parquet": rows.snapshot}
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
    version = _register(uow, artifacts, spec, new, trained.at, report)
    return TrainResult(version, trained.n_rows_without_target, trained.warnings)


def _train_on_dask(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    spec: TrainSpec,
    algorithm: Algorithm | None,
    config: SourceConfig,
    now: Callable[[], datetime],
    report: Progress,
) -> TrainResult:
    from mlgate.training import distributed

    checked = distributed.check_spec(algorithm, table=spec.table, tuned=bool(spec.tune))
    if not spec.target:
        raise InvalidInput("name the column to predict (the target)")
    assert spec.dask is not None and spec.table is not None
    report("read", f"connecting to the Dask cluster at {spec.dask}")
    with distributed.connect(spec.dask) as client:
        done = distributed.fit_on_dask(
            client, config, checked, table=spec.table, target=spec.target, drop=spec.drop,
            params=spec.params, task=spec.task, test_size=spec.test_size, seed=spec.seed,
            partition_count=spec.partitions, partition_by=spec.partition_by,
            lineage=lambda n_rows, sha256: lineage_of(spec, config, n_rows=n_rows,
                                                      data_sha256=sha256),
            progress=report,
        )  # fmt: skip
        version = _register(uow, artifacts, spec, done.new, now(), report)
    return TrainResult(version, done.n_rows_without_target, done.warnings)


def _train_generator(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """A generator learns the whole table (no target, no holdout): see training/generation.py.
    Tuning minimises the worst column's distance between a trial's rows and the table's."""
    if spec.cv:
        raise InvalidInput(
            "a gan has no folds to score: ask for no cross-validation (tuning works)"
        )
    tuned: dict[str, Any] = {}
    if spec.tune:

        def trial_distance(params: dict[str, Any]) -> float:
            trial = algorithm.build(
                "generation", FeatureLayout(0, 0), {**(spec.params or {}), **params}
            )
            metrics = fit_generator(
                trial, rows.frame, drop=spec.drop, seed=spec.seed, draw_report=False,
                progress=lambda stage, detail: None, title="",
            ).metrics  # fmt: skip
            return max(metrics["ks_max"], metrics["tv_max"])

        tuned, _, _ = search(
            algorithm.space, spec.tune, seed=spec.seed, label="gan", score=trial_distance,
            report=report,
        )  # fmt: skip
    estimator = algorithm.build("generation", FeatureLayout(0, 0), {**(spec.params or {}), **tuned})
    fitted = fit_generator(
        estimator,
        rows.frame,
        drop=spec.drop,
        seed=spec.seed,
        draw_report=spec.report,
        progress=report,
        title=f"{spec.model_name}: synthetic rows",
    )
    return _trained_whole(spec, algorithm, rows, fitted, task="generation", tuned=tuned, at=now())


def _trained_whole(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    fitted: WholeFit,
    *,
    task: Task,
    tuned: dict[str, Any],
    at: datetime,
) -> Trained:
    """What a generator or a forecaster hands the shared tail: models that read their table
    themselves, so the lineage's fingerprint is the stored rows' and nothing lacks a target."""
    details = {**fitted.details, "requested_params": spec.params or {}}
    if tuned:
        details["tuned"] = tuned
    return Trained(
        algorithm=algorithm,
        task=task,
        estimator=fitted.model,
        params=_json_safe(fitted.model.get_params()),
        metrics=fitted.metrics,
        columns=fitted.columns,
        classes=None,
        lineage=lineage_of(
            spec,
            rows.config,
            n_rows=len(rows.frame),
            data_sha256=hashlib.sha256(rows.snapshot).hexdigest(),
            test_size=spec.test_size if task == "forecast" else 0.0,
        ),  # fmt: skip
        fit_seconds=fitted.fit_seconds,
        details=details,
        page=fitted.page,
        at=at,
        n_rows_without_target=0,
        warnings=fitted.notes,
    )


def _train_forecaster(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """A forecaster learns windows of an ordered series: see training/forecasting.py. Tuning
    scores each trial on the end of the training part; the holdout is scored once, at the end."""
    if spec.cv:
        raise InvalidInput(f"{algorithm.name} forecasts are scored on a time holdout, not k folds")
    if spec.test_size == 0:
        raise InvalidInput(
            f"{algorithm.name} forecasts are scored on the last share of each series; give "
            "--test-size between 0.05 and 0.5"
        )
    if not spec.target:
        raise InvalidInput("name the column to forecast (the target)")
    data, network = split_params(spec.params)
    tuned: dict[str, Any] = {}
    if spec.tune:
        horizon = int(algorithm.build("forecast", FeatureLayout(0, 0), network).horizon)
        seen = without_holdout(
            rows.frame, target=spec.target, data=data, test_size=spec.test_size, horizon=horizon
        )

        def trial_error(params: dict[str, Any]) -> float:
            trial = algorithm.build("forecast", FeatureLayout(0, 0), {**network, **params})
            return fit_forecaster(
                trial, seen, target=spec.target, data=data, test_size=spec.test_size,
                draw_report=False, progress=lambda stage, detail: None, title="",
            ).metrics["mae"]  # fmt: skip

        # The window is tuned too (from one season up): it is the forecasters' own knob.
        season = int(data.get("season", 1)) if str(data.get("season", 1)).isdecimal() else 1
        space = {**algorithm.space, "window": IntRange(max(season, 4), max(season, 96), log=True)}
        tuned, _, _ = search(
            space, spec.tune, seed=spec.seed, label=algorithm.name, score=trial_error,
            report=report,
        )  # fmt: skip
    estimator = algorithm.build("forecast", FeatureLayout(0, 0), {**network, **tuned})
    fitted = fit_forecaster(
        estimator,
        rows.frame,
        target=spec.target,
        data=data,
        test_size=spec.test_size,
        draw_report=spec.report,
        progress=report,
        title=f"{spec.model_name}: forecasts",
    )
    return _trained_whole(spec, algorithm, rows, fitted, task="forecast", tuned=tuned, at=now())


def _search(
    pool: list[Algorithm],
    prepared: training_data.TrainingData,
    split: Split,
    spec: TrainSpec,
    report: Progress,
) -> list[Candidate]:
    """Each of `pool` cross-validated on the training rows (tuned if asked), best first."""
    tune_spec = spec.tune
    if tune_spec and tune_spec.seconds and len(pool) > 1:  # share the time among candidates
        tune_spec = TuneSpec(tune_spec.trials, tune_spec.seconds / len(pool), tune_spec.folds)
    out = []
    for algorithm in pool:
        report("tune", f"cross-validating {algorithm.name}")
        if prepared.task not in algorithm.tasks:
            algorithm.build(prepared.task, FeatureLayout(1, 0))  # raises, naming alternatives
        if tune_spec:
            candidate = tune(
                _fold_fit(algorithm, prepared, split, None, spec.seed), tune_spec, report=report
            )
        else:
            started = time.perf_counter()
            mean, std = cross_validate(_fold_fit(algorithm, prepared, split, None, spec.seed), 5)
            candidate = Candidate(
                algorithm.name,
                {},
                mean,
                std,
                cv_metric(prepared.task),
                1,
                time.perf_counter() - started,
            )
        out.append(candidate)
    return sorted(out, key=lambda c: c.cv_score)


def split_rows(prepared: training_data.TrainingData, test_size: float, seed: int) -> Split:
    """A holdout split, stratified by class where every class can appear on both sides. With
    `test_size` 0 there is none: the model learns every row and is evaluated on cross-fitted
    predictions of them all (training/crossfit.py), so both sides are every row."""
    y = prepared.y
    if test_size == 0:
        if prepared.task == "classification" and y.nunique() < 2:
            raise InvalidInput("the rows hold a single class; add rows of the others")
        return Split(prepared.X, prepared.X, y, y, cross_fitted=True)
    n_test = max(1, round(test_size * len(y)))
    counts = y.value_counts()
    stratify = (
        y
        if prepared.task == "classification" and counts.min() >= 2 and n_test >= len(counts)
        else None
    )
    X_train, X_test, y_train, y_test = train_test_split(
        prepared.X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    if prepared.task == "classification" and y_train.nunique() < 2:
        raise InvalidInput("the training split holds a single class; add rows of the others")
    return Split(X_train, X_test, y_train, y_test)


def fit_and_evaluate(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    *,
    seed: int,
    progress: Progress | None = None,
    folds: int | None = None,
) -> Fitted:
    """Build the pipeline for these columns, fit it on the training rows, score the holdout
    (or, with no holdout, cross-fitted predictions of every row on `folds` folds)."""
    task = prepared.task
    features = feature_columns(prepared.columns)
    layout = layout_of(features, split.X_train)
    estimator = algorithm.build(task, layout, params)
    pipeline = build_pipeline(features, estimator, algorithm)
    fit_params = algorithm.fit_params(layout) if algorithm.fit_params else {}
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with epochs_reported_to(progress):  # networks report each epoch (and may be stopped)
                pipeline.fit(
                    split.X_train,
                    split.y_train,
                    **{f"model__{key}": value for key, value in fit_params.items()},
                )
        except ValueError as exc:
            raise InvalidInput(
                f"{algorithm.name} could not be fitted on these rows: {exc}"
            ) from None
    fit_seconds = time.perf_counter() - started
    messages = fit_notes(caught)
    method, baseline = HOLDOUT, None
    if split.cross_fitted:
        n_folds = folds_for(len(split.X_train), folds)
        if progress:
            progress("evaluate", f"cross-fitting {len(split.X_train):,} rows on {n_folds} folds")
        crossed = cross_fit(_fold_fit(algorithm, prepared, split, params, seed), n_folds)
        outputs, method, baseline = crossed.outputs, crossed.method, crossed.baseline
        messages = tuple(dict.fromkeys(messages + crossed.warnings))
    else:
        if progress:
            progress("evaluate", f"scoring {len(split.X_test):,} holdout rows")
        outputs = outputs_of(task, pipeline, split.X_test)
    evaluation = evaluate(
        task,
        split.y_test.to_numpy(),
        outputs,
        split.y_train.to_numpy(),
        n_classes=len(prepared.classes or ()),
        seed=seed,
        method=method,
        baseline=baseline,
    )
    params = _json_safe(estimator.get_params(deep=False))
    return Fitted(pipeline, params, evaluation, outputs, fit_seconds, messages)


def read_snapshot(
    uow: UnitOfWork, artifacts: ArtifactStore, model_name: str, number: int
) -> pd.DataFrame:
    """The training rows stored with a version, as they were read (sha256 checked)."""
    import io

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


def retrain_spec(version: ModelVersion, *, from_snapshot: bool, actor: str = "") -> TrainSpec:
    """The spec that trained `version`: on today's rows of its source, or on its own snapshot."""
    lineage = version.lineage
    params = (version.report or {}).get("requested_params") or {}
    evaluation = (version.report or {}).get("cv")
    return TrainSpec(
        model_name=version.model_name,
        source=lineage.source_name,
        target=version.target,
        algorithm=version.algorithm,
        table=lineage.table,
        query=lineage.query,
        drop=lineage.dropped_columns,
        params=params or None,
        test_size=lineage.test_size,
        seed=lineage.seed,
        task=version.task,
        cv=evaluation["folds"] if evaluation else None,
        snapshot_of=(version.model_name, version.number) if from_snapshot else None,
        actor=actor,
    )


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def library_versions() -> dict[str, str]:
    """The Python and library versions a version is trained with (those installed)."""
    out = {"python": sys.version.split()[0]}
    for name, module in _LIBRARIES.items():
        found = module_version(module, usual=name)
        if found is not None:
            out[name] = found
    return out


def module_version(module: str, *, usual: str | None = None) -> str | None:
    """The version of an importable module: its own `__version__` once imported (the models'
    libraries are), else that of the distribution that installs it, whatever that one is called
    (importing torch only to ask would cost seconds); None when it is not installed. The
    distribution's usual name (`usual`) is asked first: finding it among all installed ones
    reads every distribution's file list (2 s a training here)."""
    loaded = sys.modules.get(module)
    version = getattr(loaded, "__version__", None)
    if isinstance(version, str):
        return version
    if importlib.util.find_spec(module) is None:
        return None
    if usual is not None:
        try:
            return metadata.version(usual)
        except metadata.PackageNotFoundError:
            pass  # installed under another name (xgboost-cpu): look it up
    for distribution in _distributions().get(module, []):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if value is None or isinstance(value, bool | int | float | str) else repr(value)
        for key, value in params.items()
    }
