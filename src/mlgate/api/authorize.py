"""The one authorization decision point every route goes through.

Each route declares its rule with `@access(...)` (a test fails for a route without one), and its
handler calls `authorize(...)` before touching anything: that authenticates the caller (an API
key or a login session, see access/service.py) and asks access/policy.py whether the action is
allowed on the target. The principal is kept on the request for the audit log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Literal, TypeVar

from starlette.requests import Request

from mlgate.access import policy
from mlgate.access.grants import grant_owner_of_new_model
from mlgate.access.model import Principal, Target
from mlgate.access.service import authenticate
from mlgate.bootstrap import Services
from mlgate.registry.model import check_name

Rule = policy.Action | policy.GlobalAction | Literal["public", "authenticated"]
F = TypeVar("F", bound=Callable[..., object])
GLOBAL: tuple[str, ...] = ("admin", "create_model")


def access(rule: Rule, *, audit: bool | None = None) -> Callable[[F], F]:
    """Declare a route's access rule; `audit` (default: True for methods that change state,
    except the prediction hot path) says whether the audit log records each call."""

    def mark(endpoint: F) -> F:
        endpoint.__mlgate_access__ = rule  # type: ignore[attr-defined]
        endpoint.__mlgate_audit__ = audit  # type: ignore[attr-defined]
        return endpoint

    return mark


def principal_of(services: Services, request: Request) -> Principal:
    """The authenticated caller, kept a second per credential (see caching.py). Reads the
    database when it is not cached, so it runs in a worker thread."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    # The dashboard's pages authenticate by their session cookie only (web/pages.py sets it
    # here); the API by the Authorization header only, so no cookie can reach the API.
    credential = getattr(request.state, "credential", None)
    if credential is None:
        credential = request.headers.get("authorization")
    principal = services.principals.get(
        hashlib.blake2b((credential or "").encode(), digest_size=16).hexdigest(),
        lambda: authenticate(
            services.uow(), services.server_secret, credential, now=services.clock()
        ),
    )
    request.state.principal = principal
    return principal


def authorize(
    services: Services,
    request: Request,
    action: policy.Action | policy.GlobalAction | Literal["authenticated"],
    target: Target | str | None = None,
) -> Principal:
    """The caller, if it may do `action` on `target`; raises Unauthenticated (401) or
    PermissionDenied (403) otherwise."""
    principal = principal_of(services, request)
    if action == "authenticated":
        pass
    elif action == "admin" or action == "create_model":
        policy.authorize_global(principal, action)
    else:
        if target is None:
            raise ValueError(f"{action!r} needs a target")
        parsed = Target.parse(target) if isinstance(target, str) else target
        policy.authorize(principal, action, parsed)
    request.state.authorized = True
    return principal


def authorize_training(services: Services, request: Request, name: str) -> Principal:
    """Training an existing model needs `train` on it; a new name needs a team member, who
    becomes the owner at once (so the name is theirs while the first version trains)."""
    check_name("model", name)
    uow = services.uow()
    with uow:
        exists = uow.models.get(name) is not None
    if exists:
        return authorize(services, request, "train", Target(name))
    principal = authorize(services, request, "create_model")
    with uow:
        if uow.models.get(name) is None and not any(
            g.target.model == name for g in principal.grants
        ):
            grant_owner_of_new_model(uow, principal, name, services.clock())
            uow.commit()
    return principal


def actor(principal: Principal) -> str:
    """How lineage and alias history name the caller: who, and through which key."""
    if principal.key_prefix:
        return f"{principal.actor} (key {principal.key_prefix})"
    return principal.actor
