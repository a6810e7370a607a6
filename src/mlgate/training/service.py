"""The train_model use case: rows from a source -> fitted pipeline -> a registered version."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any, Protocol

from sklearn.model_selection import train_test_split

from mlgate.errors import InvalidInput, NotFound
from mlgate.registry.model import Lineage, ModelVersion, check_name
from mlgate.registry.service import register_version
from mlgate.registry.store import ArtifactStore
from mlgate.sources.base import Source, SourceConfig
from mlgate.training import data as training_data
from mlgate.training.catalogue import get_algorithm
from mlgate.training.evaluate import evaluate
from mlgate.training.preprocess import build_pipeline
from mlgate.uow import UnitOfWork

STAGES = ("read", "prepare", "fit", "evaluate", "register")
_LIBRARIES = ("mlgate", "scikit-learn", "numpy", "pandas", "scipy", "skops")


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


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    n_rows_without_target: int
    warnings: tuple[str, ...]


def train_model(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    open_source: Callable[[SourceConfig], Source],
    spec: TrainSpec,
    *,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> TrainResult:
    report = progress or (lambda stage, detail: None)
    check_name("model", spec.model_name)
    algorithm = get_algorithm(spec.algorithm)
    if (spec.table is None) == (spec.query is None):
        raise InvalidInput("name the rows with exactly one of --table and --query")
    if not 0.05 <= spec.test_size <= 0.5:
        raise InvalidInput(f"the holdout fraction must lie in [0.05, 0.5], got {spec.test_size}")
    estimator = algorithm.build(spec.params)

    with uow:
        config = uow.sources.get(spec.source)
    if config is None:
        raise NotFound(f"no source named {spec.source!r}; add one with `mlgate sources add`")

    report("read", f"reading rows from {spec.source}")
    source = open_source(config)
    try:
        frame = source.read_table(spec.table) if spec.table else source.read_query(spec.query or "")
    finally:
        source.close()

    report("prepare", f"preparing {len(frame):,} rows")
    prepared = training_data.prepare(frame, target=spec.target, drop=spec.drop, task=algorithm.task)
    stratify = (
        prepared.y if algorithm.task == "classification" and _stratifiable(prepared.y) else None
    )
    X_train, X_test, y_train, y_test = train_test_split(
        prepared.X, prepared.y, test_size=spec.test_size, random_state=spec.seed, stratify=stratify
    )

    report("fit", f"fitting {algorithm.name} on {len(X_train):,} rows")
    pipeline = build_pipeline(prepared.columns, estimator, scale=algorithm.needs_scaling)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started

    report("evaluate", f"scoring {len(X_test):,} holdout rows")
    metrics = evaluate(algorithm.task, pipeline, X_test, y_test, prepared.classes)

    report("register", f"registering a new version of {spec.model_name}")
    version = register_version(
        uow,
        artifacts,
        model_name=spec.model_name,
        task=algorithm.task,
        target=spec.target,
        algorithm=algorithm.name,
        estimator=pipeline,
        params=_json_safe(estimator.get_params(deep=False)),
        metrics=metrics,
        columns=prepared.columns,
        classes=prepared.classes,
        lineage=Lineage(
            source_name=config.name,
            source_url=config.redacted_url,
            table=spec.table,
            query=spec.query,
            n_rows=prepared.n_rows_read,
            data_sha256=prepared.sha256,
            dropped_columns=spec.drop,
            test_size=spec.test_size,
            seed=spec.seed,
        ),
        library_versions=library_versions(),
        fit_seconds=fit_seconds,
        now=now(),
    )
    messages = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return TrainResult(version, prepared.n_rows_without_target, messages)


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _stratifiable(y: Any) -> bool:
    return bool(y.value_counts().min() >= 2)


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if value is None or isinstance(value, bool | int | float | str) else repr(value)
        for key, value in params.items()
    }
