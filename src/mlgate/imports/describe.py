"""What a model trained elsewhere declares about itself: its inputs, its task and its classes.

Each kind is read with its own library, and nothing is assumed where the model says nothing:
the input example (or `--task` / `--classes`) fills in what the file leaves out, and a
contradiction between the two is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlgate.columns import ColumnType
from mlgate.imports.files import ModelFile, RefusedModel, signature_columns
from mlgate.registry import foreign

_REGRESSION = "regression"
_CLASSIFICATION = "classification"


@dataclass
class Declared:
    """What the file says. `features`: the input names in the model's order (None: unnamed,
    `width` of them); `types`: the column types it declares; `task` and `classes` where it
    says; `manifest`: what loading will need (foreign.py)."""

    kind: str
    features: list[str] | None
    width: int | None
    types: dict[str, ColumnType] = field(default_factory=dict)
    task: str | None = None
    classes: list[Any] | None = None
    n_classes: int | None = None
    model_classes: list[Any] | None = None  # the labels as the model answers them, if not these
    manifest: dict[str, Any] = field(default_factory=dict)
    library: dict[str, str] = field(default_factory=dict)


def declared(model: ModelFile, trust: list[str]) -> Declared:
    if model.kind == "onnx":
        found = _onnx(model.raw)
    elif model.kind == "xgboost":
        found = _xgboost(model.raw)
    elif model.kind == "lightgbm":
        found = _lightgbm(model.raw)
    elif model.kind == "catboost":
        found = _catboost(model.raw)
    else:
        found = _skops(model.raw, trust)
    signature = signature_columns(model.mlflow)
    if signature is not None:
        names = [n for n, _ in signature]
        if found.features is not None and found.features != names:
            raise RefusedModel(
                f"the MLflow signature names the inputs {names} but the model reads "
                f"{found.features}",
                code="schema_mismatch",
            )
        found.features = names
        found.width = len(names)
        found.types |= {n: _MLFLOW_TYPES.get(t, "number") for n, t in signature}
    return found


_MLFLOW_TYPES: dict[str, ColumnType] = {
    "string": "string",
    "boolean": "boolean",
    "datetime": "datetime",
    "double": "number",
    "float": "number",
    "long": "number",
    "integer": "number",
}


def _damaged(kind: str, exc: Exception) -> RefusedModel:
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return RefusedModel(
        f"the {kind} file cannot be read (truncated, damaged, or not what it claims): {first}",
        code="damaged_file",
    )


def _onnx(raw: bytes) -> Declared:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise RefusedModel(
            f"ONNX models need {exc.name}: pip install 'mlgate[onnx]'", code="not_installed"
        ) from None
    try:
        graph = onnx.load_model_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError and others
        raise _damaged("ONNX", exc) from None
    try:
        session = onnxruntime.InferenceSession(raw, providers=["CPUExecutionProvider"])
    except Exception as exc:
        message = str(exc).strip().splitlines()[0][:400]
        raise RefusedModel(
            f"ONNX Runtime cannot run this graph: {message}. Export it with operators and an "
            "opset that ONNX Runtime's CPU provider supports",
            code="unsupported_graph",
        ) from None
    inputs = session.get_inputs()
    specs: list[dict[str, Any]] = []
    batches: set[int] = set()
    for node in inputs:
        dtype = foreign.onnx_dtype(node.type)
        shape = list(node.shape)
        if dtype is None or not 1 <= len(shape) <= 2:
            raise RefusedModel(
                f"the graph's input {node.name!r} is a {node.type} of shape {shape}; mlgate maps "
                "tabular inputs: one matrix [N, k] of numbers, or one [N] or [N, 1] tensor per "
                "column",
                code="unsupported_graph",
            )
        batches.add(shape[0] if isinstance(shape[0], int) else 0)
        specs.append({"name": node.name, "dtype": dtype, "rank": len(shape), "shape": shape})
    batch = max(batches)
    if batch > 1:
        raise RefusedModel(
            f"the graph's batch dimension is fixed at {batch} rows; export it with a dynamic "
            "first dimension (dynamic_axes) or a batch of 1",
            code="unsupported_graph",
        )
    only = specs[0]
    matrix = len(specs) == 1 and only["rank"] == 2 and only["dtype"] != "object"
    width: int | None
    if matrix and not (isinstance(only["shape"][1], int) and only["shape"][1] > 0):
        raise RefusedModel(
            f"the graph's input {only['name']!r} has shape {only['shape']}: its number of "
            "columns is dynamic, so mlgate cannot know which columns to send; export it with a "
            "fixed second dimension",
            code="unsupported_graph",
        )
    if matrix:
        width, features = int(only["shape"][1]), None
        types: dict[str, ColumnType] = {}
    else:
        for spec in specs:
            if (
                spec["rank"] == 2
                and spec["shape"][1] not in (1, None)
                and not isinstance(spec["shape"][1], str)
            ):
                raise RefusedModel(
                    f"the graph's input {spec['name']!r} has shape {spec['shape']}; with several "
                    "inputs, each must be one column ([N] or [N, 1])",
                    code="unsupported_graph",
                )
            spec["columns"] = [spec["name"]]
        features = [s["name"] for s in specs]
        width = len(features)
        types = {s["name"]: _onnx_type(s["dtype"]) for s in specs}
    for spec in specs:
        spec.pop("shape")
    outputs = session.get_outputs()
    spec_out: dict[str, Any] = {"layout": "matrix" if matrix else "columns", "inputs": specs,
                                "batch": batch}  # fmt: skip
    found = Declared(
        "onnx", features, width, types, library={"onnxruntime": onnxruntime.__version__}
    )
    labels = [o for o in outputs if o.type in ("tensor(int64)", "tensor(string)")]
    probas = [o for o in outputs if o.type.startswith("seq(map(") or o.type == "tensor(float)"]
    if labels and probas:  # a converted classifier: its labels and its probabilities
        spec_out |= {"label": labels[0].name, "proba": probas[0].name}
        found.task = _CLASSIFICATION
        found.model_classes = _onnx_classes(graph)
        meta = {p.key: p.value for p in graph.metadata_props}
        told: list[Any] | None = (
            json.loads(meta["mlgate_classes"]) if "mlgate_classes" in meta else None
        )
        if (
            told is not None
            and found.model_classes is not None
            and len(told) != len(found.model_classes)
        ):
            raise RefusedModel(
                "the graph's mlgate_classes metadata does not match its classes",
                code="damaged_file",
            )
        if told is not None and found.model_classes is None:
            found.model_classes = list(range(len(told)))  # mlgate's graphs answer codes
        found.classes = told or found.model_classes
        if probas[0].type == "tensor(float)":
            shape = list(probas[0].shape)
            if len(shape) == 2 and isinstance(shape[1], int):
                found.n_classes = shape[1]
    else:
        first = outputs[0]
        spec_out["output"] = first.name
        shape = list(first.shape)
        width_out = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else 1
        if width_out > 1:
            found.task = _CLASSIFICATION
            found.n_classes = width_out
        spec_out["width"] = width_out
    told = {p.key: p.value for p in graph.metadata_props}.get("mlgate_task")
    if told in (_CLASSIFICATION, _REGRESSION) and "label" not in spec_out:
        found.task = told  # a graph mlgate exported says what it is
    found.manifest = {"onnx": spec_out}
    return found


def _onnx_type(dtype: str) -> ColumnType:
    return "string" if dtype == "object" else "boolean" if dtype == "bool" else "number"


def _onnx_classes(graph: Any) -> list[Any] | None:
    """The class labels a converted classifier's graph holds (ai.onnx.ml operators)."""
    for node in graph.graph.node:
        for attribute in node.attribute:
            if attribute.name in ("classlabels_int64s", "classlabels_ints"):
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings":
                return [v.decode() for v in attribute.strings]
    return None


