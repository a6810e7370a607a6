"""The tabular path: rows with a target, prepared, held out (or cross-fitted), chosen (auto or
tuned), cross-validated, fitted, evaluated and reported."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from mlgate.errors import InvalidInput
from mlgate.neural.progress import reporting as epochs_reported_to
from mlgate.registry.model import Task
from mlgate.schema import feature_columns
from mlgate.training import data as training_data
from mlgate.training import inference
from mlgate.training.catalogue import Algorithm, FeatureLayout, get_algorithm
from mlgate.training.crossfit import cross_fit, folds_for
from mlgate.training.evaluate import HOLDOUT, Evaluation, Outputs, evaluate, fit_notes, outputs_of
from mlgate.training.folds import FoldFit
from mlgate.training.preprocess import build_pipeline, layout_of
from mlgate.training.report import ReportInputs, build_report
from mlgate.training.steps import AUTO, Progress, Rows, Trained, TrainSpec, json_safe, lineage_of
from mlgate.training.tuning import (
    Candidate,
    TuneSpec,
    cross_validate,
    cv_metric,
    cv_metrics,
    shortlist,
    tune,
)


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    cross_fitted: bool = False  # no holdout: the "test" rows are every row, predicted out of fold


@dataclass(frozen=True)
class Fitted:
    pipeline: Any
    params: dict[str, Any]
    evaluation: Evaluation
    outputs: Outputs  # what the model said about the holdout rows
    fit_seconds: float
    warnings: tuple[str, ...]


def train_tabular(
    spec: TrainSpec,
    algorithm: Algorithm | None,
    rows: Rows,
    now: Callable[[], datetime],
    report: Progress,
) -> Trained:
    """Rows with a target: prepare, hold out, choose (auto or tuned), cross-validate, fit and
    evaluate, report; train_model registers what it hands back."""
    own_params, standard_errors = inference.standard_errors(spec.params)
    if own_params is not spec.params:  # `se` is the coefficient table's, not the model's
        if algorithm is None or not algorithm.statsmodels_twin:
            raise InvalidInput(
                "se chooses the standard errors of a coefficient table: linear_regression "
                "and logistic_regression have one"
            )
        spec = replace(spec, params=own_params)
    prepared = _prepare(rows.frame, spec, algorithm, report)
    split = split_rows(prepared, spec.test_size, spec.seed)
    algorithm, params, leaderboard = _choose(algorithm, prepared, split, spec, report)
    searched = spec.tune is not None or spec.algorithm == AUTO
    cv: dict[str, tuple[float, float]] = {}
    if split.cross_fitted and not searched:  # --cv sets the cross-fitting's folds instead
        folds = 0
    else:
        folds, cv = _cross_validate(algorithm, prepared, split, params, spec, report)
    report("fit", f"fitting {algorithm.name} ({prepared.task}) on {len(split.X_train):,} rows")
    fitted = fit_and_evaluate(
        algorithm, prepared, split, params, seed=spec.seed, progress=report, folds=spec.cv
    )
    lineage = lineage_of(spec, rows.config, n_rows=prepared.n_rows_read,
                         data_sha256=prepared.sha256)  # fmt: skip
    trained_at = now()
    details: dict[str, Any] = {
        "evaluation": fitted.evaluation.to_json(),
        "notes": list(prepared.notes) + list(fitted.evaluation.notes),
    }
    page: bytes | None = None
    if spec.report:
        report("report", "drawing the report")
        details, page = build_report(
            ReportInputs(
                model_name=spec.model_name,
                algorithm=algorithm.name,
                task=prepared.task,
                target=spec.target,
                pipeline=fitted.pipeline,
                X_train=split.X_train,
                y_train=split.y_train,
                X_test=split.X_test,
                y_test=split.y_test,
                outputs=fitted.outputs,
                evaluation=fitted.evaluation,
                classes=prepared.classes,
                coefficients=algorithm.statsmodels_twin,
                notes=prepared.notes + fitted.evaluation.notes,
                lineage=lineage.to_json(),
                trained_at=trained_at,
                seed=spec.seed,
                cv=cv,
                standard_errors=standard_errors,
                columns=prepared.columns,
            )
        )
    details["n_train"] = len(split.X_train)
    details["requested_params"] = params or {}
    if spec.snapshot_of:
        details["retrained_from"] = {"model": spec.snapshot_of[0], "version": spec.snapshot_of[1]}
    if leaderboard:
        details["leaderboard"] = [c.to_json() for c in leaderboard]
    if cv:
        details["cv"] = {"folds": folds, "metrics": {k: list(v) for k, v in cv.items()}}
    return Trained(
        algorithm=algorithm,
        task=prepared.task,
        estimator=fitted.pipeline,
        params=fitted.params,
        metrics=fitted.evaluation.metrics,
        columns=prepared.columns,
        classes=prepared.classes,
        lineage=lineage,
        fit_seconds=fitted.fit_seconds,
        details=details,
        page=page,
        at=trained_at,
        n_rows_without_target=prepared.n_rows_without_target,
        warnings=prepared.notes + fitted.warnings,
        snapshot={"snapshot.parquet": rows.snapshot},
    )


def _prepare(
    frame: pd.DataFrame, spec: TrainSpec, algorithm: Algorithm | None, report: Progress
) -> training_data.TrainingData:
    if not spec.target:
        raise InvalidInput("name the column to predict (the target)")
    report("prepare", f"preparing {len(frame):,} rows")
    tasks: tuple[Task, ...] = ("classification", "regression")
    return training_data.prepare(
        frame,
        target=spec.target,
        drop=spec.drop,
        task=spec.task,
        tasks=[t for t in algorithm.tasks if t in tasks] if algorithm else tasks,
        keep_all=algorithm.positional if algorithm else False,
    )


def _choose(
    algorithm: Algorithm | None,
    prepared: training_data.TrainingData,
    split: Split,
    spec: TrainSpec,
    report: Progress,
) -> tuple[Algorithm, dict[str, Any] | None, list[Candidate]]:
    """The algorithm and parameters to fit: as asked, the best of a shortlist (auto), or the
    best trial of a search (tune); with the leaderboard that chose them."""
    auto = algorithm is None
    if not (auto or spec.tune):
        assert algorithm is not None
        return algorithm, spec.params, []
    pool = shortlist(prepared.task, len(split.X_train), prepared.columns) if auto else []
    leaderboard = _search(pool or [algorithm], prepared, split, spec, report)  # type: ignore[list-item]
    chosen = get_algorithm(leaderboard[0].algorithm)
    params = {**(spec.params or {}), **leaderboard[0].params} if spec.tune else spec.params
    return chosen, None if auto and not spec.tune else params, leaderboard


def _cross_validate(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    spec: TrainSpec,
    report: Progress,
) -> tuple[int, dict[str, tuple[float, float]]]:
    """k-fold metrics of the final settings on the training rows: when asked, and always after
    a search (auto or tune); the number of folds and the metrics (mean, std)."""
    folds = spec.cv or (spec.tune.folds if spec.tune else 5 if spec.algorithm == AUTO else 0)
    if folds and not 2 <= folds <= 20:
        raise InvalidInput(f"cross-validation takes 2 to 20 folds, not {folds}")
    if not folds:
        return 0, {}
    report("tune", f"{folds}-fold cross-validation of {algorithm.name}")
    return folds, cv_metrics(_fold_fit(algorithm, prepared, split, params, spec.seed), folds)


def _fold_fit(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    seed: int,
) -> FoldFit:
    """The split's training rows, to be fitted fold by fold with `algorithm` and `params`."""
    n_classes = len(prepared.classes or ())
    return FoldFit(algorithm, prepared.task, prepared.columns, split.X_train, split.y_train,
                   params, n_classes=n_classes, seed=seed)  # fmt: skip


