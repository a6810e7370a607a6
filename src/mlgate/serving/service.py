"""The predict use case: key -> version -> rows checked against its schema -> predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlgate.errors import Conflict
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.schema import Column, Table
from mlgate.serving.predictors import PredictorCache
from mlgate.uow import UnitOfWork

ParseRows = Callable[[Sequence[Column]], pd.DataFrame | Table]


@dataclass(frozen=True)
class Prediction:
    version: ModelVersion
    predictions: list[Any]
    probabilities: list[list[float]] | None

    @property
    def classes(self) -> list[Any] | None:
        return None if self.version.classes is None else list(self.version.classes)


def predict(
    uow: UnitOfWork,
    predictors: PredictorCache,
    *,
    authorize: Callable[[], object],
    model_name: str,
    number: int | None,
    alias: str | None = None,
    parse_rows: ParseRows,
    admit: Callable[[ModelVersion, int], object] | None = None,
    resolved: Callable[[ModelVersion], object] | None = None,
    resolve: Callable[[str, int | None, str | None], ModelVersion] | None = None,
) -> Prediction:
    """Authorize, find the version (see resolve_version), parse, admit and score the rows.

    `authorize` raises if the caller may not predict with this model; `parse_rows` turns the
    request into a frame for the version's columns; `admit` (the plan's gate) may refuse the
    call once its row count is known, before any scoring; `resolve` (default: resolve_version
    on `uow`) finds the version, a server passes its cached one. Each edge (and protocol) passes
    its own.
    """
    authorize()
    if resolve is None:
        version = resolve_version(uow, model_name, number, alias)
    else:
        version = resolve(model_name, number, alias)
    if resolved is not None:
        resolved(version)
    if version.task == "generation":
        raise Conflict(
            f"{version.ref} generates rows and predicts nothing; "
            f'POST /v1/models/{version.model_name}/generate with {{"n": 10}}'
        )
    if version.task == "forecast":
        raise Conflict(
            f"{version.ref} forecasts a series; "
            f'POST /v1/models/{version.model_name}/forecast with {{"history": [...]}}'
        )
    frame = parse_rows(version.columns)
    if admit is not None:
        admit(version, len(frame))
    scores = predictors.get(version).score(frame)
    return Prediction(version, scores.predictions, scores.probabilities)
