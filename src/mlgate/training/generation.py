"""Training a generator (`gan`) on a whole table, and measuring how alike its rows are.

A generator has no target: it learns every column kept. Its metrics compare synthetic rows with
the training rows, column by column and pair by pair:

- ks_max / ks_mean: two-sample Kolmogorov-Smirnov statistics of the numeric columns (0 = the
  same distribution; the largest gap between the two cumulative distributions);
- tv_max: total-variation distance of each categorical column's frequencies (0 = the same);
- correlation_signs_kept: the share of the strongest numeric correlations (|r| >= 0.2) whose
  sign the synthetic rows keep;
- exact_copies: synthetic rows identical to a training row (a generator should invent rows, not
  replay them).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.neural.progress import reporting
from mlgate.schema import Column, conform, infer_columns
from mlgate.training.data import useful_columns

STRONG_CORRELATION = 0.2


@dataclass(frozen=True)
class WholeFit:
    """A fitted model that reads its own data (a gan, a forecaster), ready to register."""

    model: Any
    columns: tuple[Column, ...]
    metrics: dict[str, float]
    details: dict[str, Any]
    page: bytes | None
    notes: tuple[str, ...]
    fit_seconds: float


def fit_generator(
    estimator: Any,
    frame: pd.DataFrame,
    *,
    drop: tuple[str, ...],
    seed: int,
    draw_report: bool,
    progress: Any,
    title: str,
) -> WholeFit:
    names = [str(c) for c in frame.columns]
    unknown = [d for d in drop if d not in names]
    if unknown:
        raise InvalidInput(f"no column(s) {', '.join(map(repr, unknown))} to drop")
    kept, notes = useful_columns(frame, [n for n in names if n not in drop])
    if not kept:
        raise InvalidInput("no column is left to learn from")
    columns = [c for c in infer_columns(frame[kept])]
    rows = conform(frame[kept], columns).reset_index(drop=True)
    progress("fit", f"fitting gan on {len(rows):,} rows of {len(columns)} columns")
    started = time.perf_counter()
    with reporting(progress):
        estimator.fit(rows, columns)
    fit_seconds = time.perf_counter() - started
    progress("evaluate", "comparing synthetic rows with the table")
    synthetic = estimator.sample(len(rows), seed=seed)
    metrics, per_column = fidelity(rows, synthetic, columns)
    details: dict[str, Any] = {
        "generation": {"columns": per_column, "compared_rows": len(rows)},
        "notes": list(notes),
        "training_history": estimator.history_,
    }
    page = _page(title, rows, synthetic, columns, metrics, notes) if draw_report else None
    if page is not None:
        from mlgate.training.report import plot_titles

        details["plots"] = plot_titles(page)
    return WholeFit(estimator, tuple(columns), metrics, details, page, tuple(notes), fit_seconds)


def fidelity(
    real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[Column]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The metrics in this module's docstring, and each column's own figure."""
    from scipy.stats import ks_2samp

    per_column: dict[str, dict[str, float]] = {}
    ks: list[float] = []
    tv: list[float] = []
    for column in columns:
        a, b = real[column.name], synthetic[column.name]
        if column.type == "number":
            statistic = float(ks_2samp(a.dropna(), b.dropna()).statistic)
            ks.append(statistic)
            per_column[column.name] = {"ks": statistic}
        else:
            share = a.astype(object).value_counts(normalize=True, dropna=False)
            other = b.astype(object).value_counts(normalize=True, dropna=False)
            gaps = pd.concat([share, other], axis=1).fillna(0.0).to_numpy(dtype="float64")
            distance = float(np.abs(gaps[:, 0] - gaps[:, 1]).sum() / 2)
            tv.append(distance)
            per_column[column.name] = {"tv": distance}
    numeric = [c.name for c in columns if c.type == "number"]
    kept = total = 0
    if len(numeric) >= 2:
        r_real = real[numeric].corr().to_numpy()
        r_syn = synthetic[numeric].corr().to_numpy()
        upper = np.triu_indices(len(numeric), k=1)
        strong = np.abs(r_real[upper]) >= STRONG_CORRELATION
        total = int(strong.sum())
        kept = int((np.sign(r_real[upper]) == np.sign(r_syn[upper]))[strong].sum())
    seen = set(map(tuple, real.astype(object).where(real.notna(), None).itertuples(index=False)))
    copies = sum(
        tuple(r) in seen
        for r in synthetic.astype(object).where(synthetic.notna(), None).itertuples(index=False)
    )
    metrics = {
        "ks_max": max(ks, default=0.0),
        "ks_mean": float(np.mean(ks)) if ks else 0.0,
        "tv_max": max(tv, default=0.0),
        "correlation_signs_kept": kept / total if total else 1.0,
        "exact_copies": float(copies),
    }
    return metrics, per_column


def _page(
    title: str,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: list[Column],
    metrics: dict[str, float],
    notes: list[str],
) -> bytes:
    """Each column's distribution, real beside synthetic, and the two correlation matrices."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mlgate.training.report import png

    plots: list[tuple[str, str]] = []
    for column in columns[:24]:
        fig, ax = plt.subplots(figsize=(4, 3))
        a, b = real[column.name], synthetic[column.name]
        if column.type == "number":
            bins = np.histogram_bin_edges(a.dropna(), bins=30).tolist()
            ax.hist(a.dropna(), bins=bins, alpha=0.5, density=True, label="table")
            ax.hist(b.dropna(), bins=bins, alpha=0.5, density=True, label="synthetic")
        else:
            share = pd.DataFrame(
                {
                    "table": a.astype(str).value_counts(normalize=True),
                    "synthetic": b.astype(str).value_counts(normalize=True),
                }
            ).fillna(0)
            share.head(15).plot.bar(ax=ax)
        ax.set(title=column.name)
        ax.legend(fontsize=7)
        plots.append((column.name, png(fig)))
    numeric = [c.name for c in columns if c.type == "number"]
    if len(numeric) >= 2:
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        for ax, (label, rows) in zip(
            axes, (("table", real), ("synthetic", synthetic)), strict=True
        ):
            image = ax.imshow(rows[numeric].corr().to_numpy(), vmin=-1, vmax=1, cmap="coolwarm")
            ax.set(
                title=f"correlations: {label}",
                xticks=range(len(numeric)),
                yticks=range(len(numeric)),
            )
            ax.set_xticklabels(numeric, rotation=90, fontsize=7)
            ax.set_yticklabels(numeric, fontsize=7)
        fig.colorbar(image, ax=axes, shrink=0.8)
        plots.append(("correlations", png(fig, tight=False)))
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, data in plots
    )
    table = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>" for k, v in metrics.items()
    )
    remarks = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "figure{display:inline-block;margin:.5em}img{max-width:100%}"
        "td,th{padding:.2em .8em;text-align:left}</style>"
        f"<h1>{html.escape(title)}</h1><p>Synthetic rows against the table they were learned "
        "from. KS: the largest gap between the two cumulative distributions of a numeric "
        "column; TV: half the summed differences of a category's frequencies.</p>"
        f"<table>{table}</table><ul>{remarks}</ul>{figures}</html>"
    ).encode()
