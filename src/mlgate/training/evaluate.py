"""Honest numbers: holdout metrics with 95% bootstrap intervals, beside a naive baseline.

Too few rows for an interval (under MIN_INTERVAL_ROWS, or a class the rows lack) get none and
one note that says why, never a degenerate interval; what the metric libraries warn about on
such rows becomes a note too, never noise on the user's terminal."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mlgate.registry.model import Task
from mlgate.training import metrics as m
from mlgate.training.undefined import sample_reason

N_BOOTSTRAP = 1000
RESAMPLE_ROWS = 50_000  # larger holdouts: m-out-of-n bootstrap, rescaled (see `evaluate`)
MIN_INTERVAL_ROWS = 20
HOLDOUT = "holdout"


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]  # 95% percentile bootstrap interval per metric
    baseline: dict[str, float]  # the same metrics for the majority class or the mean
    baseline_kind: str
    n_holdout: int  # rows evaluated: the holdout's, or every row's when cross-fitted
    method: str = HOLDOUT  # or how the predictions were cross-fitted (training/crossfit.py)
    notes: tuple[str, ...] = field(default=())
    # Metrics (of the model or the baseline) without a value on these rows, and why: a holdout
    # of one class has no ROC AUC, a constant target no R² (training/undefined.py).
    undefined: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "undefined": dict(self.undefined),
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "baseline": self.baseline,
            "baseline_kind": self.baseline_kind,
            "n_holdout": self.n_holdout,
            "method": self.method,
            "notes": list(self.notes),
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
    method: str = HOLDOUT,
    baseline: Outputs | None = None,
) -> Evaluation:
    """Metrics of `outputs` on the holdout truth `y_test`, their bootstrap intervals, and the
    metrics of the baseline fitted on `y_train` (majority class with training frequencies as
    probabilities; or the training mean), or of `baseline` where given (cross-fitted).

    A holdout of more than RESAMPLE_ROWS rows is resampled RESAMPLE_ROWS (m) rows at a time,
    and each resample's distance from the point estimate scaled by sqrt(m / n): the m-out-of-n
    bootstrap, which gives these (asymptotically normal) metrics the interval of the whole
    holdout at a fraction of the work."""
    y = np.asarray(y_test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = _evaluate(
            task, y, outputs, y_train, n_classes, n_bootstrap, seed, method, baseline
        )
    said = tuple(dict.fromkeys(_plain(str(w.message)) for w in caught))
    if said and not evaluation.notes:  # the interval note already says why; else say what
        evaluation = replace(evaluation, notes=said[:3])
    return evaluation


def _evaluate(
    task: Task,
    y: np.ndarray,
    outputs: Outputs,
    y_train: np.ndarray,
    n_classes: int,
    n_bootstrap: int,
    seed: int,
    method: str,
    baseline: Outputs | None,
) -> Evaluation:
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
    if baseline is not None:  # cross-fitted: each row's baseline from the other folds
        baseline_out = baseline
        kind += ", from the other folds"

    point = score(y, outputs)
    rows = ("row" if len(y) == 1 else "rows") if method == HOLDOUT else "cross-fitted rows"
    notes: list[str] = []
    absent = n_classes - len(np.unique(y)) if task == "classification" and n_classes else 0
    if len(y) < MIN_INTERVAL_ROWS:
        notes.append(
            f"no 95% intervals: {len(y)} {rows} are too few to resample (at least "
            f"{MIN_INTERVAL_ROWS} are needed); fit on every row with --test-size 0 to evaluate "
            "cross-fitted predictions of all of them"
            if method == HOLDOUT
            else f"no 95% intervals: {len(y)} {rows} are too few to resample (at least "
            f"{MIN_INTERVAL_ROWS} are needed)"
        )
        n_bootstrap = 0
    elif absent:
        notes.append(
            f"no 95% intervals: {absent} of the {n_classes} classes never appear among the "
            f"{len(y)} {rows}, so some metrics are undefined on resamples"
        )
        n_bootstrap = 0
    resampled = []
    for _ in range(n_bootstrap):
        i = rng.integers(0, len(y), size=size)
        resampled.append(score(y[i], _take(outputs, i)))
    intervals = {}
    for name, value in point.items() if n_bootstrap else ():
        values = np.array([r[name] for r in resampled], dtype="float64")
        values = values[~np.isnan(values)]
        if math.isnan(value) or len(values) < n_bootstrap // 2:
            continue
        low, high = value + shrink * (np.percentile(values, [2.5, 97.5]) - value)
        intervals[name] = (float(low), float(high))
    baseline_point = score(y, baseline_out)
    why = sample_reason(task, y, n_classes)
    undefined = {
        k: why for k in point if math.isnan(point[k]) or math.isnan(baseline_point.get(k, 0.0))
    }
    return Evaluation(
        metrics={k: v for k, v in point.items() if not math.isnan(v)},
        intervals=intervals,
        baseline={k: v for k, v in baseline_point.items() if not math.isnan(v)},
        baseline_kind=kind,
        n_holdout=len(y),
        method=method,
        notes=tuple(notes),
        undefined=undefined,
    )


def fit_notes(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """What a library warned about while fitting, as notes: plain sentences without the
    warning class or the source line (a user reads them; nobody debugs from them), each once."""
    said = (str(w.message).strip().splitlines()[0].strip() for w in caught)
    return tuple(dict.fromkeys(f"while fitting: {text}" for text in said if text))


def _plain(message: str) -> str:
    """A library's warning as a report note: its first sentence, without advice on its own
    parameters (scikit-learn's `zero_division`) that our users do not set."""
    first = message.split(". ")[0].strip().rstrip(".")
    return f"{first} (on these evaluation rows)"


def metrics_heading(evaluation: dict[str, Any]) -> str:
    """What the metrics were computed on: a holdout, or cross-fitted predictions of every row."""
    method = evaluation.get("method", "holdout")
    n = evaluation.get("n_holdout", "?")
    if method == "holdout":
        return f"Holdout metrics ({n} rows)"
    return f"Metrics of {method} on all {n} rows (no rows held out)"


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
