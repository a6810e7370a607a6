"""Aliases, promotion, rollback and archiving: on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlgate.bootstrap import Services
from mlgate.errors import Conflict, InvalidInput, NotFound
from mlgate.registry import aliases as lifecycle
from mlgate.registry.model import RegisteredModel
from mlgate.registry.service import parse_ref, resolve_version
from tests.contracts.test_registry_store import a_version

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def churn(any_services: Services) -> Services:
    """Model churn with versions 1 to 4."""
    with any_services.uow() as uow:
        uow.models.add(RegisteredModel("churn", "classification", "churned", T0))
        for number in range(1, 5):
            uow.models.add_version(a_version(number))
        uow.commit()
    return any_services


def move(services: Services, number: int, alias: str = "production", minutes: int = 0) -> None:
    lifecycle.promote(
        services.uow(),
        "churn",
        number,
        alias,
        actor="ada",
        reason=f"v{number} is better",
        now=T0 + timedelta(minutes=minutes),
    )


def back(services: Services, alias: str = "production") -> int:
    event = lifecycle.rollback(services.uow(), "churn", alias, actor="bob", reason="oops", now=T0)
    return event.to_version


def test_a_plain_name_means_production_else_the_latest(churn: Services) -> None:
    assert resolve_version(churn.uow(), "churn", None).number == 4
    move(churn, 2)
    assert resolve_version(churn.uow(), "churn", None).number == 2
    assert resolve_version(churn.uow(), "churn", 3).number == 3
    move(churn, 3, "staging")
    assert resolve_version(churn.uow(), "churn", None, "staging").number == 3
    with pytest.raises(NotFound, match="no alias 'canary'"):
        resolve_version(churn.uow(), "churn", None, "canary")


def test_rollback_walks_back_through_the_promotions(churn: Services) -> None:
    for minutes, number in enumerate([1, 2, 4]):
        move(churn, number, minutes=minutes)
    assert back(churn) == 2
    assert back(churn) == 1
    with pytest.raises(Conflict, match="no earlier version"):
        back(churn)
    move(churn, 3)
    assert back(churn) == 1
    history = lifecycle.history(churn.uow(), "churn", "production")
    assert [(e.kind, e.from_version, e.to_version) for e in history] == [
        ("promote", None, 1),
        ("promote", 1, 2),
        ("promote", 2, 4),
        ("rollback", 4, 2),
        ("rollback", 2, 1),
        ("promote", 1, 3),
        ("rollback", 3, 1),
    ]
    assert history[0].actor == "ada" and history[0].reason == "v1 is better"
    assert history[3].actor == "bob"


def test_archived_versions_are_kept_but_not_served_or_promoted(churn: Services) -> None:
    move(churn, 2)
    with pytest.raises(Conflict, match="target of production"):
        lifecycle.archive(churn.uow(), "churn", 2, now=T0)
    lifecycle.archive(churn.uow(), "churn", 4, now=T0)
    with pytest.raises(Conflict, match="archived"):
        move(churn, 4)
    with pytest.raises(Conflict, match="archived and no longer served"):
        resolve_version(churn.uow(), "churn", 4)
    lifecycle.archive(churn.uow(), "churn", 1, now=T0)
    move(churn, 3)
    assert back(churn) == 2  # v1 is archived: a rollback never lands on it
    with churn.uow() as uow:
        assert uow.models.get_version("churn", 4) is not None  # kept


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: move(s, 9), NotFound, "no version 9"),
        (lambda s: move(s, 1, "Prod!"), InvalidInput, "alias names are"),
        (lambda s: back(s), NotFound, "no alias 'production'"),
        (lambda s: lifecycle.aliases_of(s.uow(), "ghost"), NotFound, "no model named 'ghost'"),
    ],
)
def test_bad_requests_change_nothing(
    churn: Services, call: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        call(churn)  # type: ignore[operator]
    assert lifecycle.aliases_of(churn.uow(), "churn") == {}


def test_promoting_the_current_target_is_refused(churn: Services) -> None:
    move(churn, 2)
    with pytest.raises(Conflict, match="already points at churn@v2"):
        move(churn, 2)


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("churn", ("churn", None, None)),
        ("churn@3", ("churn", 3, None)),
        ("churn@v3", ("churn", 3, None)),
        ("churn@production", ("churn", None, "production")),
    ],
)
def test_refs_parse(ref: str, parsed: tuple[str, int | None, str | None]) -> None:
    assert parse_ref(ref) == parsed
