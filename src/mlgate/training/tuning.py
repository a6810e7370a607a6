"""Choosing hyperparameters and algorithms by k-fold cross-validation on the training rows.

`--tune trials=50` or `--tune time=5m` (or both, comma-separated) runs Optuna's TPE sampler over
the algorithm's search space; `--algorithm auto` cross-validates a shortlist suited to the task
and data and keeps the best. The holdout rows are never seen here.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlgate.errors import InvalidInput
from mlgate.registry.model import Task
from mlgate.schema import Column
from mlgate.training import metrics as m
from mlgate.training.catalogue import CATALOGUE, Algorithm
from mlgate.training.folds import FoldFit, outputs_on, splits
from mlgate.training.spaces import Space, sample

Report = Callable[[str, str], None]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h)?$")


@dataclass(frozen=True)
class TuneSpec:
    trials: int | None = None
    seconds: float | None = None
    folds: int = 5

    @classmethod
    def parse(cls, text: str) -> TuneSpec:
        """ "trials=50", "time=5m", "trials=30,time=90s", optionally "folds=3"."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key == "trials" and value.isdecimal() and int(value) > 0:
                values["trials"] = int(value)
            elif key == "time" and (match := _DURATION.match(value)):
                scale = {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
                values["seconds"] = float(match.group(1)) * scale
            elif key == "folds" and value.isdecimal() and 2 <= int(value) <= 20:
                values["folds"] = int(value)
            else:
                raise InvalidInput(
                    f"tuning {text!r}: write trials=N, time=DURATION (e.g. 90s, 5m) or both, "
                    "comma-separated; folds=K (2-20) is optional"
                )
        if "trials" not in values and "seconds" not in values:
            raise InvalidInput(f"tuning {text!r} sets neither trials= nor time=")
        return cls(**values)


@dataclass(frozen=True)
class Candidate:
    algorithm: str
    params: dict[str, Any]
    cv_score: float  # the mean of the cross-validated metric
    cv_std: float
    metric: str
    trials: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "params": {k: _plain(v) for k, v in self.params.items()}}


def cv_metric(task: Task) -> str:
    return "log_loss" if task == "classification" else "rmse"


def cross_validate(fit: FoldFit, folds: int) -> tuple[float, float]:
    """Mean and standard deviation over the folds of log loss (classification) or RMSE."""
    return cv_metrics(fit, folds)[cv_metric(fit.task)]


def cv_metrics(fit: FoldFit, folds: int) -> dict[str, tuple[float, float]]:
    """Every metric of the task over k folds (stratified for classification): (mean, sd)."""
    per_fold: list[dict[str, float]] = []
    for train_index, test_index in splits(fit, folds, stratify=fit.task == "classification"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = outputs_on(fit, train_index, test_index)
        truth = fit.y.iloc[test_index].to_numpy()
        if fit.task == "classification":
            assert outputs.probabilities is not None
            per_fold.append(
                {
                    name: fn(truth, outputs.predictions, outputs.probabilities, fit.n_classes)
                    for name, fn in m.CLASSIFICATION.items()
                }
            )
        else:
            per_fold.append(
                {name: fn(truth, outputs.predictions) for name, fn in m.REGRESSION.items()}
            )
    out = {}
    for name in per_fold[0]:
        values = np.array([fold[name] for fold in per_fold], dtype="float64")
        values = values[~np.isnan(values)]
        if len(values):
            out[name] = (float(values.mean()), float(values.std()))
    return out


def tune(fit: FoldFit, spec: TuneSpec, *, report: Report | None = None) -> Candidate:
    """The best parameters found for `fit.algorithm` within the spec's trials or time; each
    trial's parameters (sampled from the algorithm's space) stand in for `fit.params`."""
    import optuna

    algorithm, task = fit.algorithm, fit.task
    started = time.perf_counter()
    if not algorithm.space:
        mean, std = cross_validate(fit, spec.folds)
        return Candidate(algorithm.name, {}, mean, std, cv_metric(task), 1, _since(started))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=fit.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    stds: dict[int, float] = {}

    def objective(trial: Any) -> float:
        params = sample(algorithm.space, trial)
        mean, std = cross_validate(replace(fit, params=params), spec.folds)
        stds[trial.number] = std
        if report:
            best = min([mean, *(t.value for t in study.trials if t.value is not None)])
            total = f"/{spec.trials}" if spec.trials else ""
            report("tune", f"{algorithm.name} trial {trial.number + 1}{total}: best {best:.4f}")
        return mean

    study.optimize(objective, n_trials=spec.trials, timeout=spec.seconds, catch=(ValueError,))
    finished = [t for t in study.trials if t.value is not None]
    if not finished:
        raise InvalidInput(f"no {algorithm.name} trial could be fitted; check the data")
    best = study.best_trial
    return Candidate(
        algorithm.name,
        dict(best.params),
        float(best.value or math.nan),
        stds.get(best.number, math.nan),
        cv_metric(task),
        len(finished),
        _since(started),
    )


def shortlist(task: Task, n_rows: int, columns: Sequence[Column]) -> list[Algorithm]:
    """Algorithms worth trying for this task and data size, fastest first."""
    has_text = any(c.type == "text" for c in columns)
    names = ["logistic_regression"] if task == "classification" else ["linear_regression", "ridge"]
    if has_text and task == "classification":
        names += ["naive_bayes", "linear_svm"]
    names.append("random_forest")
    if not has_text:
        names.append("lightgbm")
        if n_rows <= 5_000:
            names.append("svm")
    return [CATALOGUE[n] for n in names if _installed(CATALOGUE[n])]


def _installed(algorithm: Algorithm) -> bool:
    from importlib.util import find_spec

    return algorithm.library == "scikit-learn" or find_spec(algorithm.library) is not None


def _since(started: float) -> float:
    return time.perf_counter() - started


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def search(
    space: dict[str, Space],
    spec: TuneSpec,
    *,
    seed: int,
    label: str,
    score: Callable[[dict[str, Any]], float],
    report: Report | None = None,
) -> tuple[dict[str, Any], float, int]:
    """Optuna's TPE over `space`, minimising `score(params)` (a held-out error the caller
    computes), within the spec's trials or time: for models that do not cross-validate (the
    forecasters and the gan). The best parameters, their score and the trials run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: Any) -> float:
        value = score(sample(space, trial))
        if report:
            best = min([value, *(t.value for t in study.trials if t.value is not None)])
            total = f"/{spec.trials}" if spec.trials else ""
            report("tune", f"{label} trial {trial.number + 1}{total}: best {best:.4f}")
        return value

    study.optimize(objective, n_trials=spec.trials, timeout=spec.seconds, catch=(InvalidInput,))
    finished = [t for t in study.trials if t.value is not None]
    if not finished:
        raise InvalidInput(f"no {label} trial could be fitted; check the data and parameters")
    return dict(study.best_trial.params), float(study.best_value), len(finished)
