"""The input schema: column types inferred from training rows, and request rows checked against it.

Training and serving both pass their rows through `conform`, so a model sees the same dtypes whether
its rows came from PostgreSQL, a CSV file or a JSON request. Every column accepts null (missing
values are imputed by the model's preprocessing).

Column types: number, boolean (fed to models as 0/1), string (a category), text (free text,
vectorised by the model) and datetime (ISO 8601 in JSON; fed to models as its parts, see
`feature_columns`).
"""

from __future__ import annotations

import difflib
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlgate.columns import Column as Column  # defined there, without pandas; named here too
from mlgate.columns import ColumnType as ColumnType
from mlgate.errors import FieldError, InvalidInput, PayloadTooLarge, UnknownColumns

MAX_FIELD_ERRORS = 20
_JSON_TYPE = {
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "text": "a string",
    "datetime": "an ISO 8601 date-time string",
}
DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")
# Free text: long strings that mostly differ from one another.
_TEXT_MIN_MEAN_LENGTH = 30
_TEXT_MIN_DISTINCT_SHARE = 0.5
_TEXT_SAMPLE = 10_000


def infer_columns(frame: pd.DataFrame) -> tuple[Column, ...]:
    """The type of each column, from its dtype or, for object columns, from its values."""
    return tuple(Column(str(name), _infer_type(str(name), frame[name])) for name in frame.columns)


def feature_columns(columns: Sequence[Column]) -> tuple[Column, ...]:
    """The columns a model's preprocessing sees: each datetime becomes numeric parts."""
    out: list[Column] = []
    for column in columns:
        if column.type == "datetime":
            out.extend(Column(f"{column.name}__{part}", "number") for part in DATETIME_PARTS)
        else:
            out.append(column)
    return tuple(out)


def conform(frame: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """`frame` reduced to `columns`, in order, with one dtype per column type.

    number and boolean become float64 (booleans as 0/1); string and text become object with NaN
    for missing; a datetime becomes float64 columns of its parts (see `feature_columns`).
    """
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise InvalidInput(f"the rows lack column(s) {', '.join(map(repr, missing))}")
    out: dict[str, Any] = {}
    for column in columns:
        values = frame[column.name]
        if column.type in ("string", "text"):
            mask = values.isna()
            strings = values.astype(object)
            if pd.api.types.infer_dtype(strings, skipna=True) != "string":
                strings = strings.map(str).astype(object)  # numbers used as category labels
            # Missing text is no words at all; a missing category is its own category later.
            out[column.name] = strings.where(~mask, "" if column.type == "text" else np.nan)
        elif column.type == "datetime":
            out.update(_datetime_parts(column.name, values))
        else:
            out[column.name] = pd.to_numeric(
                values.astype(object).where(values.notna(), np.nan), errors="raise"
            ).astype("float64")
    return pd.DataFrame(out, index=frame.index)


def suspect_rows(frame: pd.DataFrame, columns: Sequence[Column]) -> np.ndarray:
    """One bool a row: whether `conform` may refuse the row (a value of a number or boolean
    column that does not parse as a number), found column by column in one pass; every row
    when a column is missing. A hint for scoring the rest together: a flagged row is tried
    alone, as it would be anyway."""
    if any(c.name not in frame.columns for c in columns):
        return np.ones(len(frame), dtype=bool)
    suspect = np.zeros(len(frame), dtype=bool)
    for column in columns:
        values = frame[column.name]
        if column.type not in ("number", "boolean") or pd.api.types.is_numeric_dtype(values):
            continue  # conform refuses no string, text or datetime value; nor a numeric dtype
        parsed = pd.to_numeric(values.astype(object), errors="coerce")
        suspect |= (parsed.isna() & values.notna()).to_numpy()
    return suspect


def _datetime_parts(name: str, values: pd.Series | list[Any]) -> dict[str, np.ndarray]:
    stamps = pd.to_datetime(pd.Series(values), errors="coerce", utc=True, format="ISO8601")
    parts = {
        "year": stamps.dt.year,
        "month": stamps.dt.month,
        "day": stamps.dt.day,
        "day_of_week": stamps.dt.day_of_week,
        "hour": stamps.dt.hour,
    }
    return {
        f"{name}__{part}": parts[part].to_numpy(dtype="float64", na_value=np.nan)
        for part in DATETIME_PARTS
    }


@dataclass(frozen=True, slots=True)
class Table:
    """Request rows checked against a model's columns, held column by column as numpy arrays
    (datetimes already split into their parts): what serving's compiled preprocessor reads
    without building a DataFrame. `to_frame()` gives the DataFrame the other paths take."""

    data: dict[str, np.ndarray]
    n_rows: int
    # Where every column is a number: the columns side by side (float64, in `names`' order),
    # as they were parsed. `data`'s arrays are views of it; a reader copies before writing.
    matrix: np.ndarray | None = field(default=None, compare=False)
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.data)