def _xgboost(raw: bytes) -> Declared:
    import xgboost

    try:
        booster = xgboost.Booster(model_file=bytearray(raw))
        config = json.loads(booster.save_config())
    except Exception as exc:  # XGBoostError and friends
        raise _damaged("XGBoost", exc) from None
    learner = config["learner"]
    objective = str(learner["objective"]["name"])
    n_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
    types = booster.feature_types or []
    if "c" in types:
        raise RefusedModel(
            "this XGBoost model has categorical features; mlgate imports XGBoost models of "
            "numeric features (one-hot encode the categories before training)",
            code="unsupported_model",
        )
    found = Declared(
        "xgboost",
        list(booster.feature_names) if booster.feature_names else None,
        booster.num_features(),
        library={"xgboost": xgboost.__version__},
    )
    if objective.startswith(("binary:logistic", "multi:softprob", "multi:softmax")):
        found.task = _CLASSIFICATION
        found.n_classes = max(n_class, 2)
    elif objective.startswith(("reg:", "count:", "survival:")):
        found.task = _REGRESSION
    else:
        raise RefusedModel(
            f"this XGBoost model's objective is {objective}; mlgate imports classifiers "
            "(binary:logistic, multi:softprob) and regressors (reg:*)",
            code="unsupported_model",
        )
    return found


def _lightgbm(raw: bytes) -> Declared:
    import lightgbm

    _check_lightgbm_text(raw)
    try:
        booster = lightgbm.Booster(model_str=raw.decode())
        dumped = booster.dump_model(num_iteration=1)
    except Exception as exc:  # LightGBMError, UnicodeDecodeError
        raise _damaged("LightGBM", exc) from None
    if dumped.get("pandas_categorical") or any(
        "categorical_feature" in line and line.split("=", 1)[1].strip()
        for line in raw.decode().splitlines()[:60]
        if line.startswith("[categorical_feature:")
    ):
        raise RefusedModel(
            "this LightGBM model has categorical features; mlgate imports LightGBM models of "
            "numeric features",
            code="unsupported_model",
        )
    objective = str(dumped.get("objective", "")).split()[0] if dumped.get("objective") else ""
    names = [str(n) for n in booster.feature_name()]
    unnamed = all(n == f"Column_{i}" for i, n in enumerate(names))
    found = Declared(
        "lightgbm", None if unnamed else names, len(names),
        library={"lightgbm": lightgbm.__version__},
    )  # fmt: skip
    if objective in ("binary", "cross_entropy"):
        found.task, found.n_classes = _CLASSIFICATION, 2
    elif objective in ("multiclass", "softmax", "multiclassova"):
        found.task, found.n_classes = _CLASSIFICATION, int(dumped.get("num_class", 2))
    elif objective.startswith(("lambdarank", "rank_xendcg")):
        raise RefusedModel(
            f"this LightGBM model ranks ({objective}); mlgate imports classifiers and regressors",
            code="unsupported_model",
        )
    else:
        found.task = _REGRESSION
    return found