def _search(
    pool: list[Algorithm],
    prepared: training_data.TrainingData,
    split: Split,
    spec: TrainSpec,
    report: Progress,
) -> list[Candidate]:
    """Each of `pool` cross-validated on the training rows (tuned if asked), best first."""
    tune_spec = spec.tune
    if tune_spec and tune_spec.seconds and len(pool) > 1:  # share the time among candidates
        tune_spec = TuneSpec(tune_spec.trials, tune_spec.seconds / len(pool), tune_spec.folds)
    out = []
    for algorithm in pool:
        report("tune", f"cross-validating {algorithm.name}")
        if prepared.task not in algorithm.tasks:
            algorithm.build(prepared.task, FeatureLayout(1, 0))  # raises, naming alternatives
        if tune_spec:
            candidate = tune(
                _fold_fit(algorithm, prepared, split, None, spec.seed), tune_spec, report=report
            )
        else:
            started = time.perf_counter()
            mean, std = cross_validate(_fold_fit(algorithm, prepared, split, None, spec.seed), 5)
            candidate = Candidate(
                algorithm.name,
                {},
                mean,
                std,
                cv_metric(prepared.task),
                1,
                time.perf_counter() - started,
            )
        out.append(candidate)
    return sorted(out, key=lambda c: c.cv_score)


