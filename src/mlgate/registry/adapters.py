"""Models read from files behind the estimator contract serving and the reports use.

`predict` gives class codes 0..k-1 for classifiers (the version knows their labels) and values
for regressors; `predict_proba` the probabilities in the codes' order. They are scikit-learn
estimators only as far as a `Pipeline` asks before it predicts: fitted already, never refitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from mlgate.errors import ArtifactError


class Fitted(BaseEstimator):  # type: ignore[misc]
    """What scikit-learn asks of a pipeline's last step before it predicts: fitted already,
    and never fitted again here."""

    def fit(self, X: Any, y: Any = None) -> Fitted:
        raise ArtifactError("a model trained elsewhere is not refitted by mlgate")

    def __sklearn_is_fitted__(self) -> bool:
        return True


class SkopsModel(Fitted):
    """A scikit-learn estimator or pipeline of someone else's: it reads the frame by column
    names; its classes become codes 0..k-1 in the order of `classes_`."""

    def __init__(self, estimator: Any, model_classes: list[Any] | None) -> None:
        self.estimator = estimator
        self.model_classes = model_classes
        self.classifier = model_classes is not None
        self._codes = {label: k for k, label in enumerate(model_classes or ())}

    def predict(self, X: Any) -> np.ndarray:
        out = np.asarray(self.estimator.predict(X))
        if not self.classifier:
            return out.astype("float64").ravel()
        return np.array([self._codes[v] for v in out.ravel().tolist()], dtype="int64")

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X), dtype="float64")


class CatBoostModel(Fitted):
    """A CatBoost model loaded from its cbm file; labels become codes by the classes' order."""

    def __init__(self, model: Any, classifier: bool) -> None:
        self.model = model
        self.classifier = classifier

    def predict(self, X: Any) -> np.ndarray:
        if self.classifier:
            return np.asarray(np.argmax(self.predict_proba(X), axis=1))
        return np.asarray(self.model.predict(X), dtype="float64").ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype="float64")

    # What TreeSHAP asks of a CatBoost model (explainers/explain.py).
    def get_cat_feature_indices(self) -> list[int]:
        return list(self.model.get_cat_feature_indices())

    def get_feature_importance(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.get_feature_importance(*args, **kwargs)


class OnnxModel(Fitted):
    """An ONNX graph run by ONNX Runtime on the CPU, with the layout the import found:

    * ``layout`` "matrix": one input [N, k] of numbers; "columns": one input per column;
    * ``batch``: 0 where the first dimension is dynamic, else its fixed size (1: row by row);
    * classifiers: ``label`` (an output of labels, or None), ``proba`` (an output of
      probabilities: a tensor, or a sequence of maps), ``scores`` ("probabilities", "logits"
      or "logit": one output, softmax or sigmoid applied).
    """

    def __init__(self, raw: bytes, spec: dict[str, Any], n_classes: int) -> None:
        import os

        import onnxruntime

        threads = os.environ.get("OMP_NUM_THREADS", "")  # as `mlgate serve` sets it per worker
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads) if threads.isdecimal() else 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.raw = raw
        self.session = onnxruntime.InferenceSession(
            raw, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.spec = spec
        self.n_classes = n_classes
        self.classifier = n_classes > 0

    def _feeds(self, X: Any) -> dict[str, Any]:
        inputs = self.spec["inputs"]
        if self.spec["layout"] == "matrix":
            only = inputs[0]
            return {only["name"]: np.ascontiguousarray(X, dtype=only["dtype"])}
        feeds = {}
        for spec in inputs:
            values = X[spec["columns"][0]].to_numpy()
            if spec["dtype"] == "object":
                values = np.array(["" if v is None or v != v else str(v) for v in values],
                                  dtype=object)  # fmt: skip
            else:
                values = values.astype(spec["dtype"])
            feeds[spec["name"]] = values.reshape(-1, 1) if spec["rank"] == 2 else values
        return feeds

    def run(self, X: Any) -> list[Any]:
        names = [n for n in (self.spec.get("label"), self.spec.get("proba")) if n]
        names = names or [self.spec["output"]]
        feeds = self._feeds(X)
        if self.spec["batch"] != 1:
            return list(self.session.run(names, feeds))
        n = len(next(iter(feeds.values())))
        parts = [self.session.run(names, {k: v[i : i + 1] for k, v in feeds.items()})
                 for i in range(n)]  # fmt: skip
        return [
            [m for p in parts for m in p[j]] if isinstance(parts[0][j], list)
            else np.concatenate([p[j] for p in parts]) if n else np.empty((0,))
            for j in range(len(names))
        ]  # fmt: skip

    def predict(self, X: Any) -> np.ndarray:
        if not self.classifier:
            return np.asarray(self.run(X)[0], dtype="float64").reshape(len(X), -1)[:, 0]
        label = self.spec.get("label")
        if not label:
            return np.asarray(np.argmax(self.predict_proba(X), axis=1))
        labels = np.asarray(self.run(X)[0]).ravel().tolist()
        codes = {v: k for k, v in enumerate(self.spec["model_classes"])}
        return np.array([codes[v] for v in labels], dtype="int64")

    def predict_proba(self, X: Any) -> np.ndarray:
        outputs = self.run(X)
        scores = self.spec.get("scores", "probabilities")
        if self.spec.get("proba"):
            found = outputs[-1]
            if isinstance(found, list):  # ZipMap: one {class: probability} per row
                order = self.spec["model_classes"]
                return np.array([[row[c] for c in order] for row in found], dtype="float64")
            return np.asarray(found, dtype="float64").reshape(len(X), -1)
        values = np.asarray(outputs[0], dtype="float64").reshape(len(X), -1)
        if scores == "logit":  # one column: the second class's log-odds
            p = 1 / (1 + np.exp(-values[:, 0]))
            return np.column_stack([1 - p, p])
        if scores == "logits":
            shifted = np.exp(values - values.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        return values


class LightGBMModel(Fitted):
    """A LightGBM booster loaded from its text format, behind predict / predict_proba."""

    def __init__(self, booster: Any, *, classifier: bool) -> None:
        self.booster = booster
        self.classifier = classifier
        if classifier:  # what converters (skl2onnx) read off a classifier
            self.classes_ = np.arange(max(2, int(booster.dump_model(num_iteration=1)["num_class"])))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.classifier else "regressor"
        return tags

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = np.asarray(self.booster.predict(X), dtype="float64")
        return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, X: Any) -> np.ndarray:
        if self.classifier:
            return np.asarray(np.argmax(self.predict_proba(X), axis=1))
        return np.asarray(self.booster.predict(X), dtype="float64")
