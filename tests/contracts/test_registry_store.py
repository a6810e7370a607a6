"""Sources, models, versions, aliases and the artifact journal: the same behaviour from the
in-memory fake and from SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlgate.errors import AlreadyExists, ConcurrentWrite, NotFound
from mlgate.registry.model import AliasEvent, Artifact, Lineage, ModelVersion, RegisteredModel
from mlgate.registry.service import resolve_version
from mlgate.schema import Column
from mlgate.sources.model import SourceConfig
from tests.contracts.conftest import UowFactory

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


def with_model(uow_factory: UowFactory, *numbers: int, name: str = "churn") -> None:
    with uow_factory() as uow:
        uow.models.add(RegisteredModel(name, "classification", "churned", T0))
        for number in numbers:
            uow.models.add_version(a_version(number, name))
        uow.commit()


def test_sources_round_trip(uow_factory: UowFactory) -> None:
    config = SourceConfig("warehouse", "postgresql+psycopg://u:pw@h/db", "sql", T0)
    with uow_factory() as uow:
        uow.sources.add(config)
        uow.sources.add(SourceConfig("archive", "sqlite:///a.db", "sql", T0))
        uow.commit()
    with uow_factory() as uow:
        assert uow.sources.get("warehouse") == config
        assert [s.name for s in uow.sources.all()] == ["archive", "warehouse"]
        with pytest.raises(AlreadyExists):
            uow.sources.add(config)
    with uow_factory() as uow:
        uow.sources.remove("warehouse")
        uow.commit()
    with uow_factory() as uow:
        assert uow.sources.get("warehouse") is None
        with pytest.raises(NotFound):
            uow.sources.remove("warehouse")


def test_leaving_without_commit_rolls_back(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.sources.add(SourceConfig("gone", "sqlite:///g.db", "sql", T0))
    with uow_factory() as uow:
        assert uow.sources.get("gone") is None


def test_an_error_inside_the_block_rolls_back(uow_factory: UowFactory) -> None:
    with pytest.raises(NotFound), uow_factory() as uow:
        uow.sources.add(SourceConfig("half", "sqlite:///h.db", "sql", T0))
        uow.sources.remove("never-there")
        uow.commit()
    with uow_factory() as uow:
        assert uow.sources.all() == []


def test_versions_round_trip_and_move_latest(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1, 2)
    with uow_factory() as uow:
        model = uow.models.get("churn")
        assert model is not None and model.latest_version == 2
        assert uow.models.get_version("churn", 1) == a_version(1)
        assert [v.number for v in uow.models.versions("churn")] == [1, 2]
        assert uow.models.get_version("churn", 3) is None
        assert uow.models.versions("nobody") == []
        with pytest.raises(AlreadyExists):
            uow.models.add(RegisteredModel("churn", "regression", "x", T0))
        with pytest.raises(NotFound):
            uow.models.add_version(a_version(1, name="nobody"))
    assert resolve_version(uow_factory(), "churn", None) == a_version(2)
    with pytest.raises(NotFound, match="no version 7"):
        resolve_version(uow_factory(), "churn", 7)
    with pytest.raises(NotFound, match="no model named 'other'"):
        resolve_version(uow_factory(), "other", None)


def test_a_version_number_is_taken_once(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1)
    with pytest.raises(ConcurrentWrite), uow_factory() as uow:  # the database's word for it
        uow.models.add_version(a_version(1))
        uow.commit()
    with uow_factory() as uow:
        assert [v.number for v in uow.models.versions("churn")] == [1]


def test_models_are_listed_by_name(uow_factory: UowFactory) -> None:
    for name in ("zeta", "alpha"):
        with_model(uow_factory, name=name)
    with uow_factory() as uow:
        assert [m.name for m in uow.models.all()] == ["alpha", "zeta"]


def test_archive_retire_and_delete_versions(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1, 2)
    with uow_factory() as uow:
        uow.models.archive("churn", 1, T0)
        uow.models.schedule_retirement("churn", 2, T0 + timedelta(days=30))
        uow.commit()
    with uow_factory() as uow:
        one, two = uow.models.versions("churn")
        assert one.archived_at == T0 and two.retire_at == T0 + timedelta(days=30)
        uow.models.archive("churn", 1, None)
        uow.models.delete_version("churn", 2)
        uow.commit()
    with uow_factory() as uow:
        assert [(v.number, v.archived_at) for v in uow.models.versions("churn")] == [(1, None)]
        with pytest.raises(NotFound):
            uow.models.archive("nobody", 1, T0)


def test_aliases_move_and_keep_their_history(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1, 2)
    with_model(uow_factory, 1, name="other")
    moves = [
        AliasEvent("churn", "production", "promote", None, 1, "user:ann", "first", T0),
        AliasEvent("churn", "production", "promote", 1, 2, "user:ann", "better", T0 + timedelta(1)),
        AliasEvent("churn", "production", "rollback", 2, 1, "user:bo", "oops", T0 + timedelta(2)),
        AliasEvent("churn", "staging", "promote", None, 2, "user:ann", "try", T0),
        AliasEvent("other", "production", "promote", None, 1, "user:ann", "", T0),
    ]
    with uow_factory() as uow:
        for event in moves:
            uow.models.move_alias(event)
        uow.commit()
    with uow_factory() as uow:
        assert uow.models.aliases("churn") == {"production": 1, "staging": 2}
        assert uow.models.all_aliases() == {
            ("churn", "production"): 1,
            ("churn", "staging"): 2,
            ("other", "production"): 1,
        }
        assert uow.models.alias_history("churn", "production") == moves[:3]
        assert uow.models.alias_history("churn", "canary") == []
        with pytest.raises(NotFound):
            uow.models.aliases("nobody")


def test_annotations_merge_tags_and_an_empty_value_removes_one(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1)
    with uow_factory() as uow:
        uow.models.annotate("churn", None, description="churn risk", tags={"team": "growth"})
        uow.models.annotate("churn", 1, description="first", tags={"a": "1", "b": "2"})
        uow.commit()
    with uow_factory() as uow:
        uow.models.annotate("churn", 1, description=None, tags={"a": "", "c": "3"})
        uow.commit()
    with uow_factory() as uow:
        model, version = uow.models.get("churn"), uow.models.get_version("churn", 1)
        assert model is not None and (model.description, model.tags) == (
            "churn risk",
            {"team": "growth"},
        )
        assert version is not None and (version.description, version.tags) == (
            "first",
            {"b": "2", "c": "3"},
        )
        with pytest.raises(NotFound):
            uow.models.annotate("churn", 9, description="x", tags={})


def test_comparisons_are_kept_per_model_in_order(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1, 2)
    with uow_factory() as uow:
        uow.models.add_comparison("churn", 1, 2, {"verdict": "b", "p": 0.01}, T0)
        uow.models.add_comparison("churn", 2, 1, {"verdict": "a", "p": 0.5}, T0)
        uow.commit()
    with uow_factory() as uow:
        assert [c["verdict"] for c in uow.models.comparisons("churn")] == ["b", "a"]


def test_the_write_journal_round_trips(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.models.add_pending(["m/1.skops", "m/1.parquet"], "host:42", T0)
        uow.commit()
    with uow_factory() as uow:
        assert sorted(uow.models.pending()) == [
            ("m/1.parquet", "host:42", T0),
            ("m/1.skops", "host:42", T0),
        ]
        uow.models.remove_pending(["m/1.skops", "never"])
        uow.commit()
    with uow_factory() as uow:
        assert uow.models.pending() == [("m/1.parquet", "host:42", T0)]
