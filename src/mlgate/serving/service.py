"""The predict use case: key -> version -> rows checked against its schema -> predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlgate.access.service import authenticate
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.schema import Column
from mlgate.serving.predictors import PredictorCache
from mlgate.uow import UnitOfWork

ParseRows = Callable[[Sequence[Column]], pd.DataFrame]


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
    server_secret: bytes,
    *,
    authorization: str | None,
    model_name: str,
    number: int | None,
    parse_rows: ParseRows,
) -> Prediction:
    """Authenticate, find the version (latest when `number` is None), parse and score the rows.

    `parse_rows` turns the request into a frame for the version's columns; each protocol at the
    edge passes its own.
    """
    authenticate(uow, server_secret, authorization, scope="predict")
    version = resolve_version(uow, model_name, number)
    frame = parse_rows(version.columns)
    scores = predictors.get(version).score(frame)
    return Prediction(version, scores.predictions, scores.probabilities)
