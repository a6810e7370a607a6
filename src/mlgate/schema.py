"""The input schema: column types inferred from training rows, and request rows checked against it.

Training and serving both pass their rows through `conform`, so a model sees the same dtypes whether
its rows came from PostgreSQL, a CSV file or a JSON request. Every column accepts null (missing
values are imputed by the model's preprocessing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlgate.errors import FieldError, InvalidInput, PayloadTooLarge

ColumnType = Literal["number", "string", "boolean"]
MAX_FIELD_ERRORS = 20
_JSON_TYPE = {"number": "a number", "string": "a string", "boolean": "true or false"}


@dataclass(frozen=True)
class Column:
    """One input column the model expects in every prediction row."""

    name: str
    type: ColumnType

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        return cls(name=str(data["name"]), type=data["type"])


def infer_columns(frame: pd.DataFrame) -> tuple[Column, ...]:
    """The type of each column, from its dtype or, for object columns, from its values."""
    return tuple(Column(str(name), _infer_type(str(name), frame[name])) for name in frame.columns)


def conform(frame: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """`frame` reduced to `columns`, in order, with one dtype per column type.

    number and boolean become float64 (booleans as 0/1), string becomes object with NaN for missing.
    """
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise InvalidInput(f"the rows lack column(s) {', '.join(map(repr, missing))}")
    out: dict[str, Any] = {}
    for column in columns:
        values = frame[column.name]
        if column.type == "string":
            mask = values.isna()
            strings = values.astype(object).map(str).astype(object)
            out[column.name] = strings.where(~mask, np.nan)
        else:
            out[column.name] = pd.to_numeric(
                values.astype(object).where(values.notna(), np.nan), errors="raise"
            ).astype("float64")
    return pd.DataFrame(out, index=frame.index)


def rows_to_frame(rows: Any, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    """Check a JSON list of row objects against `columns` and build the frame the model takes."""
    if not isinstance(rows, list):
        raise InvalidInput(
            'rows must be a list of objects like {"column": value}',
            errors=[FieldError("rows", "expected a list of objects")],
        )
    _check_count(len(rows), "rows", max_rows)
    names = [c.name for c in columns]
    known = set(names)
    errors: list[FieldError] = []
    data: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError(f"rows[{i}]", "expected an object of column: value"))
            continue
        for name in sorted(row.keys() - known):
            errors.append(FieldError(f"rows[{i}].{_short(name)}", _unknown(name)))
        for column in columns:
            if column.name not in row:
                errors.append(FieldError(f"rows[{i}].{column.name}", _missing(column)))
                continue
            value = row[column.name]
            if _fits(column, value):
                data[column.name].append(value)
            else:
                errors.append(FieldError(f"rows[{i}].{column.name}", _wrong(column, value)))
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    _raise_if(errors)
    return _frame(data, columns)


def columnar_to_frame(
    names: Any, data: Any, columns: Sequence[Column], *, max_rows: int
) -> pd.DataFrame:
    """Check a columnar body, {"columns": [...], "data": [[...], ...]}, and build the frame."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(
            "columns must be a list of column names",
            errors=[FieldError("columns", "expected a list of strings")],
        )
    if not isinstance(data, list):
        raise InvalidInput(
            "data must be a list of rows, each a list of values in the order of columns",
            errors=[FieldError("data", "expected a list of lists")],
        )
    _check_count(len(data), "data", max_rows)
    by_name = {c.name: c for c in columns}
    errors = [
        FieldError(f"columns[{i}]", _unknown(n)) for i, n in enumerate(names) if n not in by_name
    ]
    errors += [FieldError("columns", _missing(c)) for c in columns if c.name not in names]
    if len(set(names)) != len(names):
        errors.append(FieldError("columns", "a column is named twice; name each column once"))
    _raise_if(errors)
    values: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            errors.append(
                FieldError(f"data[{i}]", f"expected a list of {len(names)} values, one per column")
            )
        else:
            for j, (name, value) in enumerate(zip(names, row, strict=True)):
                if _fits(by_name[name], value):
                    values[name].append(value)
                else:
                    errors.append(FieldError(f"data[{i}][{j}]", _wrong(by_name[name], value)))
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    _raise_if(errors)
    return _frame(values, columns)


def _infer_type(name: str, values: pd.Series) -> ColumnType:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise InvalidInput(
            f"column {name!r} holds dates or times, which this version cannot use as a feature; "
            f"leave it out (--drop {name}) or turn it into numbers in the query"
        )
    present = values.dropna()
    if len(present) and present.map(lambda v: isinstance(v, bool | np.bool_)).all():
        return "boolean"
    numeric = present.map(
        lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool)
    )
    if len(present) and numeric.all():
        return "number"
    return "string"


def _fits(column: Column, value: Any) -> bool:
    if value is None:
        return True
    if column.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if column.type == "string":
        return isinstance(value, str)
    return isinstance(value, bool)


def _frame(data: dict[str, list[Any]], columns: Sequence[Column]) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for column in columns:
        values = data[column.name]
        if column.type == "string":
            out[column.name] = np.array([np.nan if v is None else v for v in values], dtype=object)
        else:
            out[column.name] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype="float64"
            )
    return pd.DataFrame(out)


def _check_count(n_rows: int, field: str, max_rows: int) -> None:
    if n_rows == 0:
        raise InvalidInput(
            f"{field} is empty; send at least one row",
            errors=[FieldError(field, "expected at least one row")],
        )
    if n_rows > max_rows:
        raise PayloadTooLarge(
            f"{n_rows} rows is more than the {max_rows} allowed in one request; "
            "split them into several requests",
            errors=[FieldError(field, f"at most {max_rows} rows per request")],
        )


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise InvalidInput(
            f"{first.field}: {first.message}{more}", errors=errors[:MAX_FIELD_ERRORS]
        )


def _short(name: str) -> str:
    # Names are echoed so that the client can find the field; a name is never long in a real schema.
    return name if len(name) <= 64 else name[:61] + "..."


def _unknown(name: str) -> str:
    return f"unknown column {_short(name)!r}; GET /v1/models/{{name}} lists the model's columns"


def _missing(column: Column) -> str:
    return f"missing column {column.name!r} ({column.type}); send null if the value is unknown"


def _wrong(column: Column, value: Any) -> str:
    got = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
    return f"expected {_JSON_TYPE[column.type]} or null, got {got}"
