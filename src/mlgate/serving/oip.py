"""The Open Inference Protocol v2 (KServe, Triton, MLServer): typed tensors in, typed tensors out.

Two request forms are read:

* tabular, as MLServer's pandas codec sends it: one input per column, named after it, each of
  shape [n] or [n, 1] (`"parameters": {"content_type": "pd"}` on the request is optional);
* one tensor of shape [n, k] holding the k input columns in the model's order.

Tensor data is row-major, flat or nested JSON, or raw bytes after the JSON (Triton's binary
tensor extension, see binary_tensors.py). The answer has a `predict` output ([n]) and, for
classifiers, `predict_proba` ([n, classes], FP64); the request's `outputs` may pick among them,
and each may be asked for as binary data. `predict`'s datatype follows the model's classes
(INT64, BOOL or BYTES labels; FP64 for regression), the same in the metadata and in every answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from mlgate.errors import FieldError, InvalidInput
from mlgate.schema import Column, Table, columns_to_table
from mlgate.serving import binary_tensors
from mlgate.training.seen import RowWarning, warnings_json

if TYPE_CHECKING:
    from mlgate.explainers.explain import Explanation

DATATYPES = frozenset(
    ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
    + ["FP16", "FP32", "FP64", "BYTES"]
)
_NUMERIC = DATATYPES - {"BOOL", "BYTES"}
OUTPUTS = ("predict", "predict_proba")
WARNINGS = "mlgate_warnings"  # the response parameter of the rows' warnings (a JSON string)
EXPLANATION = "explanation"  # asked for by name: per-row contributions (explainers/explain.py)
MAX_ELEMENTS = 10_000_000


@dataclass(frozen=True)
class InferRequest:
    table: Table
    id: str | None
    outputs: tuple[str, ...]  # () for the default outputs
    binary: frozenset[str]  # the outputs to answer as binary data
    binary_by_default: bool  # the request's binary_data_output, for the default outputs


def datatype_of(column: Column) -> str:
    return {"number": "FP64", "boolean": "BOOL"}.get(column.type, "BYTES")


def parse_infer(
    body: Any, columns: Sequence[Column], *, max_rows: int, tail: memoryview | None = None
) -> InferRequest:
    """A decoded inference request; `tail` holds the bytes after its JSON part (binary data)."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("an inference request is an object with a non-empty list of inputs")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("the request id must be a string")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("the request's parameters must be an object")
    wanted, binary = _wanted_outputs(body.get("outputs"))
    binary_by_default = parameters.get("binary_data_output") is True
    if binary_by_default:  # named outputs answer in binary unless they say otherwise
        binary |= {n for n in wanted if n not in _json_outputs(body.get("outputs"))}
    data = binary_tensors.TensorBytes(tail if tail is not None else memoryview(b""))
    tensors = [_tensor(t, i, data) for i, t in enumerate(body["inputs"])]
    data.check_all_read()
    names = [c.name for c in columns]
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][0] not in names:
        name, shape, values = tensors[0]
        n, k = shape
        if k != len(columns):
            raise InvalidInput(
                f"input {name!r} has {k} columns; the model takes {len(columns)} "
                f"({', '.join(names)}), in that order",
                errors=[FieldError("inputs[0].shape", f"expected [n, {len(columns)}]")],
            )
        if isinstance(values, np.ndarray):
            matrix = values.reshape(n, k)
            by_column: dict[str, Any] = {c: matrix[:, j] for j, c in enumerate(names)}
        else:
            by_column = {c: values[j::k] for j, c in enumerate(names)}
        table = columns_to_table(by_column, columns, max_rows=max_rows)
        return InferRequest(table, request_id, wanted, frozenset(binary), binary_by_default)
    by_column = {}
    for i, (name, shape, values) in enumerate(tensors):
        if len(shape) == 2 and shape[1] != 1 or len(shape) > 2:
            raise InvalidInput(
                f"input {name!r} has shape {shape}; a column is [n] or [n, 1]",
                errors=[FieldError(f"inputs[{i}].shape", "expected [n] or [n, 1]")],
            )
        if name in by_column:
            raise InvalidInput(f"input {name!r} is sent twice; send each column once")
        by_column[name] = values
    table = columns_to_table(by_column, columns, max_rows=max_rows)
    return InferRequest(table, request_id, wanted, frozenset(binary), binary_by_default)