def rows_to_frame(rows: Any, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    """Check a JSON list of row objects against `columns` and build the frame the model takes."""
    return rows_to_table(rows, columns, max_rows=max_rows).to_frame()


def columnar_to_frame(
    names: Any, data: Any, columns: Sequence[Column], *, max_rows: int
) -> pd.DataFrame:
    """Check a columnar body, {"columns": [...], "data": [[...], ...]}, and build the frame."""
    return columnar_to_table(names, data, columns, max_rows=max_rows).to_frame()


def rows_to_table(rows: Any, columns: Sequence[Column], *, max_rows: int) -> Table:
    """Check a JSON list of row objects against `columns`; the rows as a Table."""
    if not isinstance(rows, list):
        raise InvalidInput(
            'rows must be a list of objects like {"column": value}',
            errors=[FieldError("rows", "expected a list of objects")],
        )
    _check_count(len(rows), "rows", max_rows)
    names = [c.name for c in columns]
    known = set(names)
    fast = _rows_fast(rows, columns)
    if fast is not None:
        return fast
    errors: list[FieldError] = []
    data: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError(f"rows[{i}]", "expected an object of column: value"))
            continue
        for name in sorted(row.keys() - known):
            errors.append(_Unknown(f"rows[{i}].{_short(name)}", _unknown(name, names)))
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
    return _table(data, columns, len(rows))


def _rows_fast(rows: list[Any], columns: Sequence[Column]) -> Table | None:
    """The common case, in a few C-level passes: every row an object with exactly the model's
    columns (as many keys as columns, each column found) and every value of its column's JSON
    type. None otherwise: the per-value check then says what is wrong."""
    names = [c.name for c in columns]
    if set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(names)}:
        return None
    try:
        values = list(map(operator.itemgetter(*names), rows))
    except KeyError:
        return None
    if len(names) == 1:  # itemgetter of one name gives the value itself, not a 1-tuple
        values = [(v,) for v in values]
    if all(c.type == "number" for c in columns):  # one matrix, one type check
        if not set(map(type, itertools.chain.from_iterable(values))) <= _FITTING_TYPES["number"]:
            return None
        matrix = np.array(values, dtype="float64")  # None becomes NaN
        data = {name: matrix[:, j] for j, name in enumerate(names)}
        return Table(data, len(rows), matrix, tuple(names))
    by_column = dict(zip(names, map(list, zip(*values, strict=True)), strict=True))
    if not all(_all_fit(c, by_column[c.name]) for c in columns):
        return None
    return _table(by_column, columns, len(rows))


def columnar_to_table(names: Any, data: Any, columns: Sequence[Column], *, max_rows: int) -> Table:
    """Check a columnar body, {"columns": [...], "data": [[...], ...]}; the rows as a Table."""
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
    errors: list[FieldError] = [
        _Unknown(f"columns[{i}]", _unknown(n, by_name))
        for i, n in enumerate(names)
        if n not in by_name
    ]
    errors += [FieldError("columns", _missing(c)) for c in columns if c.name not in names]
    if len(set(names)) != len(names):
        errors.append(FieldError("columns", "a column is named twice; name each column once"))
    _raise_if(errors)
    width = len(names)
    if all(type(row) is list and len(row) == width for row in data):
        transposed = dict(zip(names, map(list, zip(*data, strict=True)), strict=True))
        if all(_all_fit(by_name[n], transposed[n]) for n in names):
            return _table(transposed, columns, len(data))
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
    return _table(values, columns, len(data))


def columns_to_table(
    data: dict[str, list[Any] | np.ndarray], columns: Sequence[Column], *, max_rows: int
) -> Table:
    """Check a body given column by column (the Open Inference Protocol's tensors: a list of
    JSON values, or a numpy array read from binary data) against `columns`; the rows as a Table.
    Every column must hold the same number of values."""
    lengths = {len(values) for values in data.values()}
    if len(lengths) != 1:
        raise InvalidInput("every input column must have the same number of rows")
    n_rows = lengths.pop()
    _check_count(n_rows, "inputs", max_rows)
    by_name = {c.name: c for c in columns}
    errors: list[FieldError] = [
        _Unknown(f"inputs.{_short(n)}", _unknown(n, by_name)) for n in data if n not in by_name
    ]
    errors += [FieldError("inputs", _missing(c)) for c in columns if c.name not in data]
    _raise_if(errors)
    lists: dict[str, list[Any]] = {}
    arrays: dict[str, np.ndarray] = {}
    for column in columns:
        values = data[column.name]
        if isinstance(values, np.ndarray):
            kinds = "b" if column.type == "boolean" else "iuf" if column.type == "number" else ""
            if values.dtype.kind in kinds:  # typed binary data: no value to check one by one
                numbers = values.astype("float64")
                if np.isinf(numbers).any():  # JSON cannot carry one; binary data can
                    errors.append(FieldError(
                        f"inputs.{column.name}", "holds an infinite value; send a finite "
                        "number, or NaN for a missing one"))  # fmt: skip
                arrays[column.name] = numbers
                continue
            values = values.tolist()
        if not _all_fit(column, values):
            for r, value in enumerate(values):
                if not _fits(column, value):
                    errors.append(FieldError(f"inputs.{column.name}[{r}]", _wrong(column, value)))
                    if len(errors) >= MAX_FIELD_ERRORS:
                        break
        lists[column.name] = values
    _raise_if(errors)
    table = _table(lists, [c for c in columns if c.name in lists], n_rows)
    if not arrays:
        return table
    merged = {**table.data, **arrays}
    return Table({name: merged[name] for name in _table_order(columns, merged)}, n_rows)


