"""What training saw of each input column, kept compact, and request rows checked against it:
the per-row `warnings` every prediction protocol answers with.

Built once per version from its training snapshot, conformed as training conformed it (so a
request's values, parsed by the same schema, compare like for like): a number's range, the
set of a category's (or a flag's) values, and whether a column was ever missing. A row gets a
warning for a number outside the range (`outside_range`), a category or flag value training
never saw (`unseen_category`) and a missing value in a column that training always had
(`missing`). Free text is not checked (any words may come), and a date-time only for missing.

    seen = seen_of(snapshot, version.columns)
    seen.check(table)  # {0: (RowWarning(column="age", kind="outside_range", ...),)}; {} if none

`check` does a few numpy operations for the numbers and a C-level set lookup per category
column, so that a one-row call costs microseconds; the records are built only for the rows
that have a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from pandas.api.types import is_numeric_dtype

from mlgate.columns import Column
from mlgate.schema import Table, conform

Kind = Literal["outside_range", "unseen_category", "missing"]
KINDS: tuple[Kind, ...] = ("outside_range", "unseen_category", "missing")
SMALL = 16  # rows checked in plain Python; more in numpy
SHOWN = 10  # categories an unseen_category warning lists, the most frequent first
Warnings = dict[int, tuple["RowWarning", ...]]


@dataclass(frozen=True, slots=True)
class RowWarning:
    """One value of one row outside what training saw. `seen`: [low, high] for
    `outside_range`, the most frequent categories (at most SHOWN) for `unseen_category`,
    None for `missing`."""

    column: str
    kind: Kind
    value: Any
    seen: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "value": self.value,
            "seen": self.seen,
            "message": self.message,
        }


def warnings_json(found: Mapping[int, Sequence[RowWarning]]) -> dict[str, list[dict[str, Any]]]:
    """`found` as the answers carry it: row index (as a JSON key) -> that row's warnings."""
    return {str(row): [w.to_json() for w in ws] for row, ws in found.items()}


@dataclass(frozen=True)
class _Category:
    column: str
    key: str
    known: frozenset[Any]
    shown: tuple[Any, ...]  # JSON values, the most frequent first
    distinct: int
    boolean: bool
    never_missing: bool


@dataclass(frozen=True)
class Seen:
    """A version's columns as training saw them, in the shapes the check compares fastest.
    `keys`: the rows' arrays compared as numbers (a number column; a date-time's year part, with
    an infinite range: only its missing values count), each with its range and whether training
    ever missed it; `order`: each key's and then each category's place among the columns."""

    keys: tuple[str, ...]
    columns: tuple[str, ...]  # the column each key belongs to
    low: tuple[float, ...]
    high: tuple[float, ...]
    never_missing: tuple[bool, ...]
    categories: tuple[_Category, ...]
    order: tuple[int, ...]

    def check(self, rows: Table | pd.DataFrame) -> Warnings:
        """Each row with a value outside what training saw, and its warnings in the order of
        the model's columns; rows without any are absent (an empty dict for most calls)."""
        found: list[tuple[int, int, RowWarning]] = []
        data: Any = rows.data if isinstance(rows, Table) else rows
        if self.keys:
            self._numbers(rows, data, found)
        for i, category in enumerate(self.categories, start=len(self.keys)):
            values = data[category.key]
            if all(map(category.known.__contains__, values)):
                continue
            for r, value in enumerate(values):
                if value not in category.known and (warning := _category(category, value)):
                    found.append((r, self.order[i], warning))
        if not found:
            return {}
        found.sort(key=lambda f: (f[0], f[1]))
        out: dict[int, list[RowWarning]] = {}
        for r, _, warning in found:
            out.setdefault(r, []).append(warning)
        return {r: tuple(ws) for r, ws in out.items()}

    def check_read(self, frame: pd.DataFrame, columns: Sequence[Column]) -> Warnings:
        """`check` for rows as read from a file, not yet conformed: a value that does not parse
        as a number counts as missing here (that row cannot be scored anyway)."""
        lenient = frame[[c.name for c in columns]].copy()
        for column in columns:
            values = lenient[column.name]
            if column.type in ("number", "boolean") and not is_numeric_dtype(values):
                lenient[column.name] = pd.to_numeric(values.astype(object), errors="coerce")
        return self.check(conform(lenient, columns).reset_index(drop=True))

    def _numbers(self, rows: Table | pd.DataFrame, data: Any, found: list[Any]) -> None:
        """The numbers' ranges and missing values. A few rows (the usual call) in Python over
        plain floats, which beats numpy's per-operation cost; more, column by column in numpy.
        Either way a value passes with one comparison (NaN fails it, then is looked at)."""
        lows, highs = self.low, self.high
        if len(rows) <= SMALL:
            if isinstance(rows, Table) and rows.matrix is not None and rows.names == self.keys:
                table_rows: Any = rows.matrix.tolist()  # every column a number
            else:
                # float64 arrays as parsed (schema.py): as lists, then row by row
                table_rows = zip(*[data[k].tolist() for k in self.keys], strict=True)
            for r, row in enumerate(table_rows):
                for x, low, high in zip(row, lows, highs, strict=True):
                    if not low <= x <= high:
                        break
                else:
                    continue  # the usual row: every number within its range
                for j, x in enumerate(row):
                    if not lows[j] <= x <= highs[j] and (warning := self._number(j, x)):
                        found.append((r, self.order[j], warning))
            return
        for j, (key, low, high) in enumerate(zip(self.keys, lows, highs, strict=True)):
            array = _floats(data[key])
            outside = ~((array >= low) & (array <= high))
            if outside.any():
                for r in np.flatnonzero(outside).tolist():
                    if warning := self._number(j, float(array[r])):
                        found.append((r, self.order[j], warning))

    def _number(self, j: int, value: float) -> RowWarning | None:
        column = self.columns[j]
        if value != value:  # NaN: missing
            return _missing(column) if self.never_missing[j] else None
        low, high = _plain(self.low[j]), _plain(self.high[j])
        shown = _plain(value)
        return RowWarning(
            column, "outside_range", shown, [low, high],
            f"{column} is {_text(shown)}, outside the range training saw "
            f"({_text(low)} to {_text(high)})",
        )  # fmt: skip


