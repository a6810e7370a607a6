"""Honest numbers: holdout metrics with 95% bootstrap intervals, beside a naive baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.registry.model import Task
from mlgate.training import metrics as m

N_BOOTSTRAP = 1000
RESAMPLE_ROWS = 50_000  # larger holdouts: m-out-of-n bootstrap, rescaled (see `evaluate`)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]  # 95% percentile bootstrap interval per metric
    baseline: dict[str, float]  # the same metrics for the majority class or the mean
    baseline_kind: str
    n_holdout: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "baseline": self.baseline,
            "baseline_kind": self.baseline_kind,
            "n_holdout": self.n_holdout,
        }


@dataclass(frozen=True)
class Outputs:
    """What a model said about the holdout rows."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None


def outputs_of(task: Task, model: Any, X: Any) -> Outputs:
    predictions = np.asarray(model.predict(X))
    if task == "regression":
        return Outputs(predictions.astype("float64").ravel())
    proba = np.asarray(model.predict_proba(X), dtype="float64")
    return Outputs(predictions.astype("int64").ravel(), proba)


def evaluate(
    task: Task,
    y_test: np.ndarray,
    outputs: Outputs,
    y_train: np.ndarray,
    *,
    n_classes: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> Evaluation:
    """Metrics of `outputs` on the holdout truth `y_test`, their bootstrap intervals, and the
    metrics of the baseline fitted on `y_train` (majority class with training frequencies as
    probabilities; or the training mean).

    A holdout of more than RESAMPLE_ROWS rows is resampled RESAMPLE_ROWS (m) rows at a time,
    and each resample's distance from the point estimate scaled by sqrt(m / n): the m-out-of-n
    bootstrap, which gives these (asymptotically normal) metrics the interval of the whole
    holdout at a fraction of the work."""
    y = np.asarray(y_test)
    if len(y) > 20_000:  # keep the intervals cheap on big holdouts; they narrow anyway
        n_bootstrap = min(n_bootstrap, 200)
    rng = np.random.default_rng(seed)
    size = min(len(y), RESAMPLE_ROWS)
    shrink = math.sqrt(size / len(y)) if len(y) else 1.0
    if task == "regression":
        baseline_out = Outputs(np.full(len(y), float(np.mean(y_train))))
        score = _regression_scores
        kind = "mean of the training target"
    else:
        counts = np.bincount(np.asarray(y_train, dtype="int64"), minlength=n_classes)
        frequencies = counts / counts.sum()
        baseline_out = Outputs(
            np.full(len(y), int(np.argmax(counts))), np.tile(frequencies, (len(y), 1))
        )
        score = _classification_scores(n_classes)
        kind = "majority class, with training class frequencies as probabilities"

    point = score(y, outputs)
    resampled = []
    for _ in range(n_bootstrap):
        i = rng.integers(0, len(y), size=size)
        resampled.append(score(y[i], _take(outputs, i)))
    intervals = {}
    for name, value in point.items():
        values = np.array([r[name] for r in resampled], dtype="float64")
        values = values[~np.isnan(values)]
        if math.isnan(value) or len(values) < n_bootstrap // 2:
            continue
        low, high = value + shrink * (np.percentile(values, [2.5, 97.5]) - value)
        intervals[name] = (float(low), float(high))
    return Evaluation(
        metrics={k: v for k, v in point.items() if not math.isnan(v)},
        intervals=intervals,
        baseline={k: v for k, v in score(y, baseline_out).items() if not math.isnan(v)},
        baseline_kind=kind,
        n_holdout=len(y),
    )


def _take(outputs: Outputs, index: np.ndarray) -> Outputs:
    proba = None if outputs.probabilities is None else outputs.probabilities[index]
    return Outputs(outputs.predictions[index], proba)


def _regression_scores(y: np.ndarray, outputs: Outputs) -> dict[str, float]:
    return {name: fn(y, outputs.predictions) for name, fn in m.REGRESSION.items()}


def _classification_scores(n_classes: int) -> Any:
    def score(y: np.ndarray, outputs: Outputs) -> dict[str, float]:
        assert outputs.probabilities is not None
        return {
            name: fn(y, outputs.predictions, outputs.probabilities, n_classes)
            for name, fn in m.CLASSIFICATION.items()
        }

    return score
