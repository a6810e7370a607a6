"""The train_model use case: rows from a source -> fitted model -> a registered version.

Four paths share the steps of training/steps.py: a Dask cluster reads the table itself
(dask_path.py); a forecaster and a generator learn the whole table (forecaster_path.py,
generator_path.py); every other algorithm learns rows of a table with a target and a holdout
(tabular.py). Each hands what it fitted (`Trained`) to one tail, `register_trained`.
This module picks the path; the names callers import from it stay here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from mlgate.access.audit import audited
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.signing.model import SignVersion
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.training.dask_path import train_on_dask
from mlgate.training.forecaster_path import train_forecaster
from mlgate.training.forecasting import FORECAST_PARAMS
from mlgate.training.generator_path import train_generator
from mlgate.training.libraries import library_versions, module_version
from mlgate.training.steps import (
    AUTO,
    STAGES,
    Progress,
    Rows,
    Trained,
    TrainResult,
    TrainSpec,
    check,
    check_slices,
    lineage_of,
    read_rows,
    read_snapshot,
    register_trained,
    source_of,
)
from mlgate.training.tabular import Fitted, Split, fit_and_evaluate, split_rows, train_tabular
from mlgate.uow import UnitOfWork

__all__ = [
    "AUTO",
    "STAGES",
    "Fitted",
    "Progress",
    "Rows",
    "Split",
    "TrainResult",
    "TrainSpec",
    "Trained",
    "fit_and_evaluate",
    "library_versions",
    "lineage_of",
    "module_version",
    "read_snapshot",
    "retrain_spec",
    "split_rows",
    "train_model",
]


@audited("training.train", lambda a: a["spec"].model_name)
def train_model(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    open_source: Callable[[SourceConfig], Source],
    spec: TrainSpec,
    *,
    now: Callable[[], datetime],
    progress: Progress | None = None,
    sign: SignVersion | None = None,
    slice_card: SliceCard | None = None,
) -> TrainResult:
    """Train `spec` and register the result as the model's next version (signed by `sign`);
    with `spec.slices`, its card's metrics per slice are computed by `slice_card` (the slice
    columns are checked against the rows before anything is fitted)."""
    report = progress or (lambda stage, detail: None)
    algorithm = check(spec)
    config = source_of(uow, spec)
    if spec.dask and not spec.snapshot_of:
        if spec.slices and spec.table:
            source = open_source(config)
            try:
                check_slices(spec, list(source.read_table(spec.table, limit=0).columns))
            finally:
                source.close()
        result = train_on_dask(uow, artifacts, spec, algorithm, config, now, report, sign)
        return _sliced(result, spec, slice_card)
    rows = read_rows(uow, artifacts, open_source, spec, config, report)
    check_slices(spec, list(rows.frame.columns))
    # A forecaster's own parameters say a forecast is wanted (order_by names the series' order).
    forecasting = spec.task == "forecast" or bool(set(spec.params or {}) & FORECAST_PARAMS)
    if algorithm is not None and "forecast" in algorithm.tasks and forecasting:
        trained = train_forecaster(spec, algorithm, rows, now, report)
    elif algorithm is not None and algorithm.tasks == ("generation",):
        trained = train_generator(spec, algorithm, rows, now, report)
    else:
        trained = train_tabular(spec, algorithm, rows, now, report)
    result = register_trained(uow, artifacts, spec, trained, report, sign)
    return _sliced(result, spec, slice_card)


SliceCard = Callable[[ModelVersion, tuple[str, ...]], object]


def _sliced(result: TrainResult, spec: TrainSpec, slice_card: SliceCard | None) -> TrainResult:
    """`result`, its card sliced as asked. The version is registered by now: a slicing that
    cannot be done (a task without a holdout, a column of too many values) is a warning on the
    result, not a failed training."""
    if not spec.slices or slice_card is None:
        return result
    try:
        slice_card(result.version, spec.slices)
    except InvalidInput as exc:
        return replace(result, warnings=(*result.warnings, f"no slices on the card: {exc}"))
    return result


def retrain_spec(version: ModelVersion, *, from_snapshot: bool, actor: str = "") -> TrainSpec:
    """The spec that trained `version`: on today's rows of its source, or on its own snapshot."""
    lineage = version.lineage
    params = (version.report or {}).get("requested_params") or {}
    evaluation = (version.report or {}).get("cv")
    return TrainSpec(
        model_name=version.model_name,
        source=lineage.source_name,
        target=version.target,
        algorithm=version.algorithm,
        table=lineage.table,
        query=lineage.query,
        drop=lineage.dropped_columns,
        params=params or None,
        test_size=lineage.test_size,
        seed=lineage.seed,
        task=version.task,
        cv=evaluation["folds"] if evaluation else None,
        snapshot_of=(version.model_name, version.number) if from_snapshot else None,
        actor=actor,
    )
