"""The generator path: a gan learns the whole table (no target, no holdout); see
training/generation.py. Tuning minimises the worst column's distance between a trial's rows
and the table's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mlgate.errors import InvalidInput
from mlgate.training.catalogue import Algorithm
from mlgate.training.generation import fit_generator
from mlgate.training.steps import Progress, Rows, Trained, TrainSpec, WholeTable, fit_whole_table


def train_generator(
    spec: TrainSpec,
    algorithm: Algorithm,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """Fit (tuned if asked) a generator on every row of the table."""
    if spec.cv:
        raise InvalidInput(
            "a gan has no folds to score: ask for no cross-validation (tuning works)"
        )
    whole = WholeTable(
        task="generation",
        params=spec.params or {},
        fit=lambda model, frame, draw, progress, title: fit_generator(
            model,
            frame,
            drop=spec.drop,
            seed=spec.seed,
            draw_report=draw,
            progress=progress,
            title=title,
        ),  # fmt: skip
        title=f"{spec.model_name}: synthetic rows",
        label="gan",
        space=algorithm.space,
        trial_rows=lambda: rows.frame,
        trial_error=lambda fitted: max(fitted.metrics["ks_max"], fitted.metrics["tv_max"]),
    )
    return fit_whole_table(spec, algorithm, rows, whole, now, report)
