"""Saving fitted models in data-only formats, and loading them only if they are what we saved.

* ``skops``: a scikit-learn pipeline (preprocessing and estimator) as a skops file, whose entries
  name every type they hold.
* ``xgboost``, ``lightgbm``, ``catboost``: a zip of ``manifest.json``, the preprocessing as skops,
  and the booster in its library's own format (XGBoost UBJSON, LightGBM text, CatBoost cbm).
* ``imported``: a model trained elsewhere (registry/foreign.py): a zip of ``manifest.json`` and
  the file as it was given (ONNX, a native booster file, or skops).
* ``torch``: a zip of ``manifest.json``, the preprocessing as skops, ``network.json`` (the
  architecture, parameters and fitted state as plain JSON) and ``model.safetensors`` (the
  weights). The network is rebuilt from the JSON, then the weights are loaded into it.

Loading checks, in order: the sha256 recorded at registration, then that every type in every skops
part is on `TRUSTED_TYPES`. Nothing is unpickled; a file naming any other type is refused before
anything is built from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from mlgate.errors import ArtifactError

SKOPS = "skops"
BOOSTERS = ("xgboost", "lightgbm", "catboost")
NEURAL = "torch"
IMPORTED = "imported"  # a model trained elsewhere, in its own file (registry/foreign.py)
# Saved whole, without a preprocessing pipeline: they read and write their data themselves.
WHOLE = ("TabularGAN", "SequenceForecaster")
_BOOSTER_FILE = {"xgboost": "model.ubj", "lightgbm": "model.txt", "catboost": "model.cbm"}

_SKLEARN = [
    "calibration.CalibratedClassifierCV",
    "calibration._CalibratedClassifier",
    "calibration._SigmoidCalibration",
    "compose._column_transformer.ColumnTransformer",
    "ensemble._forest.RandomForestClassifier",
    "ensemble._forest.RandomForestRegressor",
    "feature_extraction.text.TfidfTransformer",
    "feature_extraction.text.TfidfVectorizer",
    "impute._base.SimpleImputer",
    "linear_model._base.LinearRegression",
    "linear_model._coordinate_descent.ElasticNet",
    "linear_model._coordinate_descent.Lasso",
    "linear_model._logistic.LogisticRegression",
    "linear_model._ridge.Ridge",
    "naive_bayes.BernoulliNB",
    "naive_bayes.ComplementNB",
    "naive_bayes.GaussianNB",
    "naive_bayes.MultinomialNB",
    "neighbors._classification.KNeighborsClassifier",
    "neighbors._kd_tree.KDTree",
    "neighbors._ball_tree.BallTree",
    "metrics._dist_metrics.EuclideanDistance64",
    "neighbors._regression.KNeighborsRegressor",
    "pipeline.Pipeline",
    "preprocessing._data.StandardScaler",
    "preprocessing._function_transformer.FunctionTransformer",  # "passthrough" once fitted
    "preprocessing._encoders.OneHotEncoder",
    "preprocessing._encoders.OrdinalEncoder",
    "svm._classes.LinearSVC",
    "svm._classes.LinearSVR",
    "svm._classes.SVC",
    "svm._classes.SVR",
    "tree._classes.DecisionTreeClassifier",
    "tree._classes.DecisionTreeRegressor",
    "tree._tree.Tree",
]
TRUSTED_TYPES = frozenset(
    [f"sklearn.{name}" for name in _SKLEARN]
    + [f"builtins.{name}" for name in ("bool", "dict", "float", "int", "list", "set", "slice")]
    + ["builtins.str", "builtins.tuple", "builtins.frozenset"]
    + ["numpy.ndarray", "numpy.dtype", "numpy.bool_", "numpy.float64", "numpy.int64"]
    + ["numpy.float32", "numpy.int32", "numpy.str_", "numpy.random._generator.Generator"]
    + ["numpy.random.mtrand.RandomState", "numpy.random._pcg64.PCG64"]
    + ["scipy.sparse._csr.csr_matrix", "numpy.median"]
    + ["mlgate.runtime.encoders.OneHot"]
    + ["mlgate.training.encoders.OneHot"]  # its path in model files written before the move
)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump(pipeline: Any, fmt: str = SKOPS) -> bytes:
    """The fitted pipeline as bytes in `fmt`; refuses anything made of types we would not load."""
    if fmt == SKOPS:
        return _dump_skops(pipeline)
    if fmt == IMPORTED:  # made by the import, which checked it (registry/foreign.py)
        data: bytes = pipeline.data
        return data
    if fmt not in BOOSTERS and fmt != NEURAL:
        raise ArtifactError(f"unknown artifact format {fmt!r}")
    whole = type(pipeline).__name__ in WHOLE
    preprocess, model = (None, pipeline) if whole else (pipeline[:-1], pipeline[-1])
    manifest = {"format": fmt, "class": type(model).__name__, "mlgate_bundle": 1}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps(manifest))
        if preprocess is not None:
            bundle.writestr("preprocess.skops", _dump_skops(preprocess))
        if fmt == NEURAL:
            from safetensors.torch import save

            spec, tensors = model.to_artifact()
            bundle.writestr("network.json", json.dumps(spec))
            bundle.writestr("model.safetensors", save(tensors))
        else:
            bundle.writestr(_BOOSTER_FILE[fmt], _booster_bytes(fmt, model))
    return out.getvalue()


def load(data: bytes, *, expected_sha256: str, ref: str, fmt: str = SKOPS) -> Any:
    """The pipeline in `data`, after checking its sha256 and that it holds only trusted types."""
    actual = sha256_of(data)
    if actual != expected_sha256:
        raise ArtifactError(
            f"the artifact of {ref} does not match the sha256 recorded when it was registered "
            f"(expected {expected_sha256[:12]}…, found {actual[:12]}…); it was changed or damaged "
            "on disk, so it will not be loaded. Restore it from a backup or train a new version."
        )
    if fmt == SKOPS:
        return load_skops(data, ref)
    if fmt == IMPORTED:
        from mlgate.registry import foreign

        return foreign.load(data, ref)
    if fmt not in BOOSTERS and fmt != NEURAL:
        raise ArtifactError(f"the artifact of {ref} has an unknown format {fmt!r}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            manifest = json.loads(bundle.read("manifest.json"))
            cls = str(manifest.get("class", ""))
            preprocess = None if cls in WHOLE else load_skops(bundle.read("preprocess.skops"), ref)
            if fmt == NEURAL:
                spec = json.loads(bundle.read("network.json"))
                raw = bundle.read("model.safetensors")
            else:
                raw = bundle.read(_BOOSTER_FILE[fmt])
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"the artifact of {ref} is not a readable bundle: {exc}") from None
    if fmt == NEURAL:
        model = _network_from(cls, spec, raw, ref)
        if preprocess is None:
            return model
    else:
        model = _booster_from(fmt, cls, raw, ref)
    assert preprocess is not None
    from sklearn.pipeline import Pipeline

    return Pipeline([*preprocess.steps, ("model", model)])


def types_in(data: bytes) -> set[str]:
    """Every type a skops file names, as module.Class."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"not a skops file: {exc}") from None
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _dump_skops(obj: Any) -> bytes:
    from mlgate.registry.skops_io import skops_io  # all of scikit-learn: when a model is saved

    data: bytes = skops_io().dumps(obj)
    untrusted = types_in(data) - TRUSTED_TYPES
    if untrusted:
        names = ", ".join(sorted(untrusted))
        raise ArtifactError(f"the fitted model holds types mlgate does not load back: {names}")
    return data