def split_rows(prepared: training_data.TrainingData, test_size: float, seed: int) -> Split:
    """A holdout split, stratified by class where every class can appear on both sides. With
    `test_size` 0 there is none: the model learns every row and is evaluated on cross-fitted
    predictions of them all (training/crossfit.py), so both sides are every row."""
    y = prepared.y
    if test_size == 0:
        if prepared.task == "classification" and y.nunique() < 2:
            raise InvalidInput("the rows hold a single class; add rows of the others")
        return Split(prepared.X, prepared.X, y, y, cross_fitted=True)
    n_test = max(1, round(test_size * len(y)))
    counts = y.value_counts()
    stratify = (
        y
        if prepared.task == "classification" and counts.min() >= 2 and n_test >= len(counts)
        else None
    )
    X_train, X_test, y_train, y_test = train_test_split(
        prepared.X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    if prepared.task == "classification" and y_train.nunique() < 2:
        raise InvalidInput("the training split holds a single class; add rows of the others")
    return Split(X_train, X_test, y_train, y_test)


def fit_and_evaluate(
    algorithm: Algorithm,
    prepared: training_data.TrainingData,
    split: Split,
    params: dict[str, Any] | None,
    *,
    seed: int,
    progress: Progress | None = None,
    folds: int | None = None,
) -> Fitted:
    """Build the pipeline for these columns, fit it on the training rows, score the holdout
    (or, with no holdout, cross-fitted predictions of every row on `folds` folds)."""
    task = prepared.task
    features = feature_columns(prepared.columns)
    layout = layout_of(features, split.X_train)
    estimator = algorithm.build(task, layout, params)
    pipeline = build_pipeline(features, estimator, algorithm)
    fit_params = algorithm.fit_params(layout) if algorithm.fit_params else {}
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with epochs_reported_to(progress):  # networks report each epoch (and may be stopped)
                pipeline.fit(
                    split.X_train,
                    split.y_train,
                    **{f"model__{key}": value for key, value in fit_params.items()},
                )
        except ValueError as exc:
            raise InvalidInput(
                f"{algorithm.name} could not be fitted on these rows: {exc}"
            ) from None
    fit_seconds = time.perf_counter() - started
    messages = fit_notes(caught)
    method, baseline = HOLDOUT, None
    if split.cross_fitted:
        n_folds = folds_for(len(split.X_train), folds)
        if progress:
            progress("evaluate", f"cross-fitting {len(split.X_train):,} rows on {n_folds} folds")
        crossed = cross_fit(_fold_fit(algorithm, prepared, split, params, seed), n_folds)
        outputs, method, baseline = crossed.outputs, crossed.method, crossed.baseline
        messages = tuple(dict.fromkeys(messages + crossed.warnings))
    else:
        if progress:
            progress("evaluate", f"scoring {len(split.X_test):,} holdout rows")
        outputs = outputs_of(task, pipeline, split.X_test)
    evaluation = evaluate(
        task,
        split.y_test.to_numpy(),
        outputs,
        split.y_train.to_numpy(),
        n_classes=len(prepared.classes or ()),
        seed=seed,
        method=method,
        baseline=baseline,
    )
    params = json_safe(estimator.get_params(deep=False))
    return Fitted(pipeline, params, evaluation, outputs, fit_seconds, messages)
