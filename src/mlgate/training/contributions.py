"""The report's global view of the per-row explanations (explainers/explain.py): the same values a
prediction call returns, for a sample of the holdout rows, summarised as the mean |contribution|
of each column, a summary (beeswarm) plot and dependence plots of the strongest columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlgate.columns import Column
from mlgate.registry.model import Task
from mlgate.schema import Table

MAX_ROWS = 200  # holdout rows explained for the report
SAMPLED_OUTPUTS = 50_000  # model outputs the report spends where contributions are sampled
SUMMARY_COLUMNS = 12
DEPENDENCE_PLOTS = 3


def global_view(
    *,
    ref: str,
    task: Task,
    algorithm: str,
    columns: tuple[Column, ...],
    classes: tuple[Any, ...] | None,
    pipeline: Any,
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    png: Callable[[Any], str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The data (method, scale, mean |contribution| by column) and the plots."""
    from mlgate.explainers.explain import BACKGROUND_ROWS, Explainer, Subject
    from mlgate.explainers.sampling import evaluations_per_row

    subject = Subject(ref, task, algorithm, columns, classes)

    def features(rows: Table) -> Any:
        return pipeline[:-1].transform(rows.to_frame())

    def background() -> Table:
        sample = X_train.sample(min(len(X_train), BACKGROUND_ROWS), random_state=0)
        return _table(sample)

    explainer = Explainer(subject, pipeline, features, background)
    limit = MAX_ROWS
    if explainer.method == "sampling":
        limit = max(10, min(MAX_ROWS, SAMPLED_OUTPUTS // evaluations_per_row(len(columns))))
    shown = X_test.head(limit)
    found = explainer.explain(_table(shown))
    strength = np.abs(found.values).mean(axis=0)
    order = np.argsort(-strength, kind="stable")
    data = {
        **found.about(),
        "rows": len(shown),
        "mean_abs": {found.columns[j]: float(strength[j]) for j in order},
    }
    plots = {
        "contributions: summary": _summary(found, shown, order, png),
        **{
            f"contributions: {found.columns[j]}": _dependence(found, shown, j, png)
            for j in order[:DEPENDENCE_PLOTS]
        },
    }
    return data, plots


def _table(frame: pd.DataFrame) -> Table:
    frame = frame.reset_index(drop=True)
    return Table({str(k): frame[k].to_numpy() for k in frame.columns}, len(frame))


def _values(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str] | None]:
    """A column's values as numbers for a colour or an axis: categories as their codes (with
    their names), missing as NaN. A datetime column is read through its first part."""
    if column not in frame.columns:
        parts = [c for c in frame.columns if str(c).startswith(f"{column}__")]
        if not parts:
            return np.full(len(frame), np.nan), None
        column = parts[0]
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan), None
    codes, names = pd.factorize(values.astype(object), sort=True)
    return np.where(codes < 0, np.nan, codes).astype("float64"), [str(n) for n in names]


def _summary(found: Any, shown: pd.DataFrame, order: np.ndarray, png: Callable[[Any], str]) -> str:
    from matplotlib import pyplot as plt

    top = list(order[:SUMMARY_COLUMNS])[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(top) + 1.2))
    rng = np.random.default_rng(0)
    for y, j in enumerate(top):
        values, _ = _values(shown, found.columns[j])
        present = np.isfinite(values)
        low, high = (np.nanmin(values), np.nanmax(values)) if present.any() else (0.0, 1.0)
        colour = (values - low) / (high - low) if high > low else np.full(len(values), 0.5)
        jitter = rng.uniform(-0.25, 0.25, len(values))
        ax.scatter(found.values[~present, j], y + jitter[~present], s=8, c="0.6")
        points = ax.scatter(found.values[present, j], y + jitter[present], s=8,
                            c=colour[present], cmap="coolwarm", vmin=0, vmax=1)  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(top)), [found.columns[j] for j in top])
    ax.set_xlabel(f"contribution ({found.scale})")
    ax.set_title("contributions by column (colour: value, low to high; grey: missing)", fontsize=9)
    if len(top):
        fig.colorbar(points, ax=ax, ticks=[0, 1], label="value").ax.set_yticklabels(["low", "high"])
    return png(fig)


def _dependence(found: Any, shown: pd.DataFrame, j: int, png: Callable[[Any], str]) -> str:
    from matplotlib import pyplot as plt

    name = found.columns[j]
    values, categories = _values(shown, name)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    present = np.isfinite(values)
    ax.scatter(values[present], found.values[present, j], s=10, alpha=0.7)
    if categories is not None:
        ax.set_xticks(range(len(categories)), categories, rotation=45, ha="right")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xlabel=name, ylabel=f"contribution ({found.scale})", title=f"{name}: value and contribution"
    )
    return png(fig)