def _table_order(columns: Sequence[Column], merged: dict[str, np.ndarray]) -> list[str]:
    """The Table's keys in the columns' order (a datetime column gives several parts)."""
    order = []
    for column in columns:
        if column.name in merged:
            order.append(column.name)
        else:
            order.extend(f"{column.name}__{part}" for part in DATETIME_PARTS)
    return order


def _infer_type(name: str, values: pd.Series) -> ColumnType:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime"
    present = values.dropna()
    # infer_dtype looks at the values in C; a sample is enough to tell text from categories.
    kind = pd.api.types.infer_dtype(present, skipna=True) if len(present) else "empty"
    if kind == "boolean":
        return "boolean"
    if kind in ("datetime", "datetime64", "date"):
        return "datetime"
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "number"
    strings = present.head(_TEXT_SAMPLE).astype(str)
    if (
        len(strings) >= 20
        and strings.str.len().mean() >= _TEXT_MIN_MEAN_LENGTH
        and strings.str.contains(" ", regex=False).mean() > 0.5
        and strings.nunique() >= _TEXT_MIN_DISTINCT_SHARE * len(strings)
    ):
        return "text"
    return "string"


def _fits(column: Column, value: Any) -> bool:
    if value is None:
        return True
    if column.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if column.type in ("string", "text"):
        return isinstance(value, str)
    if column.type == "datetime":
        return isinstance(value, str) and _is_iso_datetime(value)
    return isinstance(value, bool)


def _is_iso_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_FITTING_TYPES: dict[ColumnType, frozenset[type]] = {
    "number": frozenset({int, float, type(None)}),
    "boolean": frozenset({bool, type(None)}),
    "string": frozenset({str, type(None)}),
    "text": frozenset({str, type(None)}),
}


def _all_fit(column: Column, values: list[Any]) -> bool:
    """Whether every value fits the column, judged by exact JSON types (datetimes and anything
    unusual go to the per-value check, which also names what is wrong)."""
    allowed = _FITTING_TYPES.get(column.type)
    return allowed is not None and set(map(type, values)) <= allowed


def _table(data: dict[str, list[Any]], columns: Sequence[Column], n_rows: int) -> Table:
    out: dict[str, np.ndarray] = {}
    for column in columns:
        values = data[column.name]
        if column.type in ("string", "text"):
            missing: Any = "" if column.type == "text" else np.nan
            out[column.name] = np.array([missing if v is None else v for v in values], dtype=object)
        elif column.type == "datetime":
            out.update(_datetime_parts(column.name, values))
        else:  # numbers and booleans (as 0/1); numpy reads None as NaN
            out[column.name] = np.array(values, dtype="float64")
    return Table(out, n_rows)


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
            max_rows=max_rows,
        )


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        first = errors[0]
        others = len(errors) - 1
        more = f" (and {others} more problem{'' if others == 1 else 's'})" if others else ""
        unknown = any(isinstance(e, _Unknown) for e in errors)
        error = UnknownColumns if unknown else InvalidInput
        raise error(f"{first.field}: {first.message}{more}", errors=errors[:MAX_FIELD_ERRORS])


@dataclass(frozen=True)
class _Unknown(FieldError):
    """A field naming a column the model does not take."""


def _short(name: str) -> str:
    # Names are echoed so that the client can find the field; a name is never long in a real schema.
    return name if len(name) <= 64 else name[:61] + "..."


def _unknown(name: str, known: Iterable[str]) -> str:
    """Which column the caller may have meant: the nearest name, ignoring case."""
    by_folded = {k.casefold(): k for k in known}
    nearest = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=0.6)
    if nearest:
        return f"unknown column {_short(name)!r}; did you mean {by_folded[nearest[0]]!r}?"
    return f"unknown column {_short(name)!r}; it is not one of the model's {len(by_folded)} columns"


def _missing(column: Column) -> str:
    return f"missing column {column.name!r} ({column.type}); send null if the value is unknown"


def _wrong(column: Column, value: Any) -> str:
    got = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
    return f"expected {_JSON_TYPE[column.type]} or null, got {got}"
