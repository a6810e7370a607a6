"""The metadata layer: one suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgate.access.model import ApiKey
from mlgate.bootstrap import Services
from mlgate.db import migrate
from mlgate.errors import AlreadyExists, ConcurrentWrite, NotFound
from mlgate.registry.model import Artifact, Lineage, ModelVersion, RegisteredModel
from mlgate.registry.service import resolve_version
from mlgate.schema import Column
from mlgate.sources.base import SourceConfig

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def a_version(number: int, name: str = "churn") -> ModelVersion:
    return ModelVersion(
        model_name=name,
        number=number,
        task="classification",
        algorithm="logistic_regression",
        target="churned",
        params={"C": 1.0, "penalty": "l2"},
        metrics={"accuracy": 0.8 + number / 100},
        columns=(Column("tenure", "number"), Column("plan", "string")),
        classes=(0, 1),
        lineage=Lineage("demo", "sqlite:///x.db", "customers", None, 100, "ab" * 32, ("id",)),
        artifact=Artifact(f"{name}/{number}.skops", "skops", "cd" * 32, 1234),
        library_versions={"scikit-learn": "1.9"},
        created_at=T0 + timedelta(minutes=number),
        fit_seconds=0.5,
    )


def test_the_schema_is_at_head(any_services: Services) -> None:
    assert migrate.current_revision(any_services.engine) == migrate.head_revision()
    assert any_services.readiness()["status"] == "ready"


def test_sources_round_trip(any_services: Services) -> None:
    uow = any_services.uow()
    config = SourceConfig("warehouse", "postgresql+psycopg://u:pw@h/db", "sql", T0)
    with uow:
        uow.sources.add(config)
        uow.commit()
    with uow:
        assert uow.sources.get("warehouse") == config
        assert [s.name for s in uow.sources.all()] == ["warehouse"]
        with pytest.raises(AlreadyExists):
            uow.sources.add(config)
    with uow:
        uow.sources.remove("warehouse")
        uow.commit()
    with uow:
        assert uow.sources.get("warehouse") is None
        with pytest.raises(NotFound):
            uow.sources.remove("warehouse")


def test_leaving_without_commit_rolls_back(any_services: Services) -> None:
    uow = any_services.uow()
    with uow:
        uow.sources.add(SourceConfig("gone", "sqlite:///g.db", "sql", T0))
    with uow:
        assert uow.sources.get("gone") is None


def test_versions_round_trip_and_move_latest(any_services: Services) -> None:
    uow = any_services.uow()
    with uow:
        uow.models.add(RegisteredModel("churn", "classification", "churned", T0))
        uow.models.add_version(a_version(1))
        uow.models.add_version(a_version(2))
        uow.commit()
    with uow:
        model = uow.models.get("churn")
        assert model is not None and model.latest_version == 2
        assert uow.models.get_version("churn", 1) == a_version(1)
        assert [v.number for v in uow.models.versions("churn")] == [1, 2]
        assert uow.models.get_version("churn", 3) is None
    assert resolve_version(uow, "churn", None) == a_version(2)
    with pytest.raises(NotFound, match="no version 7"):
        resolve_version(uow, "churn", 7)
    with pytest.raises(NotFound, match="no model named 'other'"):
        resolve_version(uow, "other", None)


def test_a_version_number_is_taken_once(any_services: Services) -> None:
    uow = any_services.uow()
    with uow:
        uow.models.add(RegisteredModel("churn", "classification", "churned", T0))
        uow.models.add_version(a_version(1))
        uow.commit()
    with pytest.raises(ConcurrentWrite), uow:  # the database's refusal, in the domain's words
        uow.models.add_version(a_version(1))
        uow.commit()


def test_api_keys_round_trip_and_revoke(any_services: Services) -> None:
    uow = any_services.uow()
    key = ApiKey("mlg_0123456789ab", "billing", "ef" * 32, ("predict",), T0)
    with uow:
        uow.keys.add(key)
        uow.commit()
    with uow:
        assert uow.keys.get(key.prefix) == key
        uow.keys.revoke(key.prefix, T0 + timedelta(hours=1))
        uow.commit()
    with uow:
        revoked = uow.keys.get(key.prefix)
        assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
        assert not revoked.active
        with pytest.raises(NotFound):
            uow.keys.revoke("mlg_ffffffffffff", T0)


def test_replicas_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    """Four processes bootstrap one empty PostgreSQL database at the same moment."""
    import subprocess
    import sys

    script = (
        "import sys; from mlgate.bootstrap import bootstrap; from mlgate.settings import Settings;"
        "s = bootstrap(Settings.from_env({'MLGATE_HOME': sys.argv[1], "
        "'MLGATE_DATABASE_URL': sys.argv[2], 'MLGATE_SECRET_KEY': 'shared'})); s.close()"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / f"h{i}"), postgres_url],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(4)
    ]
    outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in runs]
    assert all(code == 0 for _, code in outcomes), outcomes
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert [v[0] for v in versions] == [migrate.head_revision()]
