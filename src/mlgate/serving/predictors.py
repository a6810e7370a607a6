"""Loaded models, kept in memory: each loaded once, after its sha256 and types were checked."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.registry import formats
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.serving.fastpath import compile_preprocessor


@dataclass(frozen=True)
class Scores:
    predictions: list[Any]
    probabilities: list[list[float]] | None


class Predictor:
    """A fitted pipeline ready to score frames conformed to its version's columns."""

    def __init__(self, version: ModelVersion, pipeline: Any) -> None:
        self.version = version
        self._pipeline = pipeline
        # The compiled preprocessor where it reproduces scikit-learn's (see fastpath.py).
        compiled = compile_preprocessor(pipeline[:-1])
        self.compiled = compiled is not None
        self._transform = compiled or pipeline[:-1].transform

    def score(self, frame: pd.DataFrame) -> Scores:
        # Preprocess once, then ask the final estimator for labels and probabilities: calling
        # the pipeline twice would run the (costlier) column transforms twice.
        features = self._transform(frame)
        model = self._pipeline[-1]
        predicted = np.asarray(model.predict(features)).ravel()
        if self.version.task != "classification":
            return Scores(predicted.astype("float64").tolist(), None)
        # Classifiers are fitted on class codes 0..k-1; the version knows the labels.
        labels = np.asarray(self.version.classes or (), dtype=object)
        proba = np.asarray(model.predict_proba(features), dtype="float64")
        return Scores(labels[predicted.astype("int64")].tolist(), proba.tolist())


class PredictorCache:
    """At most `size` predictors, least recently used dropped first. Safe across threads."""

    def __init__(self, artifacts: ArtifactStore, size: int = 32) -> None:
        self._artifacts = artifacts
        self._size = size
        self._items: OrderedDict[tuple[str, int, str], Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def size(self) -> int:
        """How many versions are loaded."""
        with self._lock:
            return len(self._items)

    def get(self, version: ModelVersion) -> Predictor:
        key = (version.model_name, version.number, version.artifact.sha256)
        with self._lock:
            predictor = self._items.get(key)
            if predictor is not None:
                self._items.move_to_end(key)
                return predictor
        # Load outside the lock: a slow load must not hold up predictions of other models.
        data = self._artifacts.get(version.artifact.key)
        pipeline = formats.load(
            data,
            expected_sha256=version.artifact.sha256,
            ref=version.ref,
            fmt=version.artifact.format,
        )
        predictor = Predictor(version, pipeline)
        with self._lock:
            self._items[key] = predictor
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return predictor

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
