"""Offline scoring: a whole table (or query) through a model version, chunk by chunk, so that a
table larger than memory streams from the source to the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import parse_ref, resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.uow import UnitOfWork

PREDICTION = "prediction"


@dataclass(frozen=True)
class Scoring:
    version: ModelVersion
    total: int | None  # rows to score, where the source can tell cheaply
    chunks: Iterator[pd.DataFrame]  # the input rows with the prediction (and probabilities)


def score_rows(
    uow: UnitOfWork,
    predictors: PredictorCache,
    source: Source,
    *,
    model_ref: str,
    table: str | None = None,
    query: str | None = None,
    chunk_rows: int = 50_000,
) -> Scoring:
    if (table is None) == (query is None):
        raise InvalidInput("give --table or --query (one of them)")
    if chunk_rows < 1:
        raise InvalidInput("--chunk-rows must be at least 1")
    name, number, alias = parse_ref(model_ref)
    version = resolve_version(uow, name, number, alias)
    predictor = predictors.get(version)
    if table is not None:
        total = source.count(table)
        rows = source.iter_table(table, chunk_rows)
    else:
        total, rows = None, source.iter_query(query or "", chunk_rows)
    return Scoring(version, total, _scored(rows, version, predictor.score))


def _scored(
    chunks: Iterator[pd.DataFrame], version: ModelVersion, score: Callable[[pd.DataFrame], object]
) -> Iterator[pd.DataFrame]:
    taken = {PREDICTION} | {f"probability_{c}" for c in version.classes or ()}
    for chunk in chunks:
        clash = taken & set(chunk.columns)
        if clash:
            raise InvalidInput(
                f"the rows already have column(s) {', '.join(sorted(clash))}; select them away"
            )
        scores = score(conform(chunk, version.columns))
        out = chunk.copy()
        out[PREDICTION] = scores.predictions  # type: ignore[attr-defined]
        probabilities = scores.probabilities  # type: ignore[attr-defined]
        if probabilities is not None:
            matrix = np.asarray(probabilities, dtype="float64")
            for i, label in enumerate(version.classes or ()):
                out[f"probability_{label}"] = matrix[:, i]
        yield out


def score_on_cluster(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    client: Any,
    config: SourceConfig,
    *,
    model_ref: str,
    table: str,
    partitions: int | None = None,
    partition_by: str | None = None,
    verify: Callable[[ModelVersion, bytes], None] | None = None,
) -> Scoring:
    """Score a SQL table on a Dask cluster: the workers read its partitions and score them with
    the version's artifact (its signature checked here by `verify`, PredictorCache.verify, as
    serving checks it; sent to each worker as bytes and loaded there with the same sha256 and
    trust-list checks as here); the scored partitions come back one after another, so the
    caller writes them out with one partition in memory (two while the next is fetched)."""
    from dask.delayed import delayed

    from mlgate.sources import partitions as parts
    from mlgate.sources.sql import SqlSource

    name, number, alias = parse_ref(model_ref)
    version = resolve_version(uow, name, number, alias)
    workers = len(client.scheduler_info()["workers"])
    source = SqlSource(config.name, config.url)
    try:
        plan = parts.plan(
            source, table, partitions=partitions or max(4, 4 * workers), column=partition_by
        )
        total = source.count(table)
    finally:
        source.close()
    frame = parts.to_dask(config, plan, raw=True)
    data = artifacts.get(version.artifact.key)
    if verify is not None:
        verify(version, data)
    blob = client.scatter(data, broadcast=True)

    def score_part(rows: pd.DataFrame, data: bytes) -> pd.DataFrame:
        return next(_scored(iter([rows]), version, worker_predictor(version, data).score))

    def chunks() -> Iterator[pd.DataFrame]:
        pending = [client.compute(delayed(score_part)(p, blob)) for p in frame.to_delayed()[:2]]
        rest = iter(frame.to_delayed()[2:])
        while pending:
            done = pending.pop(0).result()
            following = next(rest, None)
            if following is not None:
                pending.append(client.compute(delayed(score_part)(following, blob)))
            yield done

    return Scoring(version, total, chunks())


_LOADED: dict[str, Any] = {}  # on a worker: predictors by artifact sha256


def worker_predictor(version: ModelVersion, data: bytes) -> Any:
    from mlgate.registry import formats
    from mlgate.runtime.predictors import Predictor

    found = _LOADED.get(version.artifact.sha256)
    if found is None:
        pipeline = formats.load(
            data, expected_sha256=version.artifact.sha256, ref=version.ref,
            fmt=version.artifact.format,
        )  # fmt: skip
        found = _LOADED[version.artifact.sha256] = Predictor(version, pipeline)
    return found
