"""The Dask path: a cluster reads the table itself, in partitions, and fits where the rows are
(training/distributed.py); its version goes through the same tail as every other path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mlgate.errors import InvalidInput
from mlgate.registry.store import ArtifactStore
from mlgate.signing.model import SignVersion
from mlgate.sources.model import SourceConfig
from mlgate.training.catalogue import Algorithm
from mlgate.training.steps import (
    Progress,
    Trained,
    TrainResult,
    TrainSpec,
    lineage_of,
    register_trained,
)
from mlgate.uow import UnitOfWork


def train_on_dask(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    spec: TrainSpec,
    algorithm: Algorithm | None,
    config: SourceConfig,
    now: Callable[[], datetime],
    report: Progress,
    sign: SignVersion | None = None,
) -> TrainResult:
    """Fit on the cluster at `spec.dask` and register the version while the client is open
    (the snapshot's parts are read again and written one at a time)."""
    from mlgate.training import distributed  # Dask loads only for a run that uses it

    checked = distributed.check_spec(algorithm, table=spec.table, tuned=bool(spec.tune))
    if not spec.target:
        raise InvalidInput("name the column to predict (the target)")
    assert spec.dask is not None and spec.table is not None
    run = distributed.DaskRun(
        table=spec.table, target=spec.target, drop=spec.drop, params=spec.params,
        task=spec.task, test_size=spec.test_size, seed=spec.seed, partitions=spec.partitions,
        partition_by=spec.partition_by,
    )  # fmt: skip
    report("read", f"connecting to the Dask cluster at {spec.dask}")
    with distributed.connect(spec.dask) as client:
        fitted = distributed.fit_on_dask(client, config, checked, run, report)
        trained = Trained(
            algorithm=checked,
            task=fitted.task,
            estimator=fitted.pipeline,
            params=fitted.params,
            metrics=fitted.metrics,
            columns=fitted.columns,
            classes=fitted.classes,
            lineage=lineage_of(spec, config, n_rows=fitted.n_rows, data_sha256=fitted.data_sha256),
            fit_seconds=fitted.fit_seconds,
            details=fitted.details,
            page=None,
            at=now(),
            n_rows_without_target=fitted.n_rows_without_target,
            warnings=fitted.notes,
            snapshot=fitted.snapshot,
        )
        return register_trained(uow, artifacts, spec, trained, report, sign)