def _check_lightgbm_text(raw: bytes) -> None:
    """LightGBM's parser trusts the byte counts in its header (and crashes the process on a
    truncated file): check that the trees are all there, as long as the header says, first."""
    text = raw.decode("utf-8", errors="replace")
    header, found, rest = text.partition("\nTree=")
    sizes = next(
        (line.split("=", 1)[1].split() for line in header.splitlines()
         if line.startswith("tree_sizes=")),
        None,
    )  # fmt: skip
    trees, ended, _ = rest.partition("end of trees")
    try:
        expected = sum(int(n) for n in sizes or ())
    except ValueError:
        expected = -1
    # The trees' text (from "Tree=" up to the blank line before "end of trees").
    body = ("Tree=" + trees).encode() if found else b""
    complete = "\nend of parameters\n" in text and "\npandas_categorical:" in text[-4096:]
    if not (found and ended and complete) or sizes is None or expected < 0 or len(body) < expected:
        raise RefusedModel(
            "the LightGBM file is truncated or damaged: its trees do not match the sizes its "
            "header declares, or it stops before its last section (pandas_categorical)",
            code="damaged_file",
        )


def _catboost(raw: bytes) -> Declared:
    import catboost

    try:
        model = catboost.CatBoost().load_model(blob=raw)
        loss = str(model.get_all_params().get("loss_function", ""))
    except Exception as exc:  # CatBoostError
        raise _damaged("CatBoost", exc) from None
    if model.get_cat_feature_indices() or model.get_text_feature_indices():
        raise RefusedModel(
            "this CatBoost model has categorical or text features; mlgate imports CatBoost "
            "models of numeric features",
            code="unsupported_model",
        )
    names = [str(n) for n in model.feature_names_]
    unnamed = names == [str(i) for i in range(len(names))]
    found = Declared(
        "catboost", None if unnamed else names, len(names),
        library={"catboost": catboost.__version__},
    )  # fmt: skip
    if loss.split(":")[0] in ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll"):
        found.task = _CLASSIFICATION
        classifier = catboost.CatBoostClassifier().load_model(blob=raw)
        found.classes = [_plain(c) for c in classifier.classes_]
        found.manifest["model_classes"] = found.classes
    else:
        found.task = _REGRESSION
    return found


def _skops(raw: bytes, trust: list[str]) -> Declared:
    from sklearn.base import is_classifier

    from mlgate.registry import formats
    from mlgate.registry.skops_io import skops_io

    try:
        found_types = formats.types_in(raw)
    except Exception as exc:
        raise _damaged("skops", exc) from None
    untrusted = found_types - formats.TRUSTED_TYPES - foreign.WRAPPER_TYPES - set(trust)
    if untrusted:
        listed = ", ".join(sorted(untrusted))
        raise RefusedModel(
            f"the skops file names types that are not on mlgate's trust list: {listed}. "
            "Loading a type runs its code; if you trust these, import again with "
            + " ".join(f"--trust {t}" for t in sorted(untrusted))
            + " (recorded in the audit log)",
            code="untrusted_types",
        )
    try:
        estimator = skops_io().loads(raw, trusted=sorted(found_types))
    except Exception as exc:
        raise _damaged("skops", exc) from None
    if not hasattr(estimator, "predict"):
        raise RefusedModel(
            f"the skops file holds a {type(estimator).__name__}, which does not predict",
            code="unsupported_model",
        )
    names = getattr(estimator, "feature_names_in_", None)
    found = Declared(
        "skops",
        None if names is None else [str(n) for n in np.asarray(names).tolist()],
        getattr(estimator, "n_features_in_", None),
        library={"scikit-learn": _sklearn_version()},
    )
    if is_classifier(estimator) or hasattr(estimator, "predict_proba"):
        classes = getattr(estimator, "classes_", None)
        if classes is None or not hasattr(estimator, "predict_proba"):
            raise RefusedModel(
                "this classifier has no predict_proba; mlgate serves classifiers with their "
                "probabilities (fit it with probability=True, or calibrate it)",
                code="unsupported_model",
            )
        found.task = _CLASSIFICATION
        found.classes = [_plain(c) for c in classes]
        found.manifest["model_classes"] = found.classes
    else:
        found.task = _REGRESSION
    found.manifest["trusted"] = sorted(set(trust) & found_types)
    return found


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