def infer_response(
    model: str,
    version: int,
    request: InferRequest,
    predictions: list[Any],
    probabilities: list[list[float]] | None,
    classes: Sequence[Any] | None,
    explanation: Explanation | None = None,
    warnings: Mapping[int, Sequence[RowWarning]] | None = None,
) -> tuple[bytes, int | None]:
    """The answer's body and, when it carries binary outputs, the length of its JSON part.
    `explanation`, asked for as an output, is an FP64 tensor [n, columns + 1]: each row's
    contributions in the order of its `columns` parameter, then the base; its parameters say
    the method and scale (and, for classifiers, which class each row explains). `warnings`,
    where a row has any, are the response's `mlgate_warnings` parameter: a JSON string of
    {row: [warning, ...]}."""
    wanted = request.outputs or (("predict",) if probabilities is None else OUTPUTS)
    binary = request.binary
    if not request.outputs and request.binary_by_default:  # the default outputs, as binary
        binary = frozenset(wanted)
    outputs: list[dict[str, Any]] = []
    if "predict" in wanted:
        outputs.append(
            {
                "name": "predict",
                "shape": [len(predictions)],
                "datatype": predict_datatype(classes),
                "data": predictions,
            }
        )
    if "predict_proba" in wanted:
        if probabilities is None:
            raise InvalidInput(f"{model} is not a classifier: it has no predict_proba output")
        width = len(probabilities[0]) if probabilities else 0
        outputs.append(
            {
                "name": "predict_proba",
                "shape": [len(probabilities), width],
                "datatype": "FP64",
                "data": [p for row in probabilities for p in row],
            }
        )
    if EXPLANATION in wanted and explanation is not None:
        names, matrix = explanation.matrix()
        parameters: dict[str, Any] = {"columns": names, **explanation.about()}
        if explanation.explained is not None:
            parameters["explained_class"] = explanation.explained
        outputs.append(
            {
                "name": EXPLANATION,
                "shape": [len(matrix), len(names)],
                "datatype": "FP64",
                "data": [v for row in matrix for v in row],
                "parameters": parameters,
            }
        )
    chunks = []
    for output in outputs:
        if output["name"] in binary:
            chunk = binary_tensors.encode(output["datatype"], output.pop("data"))
            output["parameters"] = {**output.get("parameters", {}), "binary_data_size": len(chunk)}
            chunks.append(chunk)
    out: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request.id is not None:
        out["id"] = request.id
    if warnings:  # parameters are scalars: the rows' warnings as one JSON string
        out["parameters"] = {WARNINGS: orjson.dumps(warnings_json(warnings)).decode()}
    header = orjson.dumps(out)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def predict_datatype(classes: Sequence[Any] | None) -> str:
    """The datatype of the `predict` output: what the labels are (FP64 for regression)."""
    if classes is None or not len(classes):
        return "FP64"
    if all(isinstance(c, bool | np.bool_) for c in classes):
        return "BOOL"
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if all(isinstance(c, int | float | np.number) and not isinstance(c, bool) for c in classes):
        return "FP64"
    return "BYTES"


def model_metadata(
    name: str,
    versions: Sequence[int],
    columns: Sequence[Column],
    classes: Sequence[Any] | None,
    task: str,
) -> dict[str, Any]:
    outputs = [{"name": "predict", "datatype": predict_datatype(classes), "shape": [-1]}]
    if classes is not None:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
    # `explanation` is not listed: clients that ask for every declared output (Triton's
    # examples do) would pay for explanations they did not want; it is asked for by name.
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": "mlgate",
        "inputs": [{"name": c.name, "datatype": datatype_of(c), "shape": [-1, 1]} for c in columns],
        "outputs": outputs,
        "parameters": {"content_type": "pd", "task": task},
    }


def _tensor(
    raw: Any, i: int, data: binary_tensors.TensorBytes
) -> tuple[str, list[int], list[Any] | np.ndarray]:
    where = f"inputs[{i}]"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    name, shape, datatype = raw.get("name"), raw.get("shape"), raw.get("datatype")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where} needs a name", errors=[FieldError(f"{where}.name", "missing")])
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(
            f"input {name!r} needs a shape: a list of non-negative whole numbers",
            errors=[FieldError(f"{where}.shape", "invalid")],
        )
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input {name!r} has datatype {str(datatype)[:20]!r}; "
            f"one of {', '.join(sorted(DATATYPES))}",
            errors=[FieldError(f"{where}.datatype", "unknown datatype")],
        )
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        raise InvalidInput(f"input {name!r} has {size:,} elements; at most {MAX_ELEMENTS:,}")
    parameters = raw.get("parameters") or {}
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        if "data" in raw:
            raise InvalidInput(
                f"input {name!r} has both data and binary_data_size; send one of them",
                errors=[FieldError(f"{where}.data", "binary data declared too")],
            )
        chunk = data.take(name, parameters["binary_data_size"], where)
        return name, shape, binary_tensors.decode(name, datatype, shape, chunk)
    values = _flatten(raw.get("data"), where)
    if len(values) != size:
        raise InvalidInput(
            f"input {name!r} has {len(values)} values for shape {shape} ({size} expected)",
            errors=[FieldError(f"{where}.data", "length does not match shape")],
        )
    for v in values:
        if not _fits(v, datatype):
            raise InvalidInput(
                f"input {name!r} is {datatype} but holds {str(v)[:40]!r}",
                errors=[FieldError(f"{where}.data", f"not {datatype}")],
            )
    return name, shape, values


def _flatten(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(
            f"{where}.data must be a list", errors=[FieldError(f"{where}.data", "expected a list")]
        )
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _fits(value: Any, datatype: str) -> bool:
    if value is None:
        return True  # a missing value; the model's preprocessing imputes it
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool) and datatype in _NUMERIC


def _wanted_outputs(raw: Any) -> tuple[tuple[str, ...], set[str]]:
    """The outputs the request names (() for the default: predict, and predict_proba for
    classifiers), and those of them it asks for as binary data."""
    if raw is None:
        return (), set()
    if not isinstance(raw, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw
    ):
        raise InvalidInput('outputs is a list of {"name": ...} objects')
    names = tuple(o["name"] for o in raw)
    unknown = [n for n in names if n not in (*OUTPUTS, EXPLANATION)]
    if unknown:
        raise InvalidInput(
            f"unknown output(s) {', '.join(unknown)}; the outputs are "
            f"{', '.join((*OUTPUTS, EXPLANATION))}"
        )
    binary = {o["name"] for o in raw if _output_parameter(o) is True}
    return names, binary


def _json_outputs(raw: Any) -> set[str]:
    """The requested outputs that say binary_data: false (JSON whatever the request's default)."""
    return {o["name"] for o in raw or () if _output_parameter(o) is False}


def _output_parameter(output: dict[str, Any]) -> Any:
    parameters = output.get("parameters")
    return parameters.get("binary_data") if isinstance(parameters, dict) else None
