"""Retraining: from today's rows of the same source, or from the exact rows of a past version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlgate.bootstrap import Services
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import read_attachment, resolve_version
from mlgate.schema import rows_to_frame
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, retrain_spec, train_model
from mlgate.training.tuning import TuneSpec
from tests.conftest import add_source_to


def train(services: Services, spec: TrainSpec) -> ModelVersion:
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def scores(services: Services, version: ModelVersion) -> object:
    frame = demo.churn_frame(n_rows=50, seed=99).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    result = services.predictors.get(version).score(
        rows_to_frame(rows, version.columns, max_rows=100)
    )
    return result.predictions, result.probabilities


@pytest.mark.parametrize(
    ("algorithm", "tune"),
    [
        ("logistic_regression", None),
        ("lightgbm", TuneSpec(trials=3, folds=2)),
        ("random_forest", None),
    ],
)
def test_a_version_is_reproduced_from_its_snapshot(
    services: Services, tmp_path: Path, algorithm: str, tune: TuneSpec | None
) -> None:
    database = tmp_path / "shop.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=500, seed=1))
    add_source_to(services, "shop", f"sqlite:///{database}", cwd=tmp_path)
    spec = TrainSpec(
        "churn",
        "shop",
        demo.TARGET,
        algorithm,
        table=demo.TABLE,
        drop=(demo.ID_COLUMN,),
        tune=tune,
        report=False,
    )
    original = train(services, spec)

    # The table changes afterwards: a reproduction must not notice.
    with sqlite3.connect(database) as conn:
        conn.execute(f"DELETE FROM {demo.TABLE} WHERE rowid % 3 = 0")
    copy = train(
        services, retrain_spec(resolve_version(services.uow(), "churn", 1), from_snapshot=True)
    )
    assert copy.number == 2
    assert copy.lineage.data_sha256 == original.lineage.data_sha256
    assert copy.metrics == original.metrics
    assert scores(services, copy) == scores(services, original)
    assert (copy.report or {})["retrained_from"] == {"model": "churn", "version": 1}

    fresh = train(services, retrain_spec(original, from_snapshot=False))
    assert fresh.lineage.n_rows < original.lineage.n_rows  # today's rows
    assert fresh.algorithm == algorithm


def test_the_snapshot_is_checked_before_use(services: Services, tmp_path: Path) -> None:
    demo.churn_frame(n_rows=200).to_csv(tmp_path / "c.csv", index=False)
    add_source_to(services, "c", str(tmp_path / "c.csv"), cwd=tmp_path)
    version = train(
        services, TrainSpec("m", "c", demo.TARGET, "logistic_regression", table="c", report=False)
    )
    key = (version.report or {})["attachments"]["snapshot.parquet"]["key"]
    path = services.settings.artifact_dir / key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    from mlgate.errors import ArtifactError

    with pytest.raises(ArtifactError, match="snapshot.parquet of m@v1 does not match"):
        read_attachment(services.uow(), services.artifacts, version, "snapshot.parquet")
