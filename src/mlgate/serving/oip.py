"""The Open Inference Protocol v2 (KServe, Triton, MLServer): typed tensors in, typed tensors out.

Two request forms are read:

* tabular, as MLServer's pandas codec sends it: one input per column, named after it, each of
  shape [n] or [n, 1] (`"parameters": {"content_type": "pd"}` on the request is optional);
* one tensor of shape [n, k] holding the k input columns in the model's order.

Tensor data is row-major, flat or nested. The answer has a `predict` output ([n]) and, for
classifiers, `predict_proba` ([n, classes], FP64); the request's `outputs` may pick among them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlgate.errors import FieldError, InvalidInput
from mlgate.schema import Column, columnar_to_frame

DATATYPES = frozenset(
    ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
    + ["FP16", "FP32", "FP64", "BYTES"]
)
_NUMERIC = DATATYPES - {"BOOL", "BYTES"}
OUTPUTS = ("predict", "predict_proba")
MAX_ELEMENTS = 10_000_000


@dataclass(frozen=True)
class InferRequest:
    frame: pd.DataFrame
    id: str | None
    outputs: tuple[str, ...]


def datatype_of(column: Column) -> str:
    return {"number": "FP64", "boolean": "BOOL"}.get(column.type, "BYTES")


def parse_infer(body: Any, columns: Sequence[Column], *, max_rows: int) -> InferRequest:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("an inference request is an object with a non-empty list of inputs")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("the request id must be a string")
    wanted = _wanted_outputs(body.get("outputs"))
    tensors = [_tensor(t, i) for i, t in enumerate(body["inputs"])]
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
        rows = [values[r * k : (r + 1) * k] for r in range(n)]
        return InferRequest(
            columnar_to_frame(names, rows, columns, max_rows=max_rows), request_id, wanted
        )
    lengths = set()
    data: dict[str, list[Any]] = {}
    for i, (name, shape, values) in enumerate(tensors):
        if len(shape) == 2 and shape[1] != 1 or len(shape) > 2:
            raise InvalidInput(
                f"input {name!r} has shape {shape}; a column is [n] or [n, 1]",
                errors=[FieldError(f"inputs[{i}].shape", "expected [n] or [n, 1]")],
            )
        lengths.add(shape[0])
        data[name] = values
    if len(lengths) != 1:
        raise InvalidInput("every input column must have the same number of rows")
    n = lengths.pop()
    rows = [[data[name][r] for name in data] for r in range(n)]
    return InferRequest(
        columnar_to_frame(list(data), rows, columns, max_rows=max_rows), request_id, wanted
    )


def infer_response(
    model: str,
    version: int,
    request_id: str | None,
    predictions: list[Any],
    probabilities: list[list[float]] | None,
    wanted: tuple[str, ...],
) -> dict[str, Any]:
    if not wanted:
        wanted = ("predict",) if probabilities is None else OUTPUTS
    outputs = []
    if "predict" in wanted:
        outputs.append(
            {
                "name": "predict",
                "shape": [len(predictions)],
                "datatype": _datatype_of_values(predictions),
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
    out: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request_id is not None:
        out["id"] = request_id
    return out


def model_metadata(
    name: str,
    versions: Sequence[int],
    columns: Sequence[Column],
    classes: Sequence[Any] | None,
    task: str,
) -> dict[str, Any]:
    outputs = [
        {
            "name": "predict",
            "datatype": "BYTES" if classes and any(isinstance(c, str) for c in classes) else "FP64",
            "shape": [-1],
        }
    ]
    if classes is not None:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": "mlgate",
        "inputs": [{"name": c.name, "datatype": datatype_of(c), "shape": [-1, 1]} for c in columns],
        "outputs": outputs,
        "parameters": {"content_type": "pd", "task": task},
    }


def _tensor(raw: Any, i: int) -> tuple[str, list[int], list[Any]]:
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


def _wanted_outputs(raw: Any) -> tuple[str, ...]:
    """The outputs the request names; () for the default (predict, and predict_proba for
    classifiers)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw
    ):
        raise InvalidInput('outputs is a list of {"name": ...} objects')
    names = tuple(o["name"] for o in raw)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise InvalidInput(
            f"unknown output(s) {', '.join(unknown)}; the outputs are {', '.join(OUTPUTS)}"
        )
    return names


def _datatype_of_values(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
