"""A version's whole pipeline (preprocessing and model) as one ONNX graph, with skl2onnx.

The graph takes one input per column the model reads, each `[N, 1]`: numbers (and booleans, and
each datetime's parts, named `column__year` and so on) as float, categories and text as strings,
a missing category as the empty string. It answers `label` (class codes 0..k-1; the labels are
in the metadata as `mlgate_classes`) and `probabilities`, or `variable` for a regressor.

The converters scikit-learn lacks are registered here: our one-hot encoder (as ONNX-ML's
OneHotEncoder over the fitted categories, the missing category read from ""), XGBoost and
LightGBM (onnxmltools' converters; a LightGBM model loaded from its text is converted as a
booster).
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

from mlgate.errors import Conflict
from mlgate.registry.model import ModelVersion
from mlgate.schema import feature_columns

OPSET = 17
ML_OPSET = 3
# What has no conversion, and why (said as is to the caller).
NO_CONVERSION = {"gan": "a generator makes rows rather than scoring them"}
_REGISTERED = threading.Lock()
_done = False


def convert(version: ModelVersion, pipeline: Any) -> bytes:
    """The serialized ONNX graph of `pipeline`; Conflict where no conversion exists."""
    algorithm = version.algorithm
    reason = NO_CONVERSION.get(algorithm)
    if reason is None and algorithm.startswith("imported-"):
        reason = "it was imported as a file of its own library; export that file instead"
    if reason is None and version.task == "forecast":
        reason = "a forecaster reads windows of a series, not rows"
    if reason is not None:
        raise Conflict(f"{version.ref} ({algorithm}) has no ONNX conversion: {reason}")
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise Conflict(
            "exporting ONNX needs skl2onnx and onnxmltools: pip install 'mlgate[onnx]'"
        ) from None
    from mlgate.exports.networks import catboost_graph, is_network, join, joined

    _register()
    pipeline = _convertible(pipeline)
    inputs = [
        (c.name, StringTensorType([None, 1]) if c.type in ("string", "text")
         else FloatTensorType([None, 1]))
        for c in feature_columns(version.columns)
    ]  # fmt: skip
    classifier = version.task == "classification"
    options: dict[Any, Any] = {}
    if classifier and not is_network(pipeline[-1]):
        options[id(pipeline[-1])] = {"zipmap": False}
    network = is_network(pipeline[-1])
    catboost = algorithm == "catboost"
    if catboost and version.columns != tuple(c for c in version.columns if c.type == "number"):
        raise Conflict(
            f"{version.ref} (catboost) has no ONNX conversion: CatBoost's ONNX export takes "
            "numbers only, and this model reads categories or text as strings"
        )
    try:
        with warnings.catch_warnings():  # deprecations of attributes the converters read
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            graph = convert_sklearn(
                pipeline[:-1] if network or catboost else pipeline,
                initial_types=inputs,
                options=options,
                target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
                name=version.ref,
            )
            if network:  # PyTorch exports the network; it follows the preprocessing
                graph = joined(graph, pipeline[-1])
            elif catboost:  # so does CatBoost's own export of its trees
                graph = join(graph, catboost_graph(pipeline[-1]), "features")
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise Conflict(
            f"{version.ref} ({algorithm}) could not be converted to ONNX: {first}"
        ) from None
    _missing_directions(graph, pipeline[-1])
    _name_inputs(graph, [name for name, _ in inputs], version)
    meta = {
        "mlgate_model": version.model_name,
        "mlgate_version": str(version.number),
        "mlgate_task": version.task,
        "mlgate_target": version.target,
    }
    if classifier:
        meta["mlgate_classes"] = json.dumps(list(version.classes or ()), default=str)
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    data: bytes = graph.SerializeToString()
    return data


def _name_inputs(graph: Any, names: list[str], version: ModelVersion) -> None:
    """Give the graph's inputs the columns' own names. skl2onnx rewrites an input name into
    an identifier (`od280/od315` becomes `od280_od315`, `it's` becomes `it_s`) and away from
    its own values' names (a column `label` becomes `label1`); ONNX itself takes any string, so
    the converted graph is renamed at its edge: column names stay opaque strings, whatever they
    hold. A value inside the graph that holds a column's name gives it up (an output too: a
    column named `label` leaves the output `label_output`)."""
    inputs = list(graph.graph.input)
    if len(inputs) != len(names):
        raise Conflict(
            f"{version.ref} could not be converted to ONNX: the graph has {len(inputs)} inputs "
            f"for {len(names)} columns"
        )
    if all(i.name == name for i, name in zip(inputs, names, strict=True)):
        return
    parked = [f"\0mlgate input {k}" for k in range(len(inputs))]  # no graph holds a NUL
    for value, name in zip(inputs, parked, strict=True):
        _rename(graph, value.name, name)
    outputs = {o.name for o in graph.graph.output}
    taken = set(names) | _values(graph)
    for name in sorted(set(names) & _values(graph)):
        fresh = f"{name}_output" if name in outputs else f"{name}_value"
        k = 0
        while fresh in taken:
            k += 1
            fresh = f"{name}_{k}"
        taken.add(fresh)
        _rename(graph, name, fresh)
    for old, new in zip(parked, names, strict=True):
        _rename(graph, old, new)


def _values(graph: Any) -> set[str]:
    """Every name a value has inside `graph` (not its inputs)."""
    found = {o for node in graph.graph.node for o in node.output}
    found |= {t.name for t in graph.graph.initializer} | {o.name for o in graph.graph.output}
    return found


def _rename(graph: Any, old: str, new: str) -> None:
    g = graph.graph
    for value in [*g.input, *g.output, *g.value_info, *g.initializer]:
        if value.name == old:
            value.name = new
    for node in g.node:
        for names in (node.input, node.output):
            for k, name in enumerate(names):
                if name == old:
                    names[k] = new


def _register() -> None:
    """Teach skl2onnx our one-hot encoder, XGBoost and LightGBM (once per process)."""
    global _done
    with _REGISTERED:
        if _done:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        from mlgate.runtime.encoders import OneHot

        update_registered_converter(OneHot, "MlgateOneHot", _one_hot_shape, _one_hot)
        try:
            import xgboost
            from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

            update_registered_converter(
                xgboost.XGBClassifier, "MlgateXGBClassifier",
                calculate_linear_classifier_output_shapes, convert_xgboost,
                options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
            )  # fmt: skip
            update_registered_converter(
                xgboost.XGBRegressor, "MlgateXGBRegressor",
                calculate_linear_regressor_output_shapes, convert_xgboost,
            )  # fmt: skip
        except ImportError:
            pass
        try:
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
                convert_lightgbm,
            )

            from mlgate.registry.adapters import LightGBMModel

            def lightgbm(scope: Any, operator: Any, container: Any) -> None:
                from onnxmltools.convert.lightgbm._parse import WrappedBooster

                model = operator.raw_operator
                operator.raw_operator = WrappedBooster(model.booster)
                try:
                    convert_lightgbm(scope, operator, container)
                finally:
                    operator.raw_operator = model

            update_registered_converter(
                LightGBMModel, "MlgateLightGBMRegressor",
                calculate_linear_regressor_output_shapes, lightgbm,
            )  # fmt: skip
            update_registered_converter(
                _classifier_type(), "MlgateLightGBMClassifier",
                calculate_linear_classifier_output_shapes, lightgbm,
                options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
            )  # fmt: skip
        except ImportError:
            pass
        _done = True


def _missing_directions(graph: Any, model: Any) -> None:
    """scikit-learn's trees send a missing value left or right per split (learned); skl2onnx
    leaves ONNX's `nodes_missing_value_tracks_true` at false, so NaN always went right. Set it
    from each split's `missing_go_to_left` (the true branch of BRANCH_LEQ is the left child)."""
    trees = [e.tree_ for e in getattr(model, "estimators_", [])] or (
        [model.tree_] if hasattr(model, "tree_") else []
    )
    if not trees or not all(hasattr(t, "missing_go_to_left") for t in trees):
        return
    for node in graph.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        found = {a.name: a for a in node.attribute}
        tree_ids, node_ids = found["nodes_treeids"].ints, found["nodes_nodeids"].ints
        tracks = [
            int(trees[t].missing_go_to_left[n]) for t, n in zip(tree_ids, node_ids, strict=True)
        ]
        if "nodes_missing_value_tracks_true" in found:
            node.attribute.remove(found["nodes_missing_value_tracks_true"])
        from onnx import helper

        node.attribute.append(helper.make_attribute("nodes_missing_value_tracks_true", tracks))


