"""Training a forecaster (`rnn`, `lstm`, `gru`) on an ordered table, and judging it against the
forecast that needs no model: the seasonal-naive one.

Data parameters (given with the network's in `--param`): `order_by` (required: the time or
order column), `group_by` (optional: one series per value), `season` (the seasonal-naive
period, default 1: "the last value again"). The last `test_size` share of each series is held
out; every window whose future lies there is forecast and scored:

- mae, rmse: of every forecast value against what happened;
- seasonal_naive_mae: the same for "the value one season earlier" (Hyndman's benchmark);
- mase: mae / seasonal_naive_mae, below 1 when the network beats the benchmark.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.neural.progress import reporting
from mlgate.schema import Column
from mlgate.training.generation import WholeFit

DATA_PARAMS = ("order_by", "group_by", "season")
FORECAST_PARAMS = frozenset({*DATA_PARAMS, "window", "horizon"})  # only forecasts take these


def split_params(params: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the data parameters, the network's)."""
    given = dict(params or {})
    return {k: given.pop(k) for k in DATA_PARAMS if k in given}, given


def without_holdout(
    frame: pd.DataFrame, *, target: str, data: dict[str, Any], test_size: float, horizon: int
) -> pd.DataFrame:
    """The rows `fit_forecaster` would train on (each series without its held-out end): what
    tuning may see, so that the holdout stays unseen until the final score."""
    order_by, group_by = data.get("order_by"), data.get("group_by")
    if not order_by or order_by not in frame.columns or target not in frame.columns:
        return frame  # fit_forecaster names what is missing
    kept = frame[pd.to_numeric(frame[target], errors="coerce").notna()]
    ordered = kept.sort_values([c for c in (group_by, order_by) if c], kind="stable")
    groups = [g for _, g in ordered.groupby(group_by, sort=True)] if group_by else [ordered]
    parts = [g.iloc[: len(g) - max(horizon, int(round(len(g) * test_size)))] for g in groups]
    return pd.concat(parts) if parts else ordered


def fit_forecaster(
    estimator: Any,
    frame: pd.DataFrame,
    *,
    target: str,
    data: dict[str, Any],
    test_size: float,
    draw_report: bool,
    progress: Any,
    title: str,
) -> WholeFit:
    order_by, group_by = data.get("order_by"), data.get("group_by")
    season = data.get("season", 1)
    names = [str(c) for c in frame.columns]
    if not order_by:
        raise InvalidInput(
            f"{estimator.cell} forecasts an ordered series: name its time or order column with "
            "the parameter order_by=COLUMN"
        )
    for role, name in (("target", target), ("order_by", order_by), ("group_by", group_by)):
        if name is not None and name not in names:
            raise InvalidInput(f"no column {name!r} for {role}; the rows have: {', '.join(names)}")
    if not isinstance(season, int) or isinstance(season, bool) or season < 1:
        raise InvalidInput(f"season must be a whole number of at least 1, got {season!r}")
    estimator.checked()
    window, horizon = int(estimator.window), int(estimator.horizon)
    if season > window:
        raise InvalidInput(f"season {season} is longer than the window {window}; widen the window")
    values = pd.to_numeric(frame[target], errors="coerce")
    if values.isna().all():
        raise InvalidInput(f"{target!r} holds no numbers to forecast")
    notes: list[str] = []
    kept = frame.assign(**{target: values}).dropna(subset=[target])
    if len(kept) < len(frame):
        notes.append(f"left out {len(frame) - len(kept)} rows without a {target!r}")
    ordered = kept.sort_values([c for c in (group_by, order_by) if c], kind="stable")
    groups = [g for _, g in ordered.groupby(group_by, sort=True)] if group_by else [ordered]
    series = [g[target].to_numpy(dtype="float64") for g in groups]
    train, tests = [], []
    for values_of in series:
        n_test = max(horizon, int(round(len(values_of) * test_size)))
        if len(values_of) - n_test < window + horizon:
            continue
        train.append(values_of[:-n_test])
        tests.append((values_of, len(values_of) - n_test))
    if not train:
        raise InvalidInput(
            f"no series is long enough for a window of {window}, a horizon of {horizon} and a "
            "holdout; give longer series or a shorter window"
        )
    progress("fit", f"fitting {estimator.cell} on {len(train)} series, window {window}")
    started = time.perf_counter()
    with reporting(progress):
        estimator.fit(train)
    fit_seconds = time.perf_counter() - started
    progress("evaluate", "forecasting the held-out ends of the series")
    inputs, actual, naive = [], [], []
    for values_of, start in tests:
        for end in range(start, len(values_of) - horizon + 1):
            inputs.append(values_of[end - window : end])
            actual.append(values_of[end : end + horizon])
            naive.append([values_of[end + j - season * (j // season + 1)] for j in range(horizon)])
    predicted = estimator.predict(np.asarray(inputs))
    truth, benchmark = np.asarray(actual), np.asarray(naive)
    mae = float(np.mean(np.abs(predicted - truth)))
    naive_mae = float(np.mean(np.abs(benchmark - truth)))
    metrics = {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "seasonal_naive_mae": naive_mae,
        "mase": mae / naive_mae if naive_mae > 0 else math.inf,
    }
    details: dict[str, Any] = {
        "forecast": {**data, "window": window, "horizon": horizon, "test_windows": len(inputs)},
        "notes": notes,
        "training_history": estimator.history_,
    }
    page = None
    if draw_report:
        from mlgate.training.report import plot_titles

        page = _page(title, tests[0], estimator, season, metrics, window, horizon)
        details["plots"] = plot_titles(page)
    columns = (Column(target, "number"),)
    return WholeFit(estimator, columns, metrics, details, page, tuple(notes), fit_seconds)


def _page(
    title: str,
    test: tuple[np.ndarray, int],
    estimator: Any,
    season: int,
    metrics: dict[str, float],
    window: int,
    horizon: int,
) -> bytes:
    """The first series' holdout: what happened, the network's one-step-ahead forecasts and the
    seasonal-naive ones; and the loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mlgate.training.report import png

    values, start = test
    ends = list(range(start, len(values) - horizon + 1))
    ahead = estimator.predict(np.asarray([values[e - window : e] for e in ends]))[:, 0]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(range(len(values)), values, color="0.6", lw=1, label="series")
    ax.plot(ends, ahead, label=f"{estimator.cell} (next value)")
    ax.plot(ends, [values[e - season] for e in ends], ls=":", label=f"seasonal naive ({season})")
    ax.axvline(start, color="k", lw=1)
    ax.set(xlabel="position in the series", title="held-out end of the first series")
    ax.legend(fontsize=8)
    plots = [("forecasts", png(fig))]
    fig, ax = plt.subplots(figsize=(5, 4))
    history = estimator.history_
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], label="training")
    if history and history[0].get("val_loss") is not None:
        ax.plot([h["epoch"] for h in history], [h["val_loss"] for h in history], label="validation")
    ax.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax.legend(fontsize=8)
    plots.append(("loss curve", png(fig)))
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>" for k, v in metrics.items()
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{d}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n, d in plots
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "img{max-width:100%}td,th{padding:.2em .8em;text-align:left}</style>"
        f"<h1>{html.escape(title)}</h1><p>MASE below 1: the network forecasts better than "
        "repeating the value one season earlier.</p>"
        f"<table>{rows}</table>{figures}</html>"
    ).encode()