def seen_of(frame: pd.DataFrame, columns: Sequence[Column]) -> Seen:
    """What training rows `frame` (as read, before conforming) show of `columns`; a column
    the rows lack is not checked."""
    usable = [c for c in columns if c.name in frame.columns]
    conformed = conform(frame[[c.name for c in usable]], usable)
    numbers: list[tuple[int, str, str, float, float, bool]] = []
    categories: list[tuple[int, _Category]] = []
    for place, column in enumerate(usable):
        if column.type == "number":
            values = conformed[column.name].to_numpy(dtype="float64")
            present = values[~np.isnan(values)]
            low, high = (present.min(), present.max()) if present.size else (-np.inf, np.inf)
            numbers.append((place, column.name, column.name, float(low), float(high),
                            present.size == values.size))  # fmt: skip
        elif column.type == "datetime":  # only missing: its year is NaN exactly then
            key = f"{column.name}__year"
            never = not bool(conformed[key].isna().any())
            numbers.append((place, key, column.name, -np.inf, np.inf, never))
        elif column.type in ("string", "boolean"):
            values_s = conformed[column.name]
            present_s = values_s.dropna()
            counts = present_s.value_counts()
            # The most frequent first; ties in the order of their values (a stable answer)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            boolean = column.type == "boolean"
            category = _Category(
                column.name, column.name, frozenset(counts.index),
                tuple(_label(v, boolean) for v, _ in ranked[:SHOWN]), len(counts), boolean,
                never_missing=len(present_s) == len(values_s),
            )  # fmt: skip
            categories.append((place, category))
        # text: any words may come; nothing to check
    return Seen(
        keys=tuple(n[1] for n in numbers),
        columns=tuple(n[2] for n in numbers),
        low=tuple(n[3] for n in numbers),
        high=tuple(n[4] for n in numbers),
        never_missing=tuple(n[5] for n in numbers),
        categories=tuple(c for _, c in categories),
        order=tuple(n[0] for n in numbers) + tuple(p for p, _ in categories),
    )


def _category(category: _Category, value: Any) -> RowWarning | None:
    if value is None or (isinstance(value, float) and value != value):  # missing
        return _missing(category.column) if category.never_missing else None
    shown = _label(value, category.boolean)
    listed = ", ".join(map(_text, category.shown))
    more = f" (the {len(category.shown)} most frequent: {listed})"
    if category.distinct <= len(category.shown):
        more = f": {listed}"
    return RowWarning(
        category.column, "unseen_category", shown, list(category.shown),
        f"{category.column} is {_text(shown)}, a value training never saw; it saw "
        f"{category.distinct}{more}",
    )  # fmt: skip


def _missing(column: str) -> RowWarning:
    return RowWarning(
        column, "missing", None, None, f"{column} is missing; training had a value in every row"
    )


def _floats(values: Any) -> np.ndarray:
    return np.asarray(values, dtype="float64")


def _text(value: Any) -> str:
    """A value in a message, as JSON writes it (a string quoted, true, 3.5)."""
    return orjson.dumps(value).decode()


def _label(value: Any, boolean: bool) -> Any:
    return bool(value) if boolean else _plain(value)


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python's, whole floats as ints."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