_CLASSIFIER: type | None = None


def _classifier_type() -> type:
    """A LightGBM classifier loaded from its text, as skl2onnx recognises a classifier."""
    global _CLASSIFIER
    if _CLASSIFIER is None:
        from sklearn.base import ClassifierMixin

        from mlgate.registry.adapters import LightGBMModel

        _CLASSIFIER = type("LightGBMClassifierModel", (ClassifierMixin, LightGBMModel), {})
    return _CLASSIFIER


def _convertible(pipeline: Any) -> Any:
    """`pipeline`, its LightGBM classifier (if that is its model) recast as a classifier type."""
    from sklearn.pipeline import Pipeline

    from mlgate.registry.adapters import LightGBMModel

    model = pipeline[-1]
    if type(model) is LightGBMModel and model.classifier:
        recast = _classifier_type()(model.booster, classifier=True)
        return Pipeline([*pipeline.steps[:-1], ("model", recast)])
    return pipeline


def _one_hot_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    encoder = operator.raw_operator
    width = sum(len(c) for c in encoder.categories_)
    operator.outputs[0].type = FloatTensorType([None, width])


def _one_hot(scope: Any, operator: Any, container: Any) -> None:
    """Each column through ONNX-ML's OneHotEncoder over its fitted categories (the missing
    category as ""; anything unseen gives zeros, as ours does), side by side."""
    from mlgate.runtime.encoders import MISSING_CATEGORY

    encoder = operator.raw_operator
    source = operator.inputs[0].full_name
    width = len(encoder.categories_)
    parts = []
    for k, categories in enumerate(encoder.categories_):
        column = source
        if width > 1 or len(operator.inputs) > 1:
            column = scope.get_unique_variable_name(f"column{k}")
            if len(operator.inputs) > 1:
                column = operator.inputs[k].full_name
            else:
                index = scope.get_unique_variable_name(f"index{k}")
                container.add_initializer(index, 7, [1], [k])  # INT64
                container.add_node("Gather", [source, index], column, axis=1,
                                   name=scope.get_unique_operator_name("Gather"))  # fmt: skip
        strings = ["" if c == MISSING_CATEGORY else str(c) for c in categories]
        encoded = scope.get_unique_variable_name(f"encoded{k}")
        container.add_node(
            "OneHotEncoder", column, encoded, op_domain="ai.onnx.ml", op_version=1,
            cats_strings=strings, zeros=1, name=scope.get_unique_operator_name("OneHot"),
        )  # fmt: skip
        flat = scope.get_unique_variable_name(f"flat{k}")
        shape = scope.get_unique_variable_name(f"shape{k}")
        container.add_initializer(shape, 7, [2], [-1, len(strings)])
        container.add_node("Reshape", [encoded, shape], flat,
                           name=scope.get_unique_operator_name("Reshape"))  # fmt: skip
        parts.append(flat)
    if len(parts) == 1:
        container.add_node("Identity", parts[0], operator.outputs[0].full_name,
                           name=scope.get_unique_operator_name("Identity"))  # fmt: skip
    else:
        container.add_node("Concat", parts, operator.outputs[0].full_name, axis=1,
                           name=scope.get_unique_operator_name("Concat"))  # fmt: skip
