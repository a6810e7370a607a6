"""The forecaster path: a network learns windows of an ordered series; see
training/forecasting.py. Tuning scores each trial on the end of the training part (the window
is tuned too, from one season up: it is the forecasters' own knob); the holdout is scored once,
at the end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.training.catalogue import Algorithm, FeatureLayout
from mlgate.training.forecasting import fit_forecaster, split_params, without_holdout
from mlgate.training.spaces import IntRange
from mlgate.training.steps import Progress, Rows, Trained, TrainSpec, WholeTable, fit_whole_table


def train_forecaster(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """Fit (tuned if asked) a forecaster on each series but its held-out end."""
    if spec.cv:
        raise InvalidInput(f"{algorithm.name} forecasts are scored on a time holdout, not k folds")
    if spec.test_size == 0:
        raise InvalidInput(
            f"{algorithm.name} forecasts are scored on the last share of each series; give "
            "--test-size between 0.05 and 0.5"
        )
    if not spec.target:
        raise InvalidInput("name the column to forecast (the target)")
    data, network = split_params(spec.params)

    def seen() -> pd.DataFrame:
        """The rows a trial may learn and be scored on: each series without its holdout."""
        horizon = int(algorithm.build("forecast", FeatureLayout(0, 0), network).horizon)
        return without_holdout(
            rows.frame, target=spec.target, data=data, test_size=spec.test_size, horizon=horizon
        )

    season = int(data.get("season", 1)) if str(data.get("season", 1)).isdecimal() else 1
    whole = WholeTable(
        task="forecast",
        params=network,
        fit=lambda model, frame, draw, progress, title: fit_forecaster(
            model,
            frame,
            target=spec.target,
            data=data,
            test_size=spec.test_size,
            draw_report=draw,
            progress=progress,
            title=title,
        ),  # fmt: skip
        title=f"{spec.model_name}: forecasts",
        label=algorithm.name,
        space={**algorithm.space, "window": IntRange(max(season, 4), max(season, 96), log=True)},
        trial_rows=seen,
        trial_error=lambda fitted: fitted.metrics["mae"],
    )
    return fit_whole_table(spec, algorithm, rows, whole, now, report)
