"""Turning rows read from a source into features and a target that a model can be fitted on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.registry.model import Task
from mlgate.schema import Column, conform, infer_columns

MIN_ROWS = 10


@dataclass(frozen=True)
class TrainingData:
    X: pd.DataFrame  # conformed: one column per feature column (datetimes as parts)
    y: pd.Series  # regression: float64; classification: codes 0..k-1 into `classes`
    task: Task
    columns: tuple[Column, ...]  # the input schema: what a prediction request sends
    classes: tuple[Any, ...] | None
    n_rows_read: int
    n_rows_without_target: int
    sha256: str
    notes: tuple[str, ...] = ()


def infer_task(y: pd.Series) -> Task:
    """Classification for labels, booleans and small sets of whole numbers; else regression."""
    present = y.dropna()
    if pd.api.types.is_bool_dtype(present.dtype) or not pd.api.types.is_numeric_dtype(
        present.dtype
    ):
        return "classification"
    values = present.to_numpy(dtype="float64")
    whole = bool(np.all(np.isclose(values, np.round(values))))
    distinct = len(np.unique(values))
    return (
        "classification"
        if whole and distinct <= max(2, min(20, len(values) // 20))
        else "regression"
    )


def prepare(
    frame: pd.DataFrame,
    *,
    target: str,
    drop: Sequence[str],
    task: Task | None,
    tasks: Sequence[Task] = ("classification", "regression"),
    keep_all: bool = False,
) -> TrainingData:
    """Features conformed to their inferred schema, and the target fit for the task.

    The task is `task`, else the only one in `tasks`, else inferred from the target. Rows whose
    target is missing are left out (and counted); constant and identifier-like columns are left
    out with a note. Raises InvalidInput when the target or a dropped column is not there, when
    a feature is a copy of the target, when nothing is left to learn from, or when the target
    does not suit the task.
    """
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(f"the rows name column(s) {', '.join(twice)} twice; alias them apart")
    frame = frame.set_axis(names, axis=1)
    available = ", ".join(names)
    if target not in frame.columns:
        raise InvalidInput(f"no column {target!r} to predict; the rows have: {available}")
    unknown = [d for d in drop if d not in frame.columns]
    if unknown:
        raise InvalidInput(
            f"cannot drop {', '.join(map(repr, unknown))}: the rows have {available}"
        )
    if target in drop:
        raise InvalidInput(f"{target!r} is the target; it cannot also be dropped")
    y_all = frame[target]
    if y_all.notna().sum() == 0:
        raise InvalidInput(f"{target!r} has no values; there is nothing to learn")
    candidates = [n for n in names if n != target and n not in drop]
    _refuse_leaks(frame, candidates, target)
    # A model that reads its inputs by position (a CNN's pixels) keeps constant columns too.
    feature_names, notes = (list(candidates), []) if keep_all else useful_columns(frame, candidates)
    if not feature_names:
        raise InvalidInput(f"no feature columns are left besides the target {target!r}")
    if task is None:
        task = tasks[0] if len(tasks) == 1 else infer_task(y_all)

    columns = infer_columns(frame[feature_names])
    X_all = conform(frame[feature_names], columns)
    sha256 = _fingerprint(X_all, y_all, columns, target)
    keep = y_all.notna().to_numpy()
    X, y = X_all[keep].reset_index(drop=True), y_all[keep].reset_index(drop=True)
    if len(X) < MIN_ROWS:
        raise InvalidInput(
            f"only {len(X)} rows have a value for {target!r}; at least {MIN_ROWS} are needed"
        )
    y, classes = _target_for(task, y, target)
    return TrainingData(
        X=X,
        y=y,
        task=task,
        columns=columns,
        classes=classes,
        n_rows_read=len(frame),
        n_rows_without_target=int((~keep).sum()),
        sha256=sha256,
        notes=tuple(notes),
    )


def _refuse_leaks(frame: pd.DataFrame, candidates: Sequence[str], target: str) -> None:
    y = frame[target]
    numeric_target = pd.api.types.is_numeric_dtype(y.dtype)
    for name in candidates:
        column = frame[name]
        if numeric_target and pd.api.types.is_numeric_dtype(column.dtype):
            same = np.array_equal(
                column.to_numpy("float64", na_value=np.nan),
                y.to_numpy("float64", na_value=np.nan),
                equal_nan=True,
            )
        else:
            same = column.astype(object).equals(y.astype(object))
        if same:
            raise InvalidInput(
                f"column {name!r} is a copy of the target {target!r}, so the model would learn "
                f"nothing real (leakage); drop {name} from the inputs"
            )


def useful_columns(frame: pd.DataFrame, candidates: Sequence[str]) -> tuple[list[str], list[str]]:
    """The candidates minus constant and identifier-like columns, with a note for each dropped."""
    keep: list[str] = []
    notes: list[str] = []
    n_rows = len(frame)
    for name in candidates:
        values = frame[name].dropna()
        distinct = values.nunique()
        if distinct <= 1:
            notes.append(f"left out {name!r}: it holds a single value")
            continue
        if n_rows >= 20 and distinct == n_rows and _identifier_like(values):
            notes.append(f"left out {name!r}: every row has its own value, like an identifier")
            continue
        keep.append(name)
    return keep, notes


def _identifier_like(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values.dtype):
        ordered = np.sort(values.to_numpy())
        return bool(np.all(np.diff(ordered) == 1))
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    strings = values.astype(str)
    return bool(strings.str.len().mean() < 40 and not strings.str.contains(" ").mean() > 0.5)


def _target_for(task: Task, y: pd.Series, target: str) -> tuple[pd.Series, tuple[Any, ...] | None]:
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if task == "regression":
        if not numeric:
            raise InvalidInput(
                f"{target!r} is not numeric, so it cannot be regressed; "
                "use a classification algorithm such as logistic_regression"
            )
        if y.nunique() < 2:
            raise InvalidInput(f"{target!r} has a single value; there is nothing to predict")
        return y.astype("float64"), None
    if numeric:
        values = y.to_numpy(dtype="float64")
        if not np.all(np.isclose(values, np.round(values))):
            raise InvalidInput(
                f"{target!r} holds fractional numbers, which are not classes; "
                "use a regression algorithm such as linear_regression"
            )
    y = normalise_labels(y)
    labels = sorted(y.unique().tolist())
    classes = tuple(_plain(c) for c in labels)
    if len(classes) < 2:
        raise InvalidInput(f"{target!r} has a single class; a classifier needs at least two")
    if len(classes) > max(50, len(y) // 2):
        raise InvalidInput(
            f"{target!r} has {len(classes)} distinct values among {len(y)} rows; that looks like "
            "a quantity or an identifier, not classes"
        )
    codes = pd.Series(pd.Categorical(y, categories=labels).codes.astype("int64"), name=y.name)
    return codes, classes


def normalise_labels(y: pd.Series) -> pd.Series:
    """Class labels as training keeps them: whole numbers as int64, booleans, else strings."""
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if numeric:
        return pd.Series(np.round(y.to_numpy(dtype="float64")).astype("int64"), name=y.name)
    if pd.api.types.is_bool_dtype(y.dtype) or y.map(lambda v: isinstance(v, bool)).all():
        return y.astype(bool)
    return y.astype(object).map(str)


def classes_of(values: pd.Series) -> tuple[Any, ...]:
    """The sorted distinct labels of a classification target's values (a whole table's, read
    on a cluster), as `prepare` keeps them."""
    return tuple(_plain(c) for c in sorted(normalise_labels(values.dropna()).unique().tolist()))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fingerprint(X: pd.DataFrame, y: pd.Series, columns: Sequence[Column], target: str) -> str:
    """sha256 of the rows as the model sees them: equal for equal rows, whatever the source."""
    digest = hashlib.sha256()
    header = {"columns": [c.to_json() for c in columns], "target": target, "n_rows": len(X)}
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    target_values = y.astype(object).where(y.notna(), None).map(repr)
    digest.update(pd.util.hash_pandas_object(target_values, index=False).to_numpy().tobytes())
    return digest.hexdigest()
