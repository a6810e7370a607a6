"""Loaded models, kept in memory: each loaded once, after its sha256 and types were checked."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from mlgate.errors import Conflict, FieldError, InvalidInput
from mlgate.registry import formats
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.scorers import Scored, fast_scorer
from mlgate.runtime.switches import Guarded

if TYPE_CHECKING:  # scikit-learn loads with the first model, not with the CLI or the server
    from collections.abc import Callable

    from mlgate.runtime.fastpath import Rows

T = TypeVar("T")


@dataclass(frozen=True)
class Scores:
    predictions: list[Any]
    probabilities: list[list[float]] | None


class Predictor:
    """A fitted pipeline ready to score frames conformed to its version's columns."""

    def __init__(self, version: ModelVersion, pipeline: Any) -> None:
        self._fast: Guarded[Scored | None] | None = None
        self.version = version
        self._pipeline = pipeline
        self._attached: dict[str, Any] = {}
        self._attached_lock = threading.Lock()
        if version.task in ("generation", "forecast"):  # whole models: their own inputs
            self._compiled, self.compiled, self._model, self._fast = None, False, pipeline, None
            self._labels_from_proba = False
            return
        # The compiled preprocessor and the fast scorer where they reproduce the library
        # (fastpath.py, scorers.py: checked on probe rows as they are built); each retired for
        # good, logged once, should it ever raise (switches.py).
        from mlgate.runtime.fastpath import compile_preprocessor

        compiled = compile_preprocessor(pipeline[:-1])
        self.compiled = compiled is not None
        self._compiled = Guarded(
            f"compiled preprocessor of {version.ref}", compiled, self._library_transform
        )
        self._model = pipeline[-1]
        self._labels_from_proba = _labels_are_argmax(self._model)
        fast = fast_scorer(self._model, version.task == "classification", model_threads())
        if fast is not None:
            self._fast = Guarded(f"fast scorer of {version.ref}", fast, _library_scores)

    def _transform(self, rows: Rows) -> Any:
        """The model's input: a numpy matrix, or a sparse one where text is vectorised."""
        if self._compiled is not None:
            return self._compiled(rows)
        return self._library_transform(rows)

    def _library_transform(self, rows: Rows) -> Any:
        from mlgate.schema import Table  # pandas: not at import, the CLI starts without it

        frame = rows.to_frame() if isinstance(rows, Table) else rows
        return self._pipeline[:-1].transform(frame)

    @property
    def scorer(self) -> str:
        """What scores this model's dense rows now, as a trace names it: `fast` (runtime's own
        scorer, checked against the library) or `library`; `compiled+` where the compiled
        preprocessor still reproduces the library's."""
        fast = self._fast is not None and self._fast.active
        compiled = self._compiled is not None and self._compiled.active
        return ("compiled+" if compiled else "") + ("fast" if fast else "library")

    @property
    def pipeline(self) -> Any:
        """The fitted pipeline as loaded (the model is its last step)."""
        return self._pipeline

    def features(self, rows: Rows) -> Any:
        """The matrix the model takes for these rows (through the compiled preprocessor where it
        reproduces the library's)."""
        return self._transform(rows)

    def attached(self, key: str, make: Callable[[], T]) -> T:
        """What is made once per loaded model and kept with it (its explainer): made by `make`
        the first time `key` is asked for, under a lock, and dropped with the model."""
        with self._attached_lock:
            if key not in self._attached:
                self._attached[key] = make()
            return cast("T", self._attached[key])

    def generate(self, n: int, seed: int | None) -> list[dict[str, Any]]:
        """`n` synthetic rows of a generator, as JSON values (missing values as null)."""
        if self.version.task != "generation":
            raise Conflict(f"{self.version.ref} predicts from rows; only gan models generate rows")
        frame = self._model.sample(n, seed)
        records: list[dict[str, Any]] = (
            frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        )
        return records

    def forecast(self, history: list[float]) -> list[float]:
        """The next `horizon` values after `history` (its last `window` values are read)."""
        if self.version.task != "forecast":
            raise Conflict(f"{self.version.ref} does not forecast; rnn, lstm and gru models do")
        window = int(self._model.window)
        if len(history) < window:
            raise InvalidInput(
                f"history holds {len(history)} values; {self.version.ref} reads the last "
                f"{window}, so send at least that many",
                errors=[FieldError("history", f"at least {window} values")],
            )
        recent = np.asarray(history[-window:], dtype="float64").reshape(1, -1)
        if not np.isfinite(recent).all():
            raise InvalidInput(
                "history must hold numbers only, none missing",
                errors=[FieldError("history", "a missing or non-finite value")],
            )
        values: list[float] = self._model.predict(recent)[0].tolist()
        return values

    def score(self, rows: Rows) -> Scores:
        if self.version.task in ("generation", "forecast"):
            action = "generate" if self.version.task == "generation" else "forecast"
            raise Conflict(
                f"{self.version.ref} does not score rows; "
                f"POST /v1/models/{self.version.model_name}/{action}"
            )
        # Preprocess once, then ask the final estimator for labels and probabilities: calling
        # the pipeline twice would run the (costlier) column transforms twice.
        features = self._transform(rows)
        model = self._model
        # The fast scorers were checked on dense matrices; text features come sparse.
        dense = isinstance(features, np.ndarray)
        fast = self._fast(features) if self._fast is not None and dense else None
        if self.version.task != "classification":
            predicted = fast[0] if fast is not None else np.asarray(model.predict(features))
            return Scores(predicted.ravel().astype("float64").tolist(), None)
        if fast is not None:
            proba, codes = np.asarray(fast[0], dtype="float64"), fast[1]
        else:
            proba, codes = np.asarray(model.predict_proba(features), dtype="float64"), None
        if codes is None and self._labels_from_proba:
            codes = proba.argmax(axis=1)
        elif codes is None:
            codes = np.asarray(model.predict(features)).ravel().astype("int64")
        # Classifiers are fitted on class codes 0..k-1; the version knows the labels.
        labels = np.asarray(self.version.classes or (), dtype=object)
        return Scores(labels[codes].tolist(), proba.tolist())


