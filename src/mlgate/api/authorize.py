"""The one authorization decision point every route goes through.

Each route states its rule once, with `@access(rule)` (a test fails for a route without one).
Routes of an `AuthorizedRoute` router check that rule before their body is read or validated
(`authorize_first`): a caller with no standing at all hears 401 or 403, never what is wrong with
its body. The handler then calls `authorize(services, request, target)` before touching anything,
for the exact target (an alias, a version); the action is the route's rule. Both authenticate
the caller (an API key or a login session, see access/service.py) and ask access/policy.py. The
principal is kept on the request for the audit log, and `request.state.authorized` says the
handler asked (the authorization matrix checks it for every route and caller).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.grants import grant_owner_of_new_model
from mlgate.access.model import Principal, Target
from mlgate.bootstrap import Services
from mlgate.errors import MlgateError
from mlgate.registry.model import check_name
from mlgate.serving import asking
from mlgate.tracing import stage

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
    with stage("authenticate") as timed:
        principal = services.principals.get(
            hashlib.blake2b((credential or "").encode(), digest_size=16).hexdigest(),
            lambda: services.access.authenticate(credential),
        )
        if principal.expires_at is not None and principal.expires_at <= services.clock():
            # past its end (a key's expiry, an old secret's overlap): not a second later
            principal = services.access.authenticate(credential)
        timed.set("mlgate.actor", principal.actor)
    request.state.principal = principal
    return principal


def rule_of(request: Request) -> Rule:
    """The rule the matched route declared with @access."""
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    rule: Rule | None = getattr(endpoint, "__mlgate_access__", None)
    if rule is None:
        raise RuntimeError(f"{request.url.path} declares no @access rule")
    return rule


def authorize(
    services: Services,
    request: Request,
    target: Target | str | None = None,
    *,
    action: policy.Action | policy.GlobalAction | Literal["authenticated"] | None = None,
) -> Principal:
    """The caller, if it may do the route's action (or `action`, where one route does two
    things: a dashboard page, training a new model) on `target`; raises Unauthenticated (401)
    or PermissionDenied (403) otherwise."""
    if action is None:
        rule = rule_of(request)
        if rule == "public":
            raise RuntimeError(f"{request.url.path} is public: it authorizes nobody")
        action = rule
    principal = principal_of(services, request)
    with stage("authorize") as timed:
        timed.set("mlgate.action", action)
        _authorize(principal, action, target)
    request.state.authorized = True
    return principal


def _authorize(
    principal: Principal,
    action: policy.Action | policy.GlobalAction | Literal["authenticated"],
    target: Target | str | None,
) -> None:
    if action == "authenticated":
        pass
    elif action == "admin" or action == "create_model":
        policy.authorize_global(principal, action)
    else:
        if target is None:
            raise ValueError(f"{action!r} needs a target")
        parsed = Target.parse(target) if isinstance(target, str) else target
        policy.authorize(principal, action, parsed)


def authorize_asked(
    services: Services,
    request: Request,
    ref: str,
    number: int | None = None,
    alias: str | None = None,
    *,
    action: policy.Action | None = None,
) -> tuple[Principal, asking.Asked]:
    """The caller and what it asked for (`ref` as it named the model: `churn`, `churn@production`,
    `churn@3`; a version or alias given beside it), if it may do the route's action (or
    `action`) on that: every route that acts on a model goes through serving/asking.py here."""
    if action is None:
        rule = rule_of(request)
        if rule in ("public", "authenticated", "admin", "create_model"):
            raise RuntimeError(f"{request.url.path} declares {rule!r}: no action on a model")
        action = rule  # type: ignore[assignment]
    assert action is not None
    principal = principal_of(services, request)
    with stage("authorize") as timed:
        asked = asking.authorize_asked(
            principal, action, services.aliases.target, ref, number, alias
        )
        timed.set("mlgate.action", action)
    request.state.authorized = True
    return principal, asked


def authorize_training(services: Services, request: Request, name: str) -> Principal:
    """Training an existing model needs `train` on it; a new name needs a team member, who
    becomes the owner at once (so the name is theirs while the first version trains)."""
    check_name("model", name)
    uow = services.uow()
    with uow:
        exists = uow.models.get(name) is not None
    if exists:
        return authorize(services, request, Target(name), action="train")
    principal = authorize(services, request, action="create_model")
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


async def authorize_first(request: Request, rule: Rule) -> None:
    """Before the body is read: the caller may do `rule` on something. Calling a model
    (describe, predict, generate) is checked exactly, on the model as the path and query name
    it (serving/asking.py), where they name it well; another action on a model needs a grant
    (or a key restriction) touching the model in the path, on any alias or version (the handler
    checks the exact one); training a name that is not a model yet needs the right to create
    one (authorize_training)."""
    if rule == "public":
        return
    services: Services = request.app.state.services
    ref = request.path_params.get("name") if "/models/{name}" in _path_of(request) else None
    model = None if ref is None else str(ref).partition("@")[0]  # `churn@production`: churn
    named = _named_beside(request) if ref is not None else None

    def check() -> None:
        principal = principal_of(services, request)
        if rule == "authenticated":
            return
        with stage("authorize") as timed:
            timed.set("mlgate.action", rule)
            if rule == "admin" or rule == "create_model":
                policy.authorize_global(principal, rule)
            elif model is None:  # the model is in the body (grants) or behind an id (jobs)
                policy.check_scope(principal, rule)
            elif rule == "train" and not _exists(services, model):
                policy.authorize_global(principal, "create_model")  # a new name: see below
            elif rule in ("describe", "predict", "generate") and named is not None:
                try:
                    read = asking.read_ref(str(ref), *named)
                except MlgateError:  # a malformed name: the handler says what is wrong with it
                    policy.authorize_any(principal, rule, model)
                else:
                    asking.authorize_asked(principal, rule, services.aliases.target, *read)
            else:
                policy.authorize_any(principal, rule, model)

    await run_in_threadpool(check)


def _named_beside(request: Request) -> tuple[int | None, str | None] | None:
    """The version or alias a path segment (`/versions/3/…`) or the query (`?version=3`,
    `?alias=staging`) names beside the model; None where one is malformed (left to the
    handler, which answers what is wrong)."""
    version = request.path_params.get("version") or request.query_params.get("version")
    alias = request.query_params.get("alias")
    if version is not None and not (
        str(version).isdecimal() and len(str(version)) <= 9 and int(version) >= 1
    ):
        return None
    return (None if version is None else int(version)), alias


def _exists(services: Services, name: str) -> bool:
    with services.uow() as uow:
        return uow.models.get(name) is not None


def _path_of(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", ""))


class AuthorizedRoute(APIRoute):
    """A route whose declared rule is checked before FastAPI reads or validates its body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        rule: Rule | None = getattr(self.endpoint, "__mlgate_access__", None)
        if rule is None:
            raise RuntimeError(f"{self.path} declares no @access rule")

        async def authorized_first(request: Request) -> Response:
            await authorize_first(request, rule)
            return await handler(request)

        return authorized_first
