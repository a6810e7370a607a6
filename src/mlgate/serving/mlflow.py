"""MLflow's scoring shapes (`POST /invocations`), read into the model's input frame.

JSON bodies carry exactly one of `dataframe_split` ({"columns": [...], "data": [[...]]}),
`dataframe_records` ([{...}, ...]), `instances` (rows as objects, or as lists in the model's
column order) or `inputs` (the same, or {"column": [values]}), and optionally `params`, which
mlgate's models take none of (they are accepted and ignored, as MLflow does for models without
a params schema). CSV bodies have a header row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mlgate.errors import FieldError, InvalidInput
from mlgate.schema import Column, columnar_to_frame, rows_to_frame

SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")


def frame_from_json(body: Any, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    if not isinstance(body, dict):
        raise InvalidInput(
            f"the body must be a JSON object with one of {', '.join(SHAPES)}",
            errors=[FieldError("body", "expected an object")],
        )
    given = [k for k in SHAPES if k in body]
    unknown = sorted(set(body) - set(SHAPES) - {"params"})
    if len(given) != 1 or unknown:
        raise InvalidInput(
            f"send exactly one of {', '.join(SHAPES)} (and optionally params); got "
            f"{', '.join(given + unknown) or 'none of them'}",
            errors=[FieldError((given + unknown + ["body"])[0][:64], "unexpected field")],
        )
    shape, value = given[0], body[given[0]]
    if shape == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise InvalidInput(
                'dataframe_split is {"columns": [...], "data": [[...], ...]}',
                errors=[FieldError("dataframe_split", "expected columns and data")],
            )
        names = value.get("columns", [c.name for c in columns])
        return columnar_to_frame(names, value["data"], columns, max_rows=max_rows)
    if shape == "dataframe_records":
        return rows_to_frame(value, columns, max_rows=max_rows)
    if shape == "inputs" and isinstance(value, dict):
        return _columns_to_frame(value, columns, max_rows=max_rows, field=shape)
    return _instances(value, columns, max_rows=max_rows, field=shape)


def read_params(body: Any, ask: Any) -> None:
    """`params` as mlgate reads them: `explain` (true or false) and `explain_top` (N), the
    per-row explanations of explainers/explain.py. Other params are the model's, and ignored."""
    params = body.get("params") if isinstance(body, dict) else None
    if params is None:
        return
    if not isinstance(params, dict):
        raise InvalidInput(
            "params is an object of name: value",
            errors=[FieldError("params", "expected an object")],
        )
    if "explain" in params:
        ask.read(params["explain"], "params.explain")
    if "explain_top" in params:
        ask.read({"top": params["explain_top"]}, "params.explain_top")


def frame_from_csv(raw: bytes, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    """A CSV body with a header row; empty cells are missing values."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV body is not UTF-8 text") from None
    # newline="": the csv module reads line ends itself (a lone \r inside a cell included)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _csv_rows(reader, columns, max_rows=max_rows)
    except csv.Error as exc:  # what the csv module cannot read at all
        raise InvalidInput(
            f"the CSV body cannot be read at line {reader.line_num}: {exc}; send a header "
            "row, then one row per line, quoting a cell that holds a comma, quote or line end",
            errors=[FieldError(f"line {reader.line_num}", "not CSV")],
        ) from None


def _csv_rows(reader: Any, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(
            "the CSV body is empty; send a header row, then one row per line"
        ) from None
    types = {c.name: c.type for c in columns}
    rows: list[dict[str, Any]] = []
    for line, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) != len(header):
            raise InvalidInput(
                f"CSV line {line} has {len(record)} values for {len(header)} columns",
                errors=[FieldError(f"line {line}", "wrong number of values")],
            )
        rows.append(
            {
                name: _cell(value, types.get(name))
                for name, value in zip(header, record, strict=True)
            }
        )
    return rows_to_frame(rows, columns, max_rows=max_rows)


def _instances(value: Any, columns: Sequence[Column], *, max_rows: int, field: str) -> pd.DataFrame:
    if not isinstance(value, list):
        raise InvalidInput(
            f"{field} must be a list of rows", errors=[FieldError(field, "expected a list")]
        )
    if all(isinstance(v, dict) for v in value):
        return rows_to_frame(value, columns, max_rows=max_rows)
    if all(isinstance(v, list) for v in value):
        return columnar_to_frame([c.name for c in columns], value, columns, max_rows=max_rows)
    if len(columns) == 1:
        return columnar_to_frame(
            [columns[0].name], [[v] for v in value], columns, max_rows=max_rows
        )
    raise InvalidInput(
        f"{field} must hold rows as objects or as lists in the model's column order "
        f"({', '.join(c.name for c in columns)})",
        errors=[FieldError(field, "mixed or scalar rows")],
    )


def _columns_to_frame(
    value: dict[str, Any], columns: Sequence[Column], *, max_rows: int, field: str
) -> pd.DataFrame:
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInput(
            f"{field} as an object maps each column to a list of values, all of one length",
            errors=[FieldError(field, "columns of different lengths")],
        )
    names = list(value)
    data = [list(row) for row in zip(*value.values(), strict=True)]
    return columnar_to_frame(names, data, columns, max_rows=max_rows)


def _cell(value: str, kind: str | None) -> Any:
    if value == "":
        return None
    if kind in ("number", "boolean"):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        try:
            return float(value)
        except ValueError:
            return value  # the schema check names the column and the problem
    return value