def load_skops(data: bytes, ref: str, also: frozenset[str] = frozenset()) -> Any:
    """A skops file's object, if every type it names is on the trust list (or in `also`: what
    an import was told to trust, recorded with its version)."""
    found = types_in(data)
    untrusted = found - TRUSTED_TYPES - also
    if untrusted:
        raise ArtifactError(
            f"the artifact of {ref} names types that are not on the trust list: "
            f"{', '.join(sorted(untrusted))}; it will not be loaded"
        )
    from mlgate.registry.skops_io import skops_io

    try:
        return skops_io().loads(data, trusted=sorted(found))
    except Exception as exc:  # skops raises many kinds; all mean "this file is unusable"
        raise ArtifactError(f"the artifact of {ref} could not be read: {exc}") from exc


def _booster_bytes(fmt: str, model: Any) -> bytes:
    if fmt == "lightgbm":
        return str(model.booster_.model_to_string()).encode()
    suffix = ".ubj" if fmt == "xgboost" else ".cbm"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"model{suffix}"
        model.save_model(str(path))
        return path.read_bytes()


def _booster_from(fmt: str, cls: str, raw: bytes, ref: str) -> Any:
    try:
        if fmt == "xgboost":
            import xgboost

            model = getattr(xgboost, _allowed(cls, ("XGBClassifier", "XGBRegressor"), ref))()
            model.load_model(bytearray(raw))
            return model
        if fmt == "catboost":
            import catboost

            name = _allowed(cls, ("CatBoostClassifier", "CatBoostRegressor"), ref)
            return getattr(catboost, name)().load_model(blob=raw)
        import lightgbm

        from mlgate.registry.adapters import LightGBMModel

        _allowed(cls, ("LGBMClassifier", "LGBMRegressor"), ref)
        booster = lightgbm.Booster(model_str=raw.decode())
        return LightGBMModel(booster, classifier=cls == "LGBMClassifier")
    except ImportError:
        raise ArtifactError(
            f"{ref} needs {fmt}, which is not installed: pip install 'mlgate[boost]'"
        ) from None
    except ArtifactError:
        raise
    except Exception as exc:  # the libraries raise their own error types on bad files
        raise ArtifactError(f"the {fmt} model of {ref} could not be read: {exc}") from exc


def _network_from(cls: str, spec: Any, raw: bytes, ref: str) -> Any:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load

        from mlgate.neural.estimators import ESTIMATORS, from_artifact
        from mlgate.neural.gan import TabularGAN
        from mlgate.neural.sequences import SequenceForecaster
    except ImportError:
        raise ArtifactError(
            f"{ref} is a neural network and needs PyTorch: pip install 'mlgate[torch]'"
        ) from None
    _allowed(cls, (*ESTIMATORS, *WHOLE), ref)
    if not isinstance(spec, dict) or spec.get("estimator") != cls:
        raise ArtifactError(f"the network spec of {ref} does not match its manifest")
    try:
        tensors = load(raw)
    except SafetensorError as exc:
        raise ArtifactError(f"the weights of {ref} could not be read: {exc}") from None
    if cls == "TabularGAN":
        return TabularGAN.from_artifact(spec, tensors, ref)
    if cls == "SequenceForecaster":
        return SequenceForecaster.from_artifact(spec, tensors, ref)
    return from_artifact(spec, tensors, ref)


def _allowed(cls: str, allowed: tuple[str, ...], ref: str) -> str:
    if cls not in allowed:
        raise ArtifactError(f"the artifact of {ref} names an unexpected model class {cls!r}")
    return cls
