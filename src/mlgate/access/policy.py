"""The rules: may this principal do this action on this target? Pure code, deny by default.

A request passes three gates, each of which can only take away:

1. the credential's **scopes** (a key made for `predict` cannot train, whoever owns it);
2. the key's **restriction** to some models, aliases or versions, if it has one;
3. the owner's **standing**: admin, or a grant whose role allows the action on the target.

A grant (or restriction) on a whole model covers every alias and version of it. One on an alias
(`churn@production`) or a version (`churn@3`) covers requests that name exactly that alias or
version, plus `describe` (name and input schema) of the model, which a caller needs to call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from mlgate.access.model import Grant, Principal, Role, Target
from mlgate.errors import PermissionDenied

Action = Literal[
    "describe",  # a model's name, task and input schema
    "read",  # versions, metrics, reports, aliases, history, comparisons
    "predict",
    "generate",
    "train",  # new versions, including imports
    "promote",
    "rollback",
    "archive",
    "annotate",
    "monitor",  # monitoring settings (sampling, excluded columns, alerts) and checks
    "export",
    "delete",
    "grant",  # manage who else may act on the model
]
GlobalAction = Literal["admin", "create_model"]

_VIEWER: frozenset[Action] = frozenset({"describe", "read"})
_CONSUMER: frozenset[Action] = frozenset({"describe", "predict", "generate"})
_MAINTAINER: frozenset[Action] = (
    _VIEWER
    | _CONSUMER
    | frozenset({"train", "promote", "rollback", "archive", "annotate", "monitor", "export"})
)
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    "viewer": _VIEWER,
    "consumer": _CONSUMER,
    "maintainer": _MAINTAINER,
    "owner": _MAINTAINER | frozenset({"delete", "grant"}),
}

# The scopes that allow each action (any one of them will do).
SCOPES_FOR: dict[Action | GlobalAction, tuple[str, ...]] = {
    "describe": ("read", "predict", "generate"),
    "read": ("read",),
    "predict": ("predict",),
    "generate": ("generate",),
    "train": ("train",),
    "promote": ("train",),
    "rollback": ("train",),
    "archive": ("train",),
    "annotate": ("train",),
    "monitor": ("train",),
    "export": ("train",),
    "delete": ("admin",),
    "grant": ("admin",),
    "admin": ("admin",),
    "create_model": ("train",),
}


def covers(scope: Target, target: Target, action: Action) -> bool:
    """Whether a grant or restriction on `scope` reaches `action` on `target`."""
    if scope.model != target.model:
        return False
    if scope.whole_model or action == "describe":
        return True
    return scope == target


def check_scope(principal: Principal, action: Action | GlobalAction) -> None:
    needed = SCOPES_FOR[action]
    if not principal.scopes.intersection(needed):
        raise PermissionDenied(
            f"the {principal.credential} lacks the {' or '.join(repr(s) for s in needed)} "
            f"scope that {action!r} needs; create a key with it",
            code="missing_scope",
        )


def authorize(principal: Principal, action: Action, target: Target) -> None:
    """Return if `principal` may do `action` on `target`; raise PermissionDenied if not."""
    check_scope(principal, action)
    if principal.targets and not any(covers(t, target, action) for t in principal.targets):
        raise PermissionDenied(
            f"the {principal.credential} is restricted to "
            f"{', '.join(str(t) for t in principal.targets)}, not {target}",
            code="key_restricted",
        )
    if principal.is_admin:
        return
    if any(
        action in ROLE_ACTIONS[g.role] and covers(g.target, target, action) for g in _own(principal)
    ):
        return
    raise PermissionDenied(
        f"{principal.actor} has no grant that allows {action!r} on {target}; "
        "ask the model's owner or an admin for one",
        code="no_grant",
    )


def authorize_sql_export(principal: Principal, target: Target, *, check_source: str | None) -> None:
    """May `principal` have `target` as checked SQL: `export` on it, and, to name a source
    whose server the SQL is checked on (a scratch schema made there), be an admin; without
    one it is checked in process or on the version's own source. The API route and the
    dashboard's page both ask this."""
    authorize(principal, "export", target)
    if check_source is not None and not principal.is_admin:
        raise PermissionDenied(
            "only admins name a source to check the SQL on; without check_source it is "
            "checked on the version's own source",
            code="admin_only",
        )


def authorize_global(principal: Principal, action: GlobalAction) -> None:
    """Actions on no one model: administration, and creating a new model by training it."""
    check_scope(principal, action)
    if action == "create_model":
        if principal.kind == "user" and not principal.targets:
            return
        raise PermissionDenied(
            "only team members' unrestricted credentials create new models; "
            "consumers and restricted keys train existing ones they are granted",
            code="forbidden",
        )
    if not principal.is_admin:
        raise PermissionDenied(f"{principal.actor} is not an admin", code="admin_only")


def authorize_any(principal: Principal, action: Action, model: str) -> None:
    """Return if `principal` may do `action` on at least some alias or version of `model` (the
    check made before a request's body is read; the exact target is checked after it)."""
    check_scope(principal, action)
    if principal.targets and not any(t.model == model for t in principal.targets):
        raise PermissionDenied(
            f"the {principal.credential} is restricted to "
            f"{', '.join(str(t) for t in principal.targets)}, not {model}",
            code="key_restricted",
        )
    if principal.is_admin:
        return
    if any(action in ROLE_ACTIONS[g.role] and g.target.model == model for g in _own(principal)):
        return
    raise PermissionDenied(
        f"{principal.actor} has no grant that allows {action!r} on {model}; "
        "ask the model's owner or an admin for one",
        code="no_grant",
    )


def may(principal: Principal, action: Action, target: Target) -> bool:
    try:
        authorize(principal, action, target)
    except PermissionDenied:
        return False
    return True


def visible(principal: Principal, models: Iterable[str]) -> list[str]:
    """The models a listing shows this principal: those it may at least describe."""
    return [m for m in models if may(principal, "describe", Target(m))]


def granted_targets(principal: Principal, models: Iterable[str]) -> list[Target]:
    """What the principal's own grants name on `models`, as granted (`churn`, `churn@production`,
    `churn@3`): what a consumer may call each model as. An admin's: each model whole."""
    wanted = set(models)
    if principal.is_admin:
        return [Target(m) for m in sorted(wanted)]
    named = {g.target for g in _own(principal) if g.target.model in wanted}
    return sorted(named, key=lambda t: (t.model, str(t)))


def _own(principal: Principal) -> tuple[Grant, ...]:
    return tuple(
        g
        for g in principal.grants
        if (g.subject_kind, g.subject) == (principal.kind, principal.name)
        or (g.subject_kind == "group" and g.subject in principal.groups)
    )
