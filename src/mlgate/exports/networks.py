"""A pipeline whose model is one of our PyTorch networks, as one ONNX graph: skl2onnx converts
the preprocessing, PyTorch exports the network, the estimator's own last steps are added to it
(softmax and argmax for a classifier; the target's scale and mean for a regressor), and the two
graphs are joined, the preprocessing's output feeding the network's input.

Only this module imports PyTorch for an export.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

OPSET = 17


def is_network(model: Any) -> bool:
    return hasattr(model, "net_") and hasattr(model, "to_artifact")


def joined(preprocessing: Any, model: Any) -> Any:
    """The ModelProto of `preprocessing` (skl2onnx's, one output) followed by the network."""
    return join(preprocessing, _with_head(_exported(model), model), "x")


def join(preprocessing: Any, network: Any, input_name: str) -> Any:
    """`preprocessing`'s one output (as float) fed to `network`'s input `input_name`; the
    answers keep their names (label, probabilities or variable)."""
    import onnx
    from onnx import compose, helper

    network.ir_version = preprocessing.ir_version
    wanted = {d.domain: d.version for d in preprocessing.opset_import}
    del network.opset_import[:]
    network.opset_import.extend(
        [helper.make_opsetid(domain, version) for domain, version in wanted.items()]
    )
    answers = [o.name for o in network.graph.output]
    _rename(preprocessing.graph, {name: f"pre_{name}" for name in answers})
    features = preprocessing.graph.output[0].name
    cast = helper.make_node("Cast", [features], ["net_input"], to=onnx.TensorProto.FLOAT)
    preprocessing.graph.node.append(cast)
    del preprocessing.graph.output[:]
    preprocessing.graph.output.append(
        helper.make_tensor_value_info("net_input", onnx.TensorProto.FLOAT, [None, None])
    )
    merged = compose.merge_models(
        preprocessing, network, io_map=[("net_input", input_name)], prefix2="net_"
    )
    for output in merged.graph.output:
        plain = output.name.removeprefix("net_")
        merged.graph.node.append(helper.make_node("Identity", [output.name], [plain]))
        output.name = plain
    return merged


def _rename(graph: Any, names: dict[str, str]) -> None:
    for node in graph.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                if name in names:
                    field[i] = names[name]
    for value in graph.output:
        if value.name in names:
            value.name = names[value.name]


def catboost_graph(model: Any) -> Any:
    """A CatBoost model's own ONNX export, its outputs named as skl2onnx names them: `label`
    and `probabilities` (a tensor: its ZipMap removed), or `variable`; input `features`."""
    import onnx
    from onnx import helper

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catboost.onnx"
        model.save_model(str(path), format="onnx")
        graph_model = onnx.load_model_from_string(path.read_bytes())
    graph = graph_model.graph
    kept = [n for n in graph.node if n.op_type != "ZipMap"]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.output[:]
    trees = graph.node[0]
    if trees.op_type == "TreeEnsembleClassifier":
        trees.output[1] = "probabilities"
        graph.output.extend([
            helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, None]),
        ])  # fmt: skip
    else:
        trees.output[0] = "variable"
        graph.output.append(
            helper.make_tensor_value_info("variable", onnx.TensorProto.FLOAT, [None, 1])
        )
    return graph_model


def _with_head(graph_model: Any, model: Any) -> Any:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = graph_model.graph
    out = graph.output[0].name
    del graph.output[:]
    if hasattr(model, "classes_"):
        graph.node.extend([
            helper.make_node("Softmax", [out], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        ])  # fmt: skip
        graph.output.extend([
            helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None]),
            helper.make_tensor_value_info(
                "probabilities", onnx.TensorProto.FLOAT, [None, len(model.classes_)]
            ),
        ])  # fmt: skip
        return graph_model
    graph.initializer.extend([
        numpy_helper.from_array(np.array([model.y_scale_], dtype="float32"), "head_scale"),
        numpy_helper.from_array(np.array([model.y_mean_], dtype="float32"), "head_mean"),
    ])  # fmt: skip
    graph.node.extend([
        helper.make_node("Mul", [out, "head_scale"], ["head_scaled"]),
        helper.make_node("Add", ["head_scaled", "head_mean"], ["variable"]),
    ])  # fmt: skip
    graph.output.append(
        helper.make_tensor_value_info("variable", onnx.TensorProto.FLOAT, [None, 1])
    )
    return graph_model


def _exported(model: Any) -> Any:
    import onnx
    import torch

    net = model.net_.to("cpu").eval()
    example = torch.zeros(2, int(model.n_features_in_), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it saw: nothing to act on
        path = Path(folder) / "network.onnx"
        torch.onnx.export(
            net, (example,), str(path), input_names=["x"], output_names=["y"],
            opset_version=OPSET, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False,
        )  # fmt: skip
        return onnx.load_model_from_string(path.read_bytes())
