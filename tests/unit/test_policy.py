"""The access rules, as pure functions: scopes, key restrictions, roles and scoped grants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate.access import policy
from mlgate.access.model import SCOPES, Grant, Principal, Role, Target
from mlgate.errors import PermissionDenied

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def grant(target: str, role: Role, who: str = "ann", kind: str = "user") -> Grant:
    return Grant(1, kind, who, Target.parse(target), role, NOW, "test")  # type: ignore[arg-type]


def user(
    *grants: Grant, scopes: tuple[str, ...] = SCOPES, only: str = "", admin: bool = False
) -> Principal:
    return Principal(
        kind="user",
        name="ann",
        is_admin=admin,
        scopes=frozenset(scopes),
        grants=grants,
        key_prefix="mlg_000000000000",
        targets=tuple(Target.parse(t) for t in only.split(",") if t),
    )


def denied(principal: Principal, action: policy.Action, target: str) -> str:
    with pytest.raises(PermissionDenied) as caught:
        policy.authorize(principal, action, Target.parse(target))
    return caught.value.code


def test_deny_by_default_without_any_grant() -> None:
    assert denied(user(), "describe", "churn") == "no_grant"
    assert denied(user(), "predict", "churn@production") == "no_grant"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"describe", "read"}),
        ("consumer", {"describe", "predict", "generate"}),
        (
            "maintainer",
            {"describe", "read", "predict", "generate", "train", "promote", "rollback"}
            | {"archive", "annotate", "monitor", "export"},
        ),
        ("owner", set(policy.ROLE_ACTIONS["owner"])),
    ],
)
def test_each_role_allows_exactly_its_actions(role: Role, allowed: set[str]) -> None:
    principal = user(grant("churn", role))
    every: tuple[policy.Action, ...] = policy.Action.__args__  # type: ignore[attr-defined]
    for action in every:
        assert policy.may(principal, action, Target("churn")) == (action in allowed), action
    assert {"delete", "grant"} <= set(policy.ROLE_ACTIONS["owner"])


def test_a_grant_on_one_model_gives_nothing_on_another() -> None:
    assert denied(user(grant("churn", "owner")), "read", "fraud") == "no_grant"


def test_an_alias_grant_covers_that_alias_and_describing_the_model_only() -> None:
    principal = user(grant("churn@production", "consumer"))
    policy.authorize(principal, "predict", Target("churn", alias="production"))
    policy.authorize(principal, "describe", Target("churn"))
    assert denied(principal, "predict", "churn@staging") == "no_grant"
    assert denied(principal, "predict", "churn@3") == "no_grant"
    assert denied(principal, "predict", "churn") == "no_grant"


def test_a_version_grant_covers_that_version_only() -> None:
    principal = user(grant("churn@3", "consumer"))
    policy.authorize(principal, "predict", Target("churn", version=3))
    assert denied(principal, "predict", "churn@4") == "no_grant"
    assert denied(principal, "predict", "churn@production") == "no_grant"


def test_scopes_take_away_whatever_the_role() -> None:
    principal = user(grant("churn", "owner"), scopes=("predict",))
    policy.authorize(principal, "predict", Target("churn"))
    assert denied(principal, "train", "churn") == "missing_scope"
    assert denied(principal, "read", "churn") == "missing_scope"
    admin = user(admin=True, scopes=("read",))
    assert denied(admin, "predict", "churn") == "missing_scope"


def test_a_restricted_key_reaches_only_its_targets_even_for_an_admin() -> None:
    admin = user(admin=True, only="churn@production")
    policy.authorize(admin, "predict", Target("churn", alias="production"))
    policy.authorize(admin, "describe", Target("churn"))
    assert denied(admin, "predict", "churn@staging") == "key_restricted"
    assert denied(admin, "predict", "fraud") == "key_restricted"
    assert denied(admin, "train", "churn") == "key_restricted"


def test_the_grants_of_someone_else_do_not_count() -> None:
    principal = user(grant("churn", "owner", who="bob"))
    assert denied(principal, "read", "churn") == "no_grant"
    as_consumer = user(grant("churn", "owner", who="ann", kind="consumer"))
    assert denied(as_consumer, "read", "churn") == "no_grant"


def test_admin_actions_need_an_admin_with_the_admin_scope() -> None:
    with pytest.raises(PermissionDenied) as caught:
        policy.authorize_global(user(grant("churn", "owner")), "admin")
    assert caught.value.code == "admin_only"
    with pytest.raises(PermissionDenied) as caught:
        policy.authorize_global(user(admin=True, scopes=("read",)), "admin")
    assert caught.value.code == "missing_scope"
    policy.authorize_global(user(admin=True), "admin")


def test_new_models_come_from_unrestricted_team_members() -> None:
    policy.authorize_global(user(), "create_model")
    with pytest.raises(PermissionDenied):
        policy.authorize_global(user(only="churn"), "create_model")
    consumer = Principal("consumer", "acme", False, frozenset(SCOPES))
    with pytest.raises(PermissionDenied):
        policy.authorize_global(consumer, "create_model")


def test_listings_show_what_may_be_described() -> None:
    principal = user(grant("churn@production", "consumer"), grant("fraud", "viewer"))
    assert policy.visible(principal, ["churn", "fraud", "secret"]) == ["churn", "fraud"]
    assert policy.visible(user(admin=True), ["a", "b"]) == ["a", "b"]
