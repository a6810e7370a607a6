"""Offline scoring: a whole table (or query) through a model version, chunk by chunk, so that a
table larger than memory streams from the source to the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import parse_ref, resolve_version
from mlgate.schema import conform
from mlgate.serving.predictors import PredictorCache
from mlgate.sources.base import Source
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
