"""Models trained elsewhere, stored as their own files and loaded without unpickling anything.

An imported version's artifact (format ``imported``) is a zip of ``manifest.json`` and the file
as it was given (for an MLflow directory: the model file inside it). The manifest says what the
import found out once, so that loading decides nothing again:

* ``kind``: ``onnx`` (ONNX Runtime, CPU), ``xgboost``, ``lightgbm``, ``catboost`` (their native
  formats) or ``skops`` (a scikit-learn estimator or pipeline);
* ``features``: the model's input columns, in the order the model reads them;
* ``task`` and, for classifiers, how scores become probabilities (``onnx``: which output holds
  labels, which probabilities, or whether one output holds logits);
* ``trusted``: the types a skops file may name beyond `formats.TRUSTED_TYPES`, as given with
  ``--trust`` at import (and recorded in the audit log then).

Loading gives a scikit-learn `Pipeline` like every trained version's: a first step that lays out
the columns (a passthrough `ColumnTransformer` where the model reads a matrix of numbers, which
serving compiles; the frame itself where it reads named columns), and the model behind
``predict`` (class codes 0..k-1 for classifiers) and ``predict_proba``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from mlgate.errors import ArtifactError

IMPORTED = "imported"
KINDS = ("onnx", "xgboost", "lightgbm", "catboost", "skops")
FILE_NAMES = {
    "onnx": "model.onnx",
    "xgboost": "model.ubj",
    "lightgbm": "model.txt",
    "catboost": "model.cbm",
    "skops": "model.skops",
}
# A booster from the libraries' scikit-learn wrappers, saved with skops by MLflow's lightgbm
# and xgboost flavors: their state is the booster's own text or bytes, never code.
WRAPPER_TYPES = frozenset(
    {
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        "collections.OrderedDict",
        "collections.defaultdict",
        "sklearn.preprocessing._label.LabelEncoder",  # an LGBMClassifier's labels
    }
)


@dataclass(frozen=True)
class Packed:
    """An imported model's artifact, ready to store: what `formats.dump` writes as is."""

    data: bytes


def pack(manifest: dict[str, Any], raw: bytes) -> Packed:
    kind = manifest["kind"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps({**manifest, "format": IMPORTED}))
        bundle.writestr(FILE_NAMES[kind], raw)
    return Packed(out.getvalue())


def unpack(data: bytes, ref: str) -> tuple[dict[str, Any], bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            manifest = json.loads(bundle.read("manifest.json"))
            kind = manifest.get("kind")
            if kind not in KINDS:
                raise ArtifactError(f"the artifact of {ref} names an unknown kind {kind!r}")
            return manifest, bundle.read(FILE_NAMES[kind])
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"the artifact of {ref} is not a readable bundle: {exc}") from None


def load(data: bytes, ref: str) -> Any:
    """The pipeline of an imported version's artifact (its sha256 was checked by the caller)."""
    manifest, raw = unpack(data, ref)
    return pipeline_of(manifest, raw, ref)


def pipeline_of(manifest: dict[str, Any], raw: bytes, ref: str) -> Any:
    """The served pipeline of `raw` as the manifest describes it."""
    from sklearn.pipeline import Pipeline

    kind = manifest["kind"]
    model = model_of(manifest, raw, ref)
    features = list(manifest["features"])
    frame = kind == "skops" or (kind == "onnx" and manifest["onnx"]["layout"] == "columns")
    return Pipeline([("columns", _frame_step(features) if frame else _matrix_step(features)),
                     ("model", model)])  # fmt: skip


def model_of(manifest: dict[str, Any], raw: bytes, ref: str) -> Any:
    from mlgate.registry import adapters  # scikit-learn: with the first model loaded

    kind = manifest["kind"]
    task = manifest["task"]
    try:
        if kind == "onnx":
            return adapters.OnnxModel(raw, manifest["onnx"], len(manifest.get("classes") or ()))
        if kind == "skops":
            estimator = _skops(raw, manifest.get("trusted", []), ref)
            return adapters.SkopsModel(estimator, manifest.get("model_classes"))
        if kind == "xgboost":
            import xgboost

            model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
            model.load_model(bytearray(raw))
            # Serving hands it a matrix in the features' order (the version keeps the names).
            model.get_booster().feature_names = None
            return model
        if kind == "lightgbm":
            import lightgbm

            booster = lightgbm.Booster(model_str=raw.decode())
            return adapters.LightGBMModel(booster, classifier=task == "classification")
        import catboost

        cls = (
            catboost.CatBoostClassifier if task == "classification" else catboost.CatBoostRegressor
        )
        return adapters.CatBoostModel(cls().load_model(blob=raw), task == "classification")
    except ImportError as exc:
        raise ArtifactError(f"{ref} needs {exc.name}, which is not installed") from None
    except ArtifactError:
        raise
    except Exception as exc:  # each library raises its own error types on a bad file
        raise ArtifactError(f"the {kind} model of {ref} could not be read: {exc}") from exc


def _matrix_step(features: list[str]) -> Any:
    """The columns side by side as float64, in the model's order: a passthrough
    ColumnTransformer, which serving's compiled preprocessor reads without pandas."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    step = ColumnTransformer([("numeric", "passthrough", features)])
    step.fit(pd.DataFrame({name: [0.0] for name in features}))
    return step


def _frame_step(features: list[str]) -> Any:
    """The frame itself, its columns in the model's order: for models that read names."""
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(lambda frame: frame[features]).fit(None)


def _skops(raw: bytes, trusted: list[str], ref: str) -> Any:
    from mlgate.registry import formats

    return formats.load_skops(raw, ref, WRAPPER_TYPES | frozenset(trusted))


_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def onnx_dtype(type_name: str) -> str | None:
    """The numpy dtype of an ONNX Runtime tensor type, or None for one we do not map."""
    return _ONNX_DTYPES.get(type_name)