def _library_scores(features: Any) -> None:
    """A retired fast scorer's stand-in: no scores, so the model itself is asked."""
    return None


# Classifiers whose predict() is, in their own code, the argmax of predict_proba(): for them
# one call gives both. Others (an SVM's Platt scaling, a linear model's decision function at
# exactly 0) may differ from that argmax, so they are asked twice.
_ARGMAX_CLASSIFIERS = {
    ("xgboost.sklearn", "XGBClassifier"),
    ("lightgbm.sklearn", "LGBMClassifier"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
}


def model_threads() -> int | None:
    """Threads a model library may use per prediction: OMP_NUM_THREADS, which `mlgate serve`
    sets to the cores divided by the workers (unset: the library's own default)."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    return int(raw) if raw.isdecimal() and int(raw) > 0 else None


def limit_model_threads() -> None:
    """Hold the numeric libraries already loaded (OpenMP, BLAS) to model_threads()."""
    threads = model_threads()
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


def _labels_are_argmax(model: Any) -> bool:
    kind = type(model)
    return (kind.__module__, kind.__qualname__) in _ARGMAX_CLASSIFIERS


class PredictorCache:
    """At most `size` predictors, least recently used dropped first. Safe across threads."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        size: int = 32,
        verify: Callable[[ModelVersion, bytes], None] | None = None,
    ) -> None:
        self._artifacts = artifacts
        self._size = size
        # Checks a version's signature over its bytes before they are built (signing/: bound at
        # the composition root); raises to refuse the load.
        self.verify = verify
        self._items: OrderedDict[tuple[str, int, str], Predictor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """How many versions it keeps loaded at most."""
        return self._size

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
        if self.verify is not None:
            self.verify(version, data)
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
