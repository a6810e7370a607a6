"""This model, as the caller named it (serving/asking.py): what a name means, and which grants
open it. Pure: a principal, and where this process's aliases point."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate.access import policy
from mlgate.access.model import Grant, Principal, Target
from mlgate.errors import InvalidInput, PermissionDenied
from mlgate.serving.asking import Asked, asked_for, authorize_asked, read_ref

NOW = datetime(2026, 12, 7, tzinfo=UTC)
ALIASES = {("affairs", "production"): 3, ("affairs", "staging"): 4}


def follow(model: str, alias: str) -> int | None:
    return ALIASES.get((model, alias))


def consumer(*targets: str) -> Principal:
    grants = tuple(
        Grant(i, "consumer", "acme", Target.parse(t), "consumer", NOW, "test")
        for i, t in enumerate(targets)
    )
    return Principal("consumer", "acme", False, frozenset({"predict", "read"}), grants)


@pytest.mark.parametrize(
    ("ref", "target", "serves"),
    [
        ("affairs", "affairs@production", (3, None)),  # the bare name: the production alias
        ("affairs@production", "affairs@production", (3, None)),
        ("affairs@staging", "affairs@staging", (4, None)),
        ("affairs@3", "affairs@3", (3, None)),
        ("affairs@v2", "affairs@2", (2, None)),
        ("churn", "churn", (None, None)),  # no production alias: the model, at its latest
        ("affairs@canary", "affairs@canary", (None, "canary")),  # not loaded: resolved later
    ],
)
def test_a_name_means_one_target_and_one_version(
    ref: str, target: str, serves: tuple[int | None, str | None]
) -> None:
    asked = asked_for(follow, *read_ref(ref))
    assert asked.target == Target.parse(target)
    assert (asked.number, asked.alias) == serves
    assert asked.ref == target


# Which refs each grant opens for `predict` (every one of them opens `describe` of the model).
OPENS = {
    "affairs": {"affairs", "affairs@production", "affairs@staging", "affairs@3", "affairs@4"},
    "affairs@production": {"affairs", "affairs@production"},
    "affairs@3": {"affairs@3"},  # not the bare name, though production points at 3 today
    "affairs@staging": {"affairs@staging"},
}


@pytest.mark.parametrize("granted", sorted(OPENS))
@pytest.mark.parametrize(
    "ref", ["affairs", "affairs@production", "affairs@staging", "affairs@3", "affairs@4"]
)
def test_a_grant_opens_what_it_names_and_nothing_else(granted: str, ref: str) -> None:
    principal = consumer(granted)
    if ref in OPENS[granted]:
        asked = authorize_asked(principal, "predict", follow, ref)
        assert isinstance(asked, Asked) and asked.model == "affairs"
    else:
        with pytest.raises(PermissionDenied) as caught:
            authorize_asked(principal, "predict", follow, ref)
        assert caught.value.code == "no_grant"
        assert str(asked_for(follow, *read_ref(ref)).target) in str(caught.value)
    assert authorize_asked(principal, "describe", follow, ref).model == "affairs"


def test_a_version_or_alias_beside_the_name_counts_once() -> None:
    assert read_ref("affairs", None, "staging") == ("affairs", None, "staging")
    assert read_ref("affairs", 2, None) == ("affairs", 2, None)
    with pytest.raises(InvalidInput, match="names its alias or version already"):
        read_ref("affairs@production", 2, None)
    with pytest.raises(InvalidInput, match="not both"):
        read_ref("affairs", 2, "staging")
    with pytest.raises(InvalidInput, match="MODEL@ALIAS"):
        read_ref("affairs@Not An Alias!")


def test_the_portal_lists_each_model_as_granted() -> None:
    principal = consumer("affairs@production", "affairs@3", "churn", "other")
    listed = [str(t) for t in policy.granted_targets(principal, ["affairs", "churn"])]
    assert listed == ["affairs@3", "affairs@production", "churn"]
