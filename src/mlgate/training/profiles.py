"""What a version's training rows look like, column by column: a number's range and median, a
category's most frequent values, and a value to put in an example row. The consumer portal
fills its examples and its "Try a row" with them, so that a first call sends values the model
has seen rather than zeros and empty strings.

The example row is `typical` (each column's median or most frequent value: nothing of any one
training row) or, where the operator says so (MLGATE_PORTAL_EXAMPLE=row), a real row of the
snapshot, which may disclose data. Profiles are read from the version's training snapshot
(the reader monitoring's drift baseline uses) once per version and kept: a version's snapshot
never changes.

    profiles = Profiles(services.uow, services.artifacts, example="typical")
    profile = profiles.of(version)  # None: the version has no snapshot (an imported model)
    profile.example                 # {"age": 41.0, "plan": "basic", "notes": None}
    profiles.seen(version)          # what serving checks rows against (training/seen.py)
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from mlgate.columns import Column, ColumnType
from mlgate.errors import NotFound
from mlgate.registry.formats import IMPORTED
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.training.seen import Seen, seen_of
from mlgate.uow import UnitOfWork

Example = Literal["typical", "row"]
EXAMPLES: tuple[Example, ...] = ("typical", "row")
TOP = 5  # categories listed per column, the most frequent first
KEPT = 32  # versions whose profile this process keeps
DIGITS = 6  # significant digits of a median shown and sent: what a reader can take in


@dataclass(frozen=True)
class ColumnProfile:
    """One input column as training saw it. `low`/`high`: a number's or a date-time's range;
    `categories`: a category's (or a flag's) most frequent values, of `distinct` in all;
    `example`: the value an example row sends (None where training only saw it missing)."""

    name: str
    type: ColumnType
    example: Any
    low: Any = None
    high: Any = None
    categories: tuple[Any, ...] = ()
    distinct: int = 0
    present: int = 0  # rows where it is not missing


@dataclass(frozen=True)
class Profile:
    """Every input column's profile, and the example row built from them (or a real row)."""

    columns: tuple[ColumnProfile, ...]
    example: dict[str, Any]
    kind: Example
    n_rows: int


def profile_of(frame: pd.DataFrame, columns: Sequence[Column], example: Example) -> Profile:
    """The profile of training rows `frame` for a version's input `columns`."""
    profiles = tuple(_column(c, frame[c.name]) for c in columns if c.name in frame.columns)
    row = {p.name: p.example for p in profiles}
    if example == "row" and len(frame):
        row = _real_row(frame, columns)
    return Profile(profiles, row, example, len(frame))


def _column(column: Column, values: pd.Series) -> ColumnProfile:
    present = values.dropna()
    if present.empty:
        return ColumnProfile(column.name, column.type, None)
    if column.type == "number":
        numbers = pd.to_numeric(present, errors="coerce").dropna().astype("float64")
        if numbers.empty:
            return ColumnProfile(column.name, column.type, None)
        return ColumnProfile(
            column.name, column.type, _short(float(numbers.median())),
            low=_plain(float(numbers.min())), high=_plain(float(numbers.max())),
            distinct=int(numbers.nunique()), present=len(numbers),
        )  # fmt: skip
    if column.type == "datetime":
        stamps = _stamps(present).dropna()
        if stamps.empty:
            return ColumnProfile(column.name, column.type, None)
        return ColumnProfile(
            column.name, column.type, _iso(stamps.median()), low=_iso(stamps.min()),
            high=_iso(stamps.max()), distinct=int(stamps.nunique()), present=len(stamps),
        )  # fmt: skip
    # string, text: numbers used as labels are labels (as schema.conform reads them)
    labels = present.map(bool) if column.type == "boolean" else present.map(str)
    counts = labels.value_counts()
    # The most frequent first; ties in the order of their values, so that a profile is the
    # same wherever it is computed.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    if column.type == "text":  # free text: one row's words are that row's; none are listed
        shared = ranked[0][1] > 1
        return ColumnProfile(column.name, column.type, _plain(ranked[0][0]) if shared else "",
                             distinct=len(ranked), present=len(labels))  # fmt: skip
    return ColumnProfile(
        column.name, column.type, _plain(ranked[0][0]),
        categories=tuple(_plain(v) for v, _ in ranked[:TOP]), distinct=len(ranked),
        present=len(labels),
    )  # fmt: skip


def _real_row(frame: pd.DataFrame, columns: Sequence[Column]) -> dict[str, Any]:
    """The first training row with the fewest missing values, as JSON values."""
    names = [c.name for c in columns if c.name in frame.columns]
    missing = frame[names].isna().sum(axis=1).to_numpy()
    at = int(missing.argmin()) if len(missing) else 0
    row = frame.iloc[at]
    out: dict[str, Any] = {}
    for column in columns:
        if column.name not in frame.columns:
            continue
        value = row[column.name]
        if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
            out[column.name] = None
        elif column.type == "datetime":
            out[column.name] = _iso(_stamps(pd.Series([value])).iloc[0])
        elif column.type == "boolean":
            out[column.name] = bool(value)
        elif column.type in ("string", "text"):
            out[column.name] = str(value)
        else:
            out[column.name] = _plain(float(value))
    return out


def _stamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.Series(values)
        return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def _iso(stamp: Any) -> str | None:
    return None if pd.isna(stamp) else str(pd.Timestamp(stamp).isoformat())


def _short(value: float) -> Any:
    return _plain(float(f"{value:.{DIGITS}g}"))


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python's, whole floats as ints."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class Profiles:
    """Each version's profile, computed on first ask and kept for the process (the latest
    KEPT versions asked about). Thread-safe: pages ask from the server's thread pool."""

    def __init__(
        self, uow: Callable[[], UnitOfWork], artifacts: ArtifactStore, *, example: Example
    ) -> None:
        self._uow = uow
        self._artifacts = artifacts
        self.example = example
        self._kept: OrderedDict[tuple[str, int, datetime], Profile | None] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, version: ModelVersion) -> Profile | None:
        """`version`'s profile; None where it was registered without a training snapshot."""
        key = (version.model_name, version.number, version.created_at)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        frame = self._snapshot(version)
        found = None if frame is None else profile_of(frame, version.columns, self.example)
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return found

    def seen(self, version: ModelVersion) -> Seen | None:
        """What `version`'s training rows show of its columns, for the rows' warnings; None
        where it was registered without a training snapshot, and for an imported model: the
        rows it keeps are its holdout or input example, not what it was trained on, and a
        warning that says "training never saw" must be true. Read afresh on each call: the
        caller keeps it (serving, with the loaded model)."""
        if version.artifact.format == IMPORTED:
            return None
        frame = self._snapshot(version)
        return None if frame is None else seen_of(frame, version.columns)

    def _snapshot(self, version: ModelVersion) -> pd.DataFrame | None:
        from mlgate.training.steps import read_snapshot

        try:
            return read_snapshot(self._uow(), self._artifacts, version.model_name, version.number)
        except NotFound:  # imported, or trained before snapshots were kept
            return None
