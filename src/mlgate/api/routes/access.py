"""The admin API: logins, users, consumers, API keys, grants and the audit log."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access import audit
from mlgate.access.model import ApiKey, AuditEvent, AuditQuery, Consumer, Grant, Principal, User
from mlgate.access.service import rotation_detail
from mlgate.api.authorize import AuthorizedRoute, access, authorize
from mlgate.api.calls import call
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import GrantId, Instant
from mlgate.bootstrap import Services
from mlgate.errors import NotFound
from mlgate.sso.device import Pending

router = APIRouter(
    prefix="/v1", tags=["access"], dependencies=[Security(bearer)], route_class=AuthorizedRoute
)
T = TypeVar("T")
Kind = Literal["user", "consumer"]
SubjectKindIn = Literal["user", "consumer", "group"]  # a group: the identity provider's
_NAME = Field(min_length=1, max_length=128)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    password: str = Field(min_length=1, max_length=1024)
    ttl_minutes: StrictInt = Field(60, ge=1, le=24 * 60, description="How long the token lives")
    kind: Literal["user", "consumer"] = Field("user", description="A team user or a consumer")


class LoginOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`; shown once")
    user: str
    expires_at: datetime


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class MeOut(BaseModel):
    kind: Kind
    name: str
    admin: bool
    scopes: list[str]
    credential: str
    restricted_to: list[str]
    grants: list[GrantOut]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    password: str | None = Field(None, max_length=1024, description="None: cannot log in")
    admin: bool = False


class UserOut(BaseModel):
    name: str
    admin: bool
    created_at: datetime
    disabled: bool
    can_log_in: bool = Field(description="with a password here")
    single_sign_on: bool = Field(description="has signed in through the identity provider")
    groups: list[str] = Field(description="the provider's groups (last sign-in, or SCIM)")


class ConsumerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    description: str = Field("", max_length=1000)


class ConsumerOut(BaseModel):
    name: str
    description: str
    created_at: datetime
    disabled: bool
    billing_id: str | None = Field(
        None, description="The customer's id in the billing system (Stripe's cus_…)"
    )


class BillingIdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    billing_id: str | None = Field(
        max_length=255, description="Stripe's cus_…, or null to clear it"
    )


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    scopes: list[str] = Field(default_factory=lambda: ["predict"], max_length=8)
    owner_kind: Kind | None = Field(None, description="Default: the caller")
    owner: str | None = Field(None, max_length=128, description="Default: the caller")
    expires_at: Instant | None = None
    targets: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Restrict the key to these models, `model@alias` or `model@version`",
    )


class KeyOut(BaseModel):
    prefix: str
    name: str
    owner_kind: Kind
    owner: str
    scopes: list[str]
    targets: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    state: str = Field(
        description="active, rotating (its old secret works too), revoked, expired, "
        "owner disabled (refused until the owner is enabled again)"
    )
    rotated_at: datetime | None = None
    previous_until: datetime | None = Field(
        None, description="While rotating: when the secret before the last rotation stops"
    )


class NewKeyOut(KeyOut):
    token: str = Field(description="Shown once; store it now")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: StrictInt = Field(
        24 * 3600,
        ge=0,
        le=30 * 24 * 3600,
        description="How long the old secret keeps working beside the new one (0 to 30 days)",
    )


class KeysCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=5_000_000, description="A file or a diff to look for keys in")


class KeyFindingOut(BaseModel):
    line: int
    masked: str = Field(description="The key's public id; never its secret")
    shape: Literal["checksummed", "legacy", "bad_checksum", "malformed"]
    status: str = Field(
        description="live, live (old secret), live (owner disabled), revoked, expired, "
        "retired, unknown, malformed"
    )
    name: str | None
    owner: str | None
    until: datetime | None


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_kind: SubjectKindIn
    subject: str = _NAME
    target: str = Field(
        min_length=1, max_length=200, description="`model`, `model@alias` or `model@version`"
    )
    role: Literal["owner", "maintainer", "viewer", "consumer"]


class GrantOut(BaseModel):
    id: int
    subject_kind: SubjectKindIn
    subject: str
    target: str
    role: str
    created_at: datetime
    created_by: str


class AuditOut(BaseModel):
    id: int | None
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    result: str
    detail: dict[str, Any]


MeOut.model_rebuild()


@router.post("/auth/login", response_model=LoginOut, responses=PROBLEMS)
@access("public")
async def login(request: Request, body: LoginRequest) -> Response:
    """Trade a user name and password for a short-lived bearer token. Repeated failures slow
    down (429 with Retry-After) and then lock the account for a while."""
    services = _services(request)
    request.state.actor = f"{body.kind}:{body.name}"

    def run() -> dict[str, Any]:
        session, token = services.access.login(
            body.name, body.password, ttl=timedelta(minutes=body.ttl_minutes), kind=body.kind
        )
        return LoginOut(token=token, user=session.user, expires_at=session.expires_at).model_dump(
            mode="json"
        )

    return _json(await run_in_threadpool(run))


class DeviceStartOut(BaseModel):
    device_code: str = Field(description="Hand back to /v1/auth/sso/device/token while waiting")
    user_code: str = Field(description="What the user types at the provider")
    verification_uri: str = Field(description="Where the user goes, on any device")
    verification_uri_complete: str | None = Field(description="The address with the code in it")
    expires_in: int = Field(description="Seconds the code stays valid")
    interval: int = Field(description="Seconds to wait between two asks")


class DeviceTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_code: str = Field(min_length=1, max_length=4096)
    interval: StrictInt = Field(5, ge=1, le=60, description="The seconds waited since the last ask")
    ttl_minutes: StrictInt = Field(60, ge=1, le=24 * 60, description="How long the token lives")


class DevicePendingOut(BaseModel):
    status: Literal["authorization_pending", "slow_down"]
    interval: int = Field(description="Seconds to wait before asking again")


@router.post("/auth/sso/device", response_model=DeviceStartOut, responses=PROBLEMS)
@access("public")
async def sso_device_start(request: Request) -> Response:
    """Start a sign-in through the identity provider for a device without a browser (the OAuth
    2.0 Device Authorization Grant, RFC 8628): the server asks the provider with mlgate's
    client (its secret stays here) and answers the code and address to show the user."""
    sso = _services(request).sso
    if sso is None:
        raise NotFound("single sign-on is not set up here (MLGATE_OIDC_ISSUER)")
    address = request.client.host if request.client else "unknown"
    started = await run_in_threadpool(lambda: sso.start_device(address=address))
    return _json(DeviceStartOut(**dataclasses.asdict(started)).model_dump(mode="json"))


@router.post(
    "/auth/sso/device/token",
    response_model=LoginOut,
    responses={**PROBLEMS, 202: {"model": DevicePendingOut, "description": "Not approved yet"}},
)
@access("public", audit=False)  # sso/service.py records each sign-in, refused ones too
async def sso_device_token(request: Request, body: DeviceTokenRequest) -> Response:
    """Ask whether the user approved the code: 202 while they have not (wait `interval`
    seconds), then a short-lived bearer token as /v1/auth/login gives; 401 with the code
    `access_denied` or `expired_token` when the provider refused."""
    sso = _services(request).sso
    if sso is None:
        raise NotFound("single sign-on is not set up here (MLGATE_OIDC_ISSUER)")
    address = request.client.host if request.client else "unknown"
    answer = await run_in_threadpool(
        lambda: sso.finish_device(
            body.device_code,
            interval=body.interval,
            address=address,
            ttl=timedelta(minutes=body.ttl_minutes),
        )  # fmt: skip
    )
    if isinstance(answer, Pending):
        out = DevicePendingOut(status=answer.status, interval=answer.interval)
        return Response(orjson.dumps(out.model_dump(mode="json")), status_code=202,
                        media_type="application/json")  # fmt: skip
    session, token, _ = answer
    request.state.actor = f"user:{session.user}"
    return _json(LoginOut(token=token, user=session.user, expires_at=session.expires_at)
                 .model_dump(mode="json"))  # fmt: skip


@router.post("/auth/logout", status_code=204, responses=PROBLEMS)
@access("authenticated")
async def logout(request: Request) -> Response:
    """End the login session whose token is on this request."""
    services = _services(request)

    def run() -> None:
        principal = authorize(services, request)
        services.access.logout(principal)

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.post("/auth/password", status_code=204, responses=PROBLEMS)
@access("authenticated")
async def change_password(request: Request, body: PasswordChange) -> Response:
    """Change your own password (logged in, not with a key); your other sessions end."""
    services = _services(request)

    def run() -> None:
        principal = authorize(services, request)
        services.access.change_password(principal, body.current, body.new)

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeOut, responses=PROBLEMS)
@access("authenticated")
async def me(request: Request) -> Response:
    """Who the credentials on this request belong to, and what they may do."""
    services = _services(request)

    def run() -> dict[str, Any]:
        p = authorize(services, request)
        return MeOut(
            kind=p.kind,
            name=p.name,
            admin=p.is_admin,
            scopes=sorted(p.scopes),
            credential=p.credential,
            restricted_to=[str(t) for t in p.targets],
            grants=[_grant(g) for g in p.grants],
        ).model_dump(mode="json")

    return _json(await run_in_threadpool(run))


@router.get("/users", response_model=list[UserOut], responses=PROBLEMS)
@access("admin")
async def list_users(request: Request) -> Response:
    return await call(request, lambda s, p: [_user(u) for u in s.access.users(by=p)])


@router.post("/users", status_code=201, response_model=UserOut, responses=PROBLEMS)
@access("admin")
async def create_user(request: Request, body: UserIn) -> Response:
    """Create a user (admins only). Without a password the account cannot log in."""

    def run(s: Services, p: Principal) -> UserOut:
        return _user(
            s.access.create_user(by=p, name=body.name, password=body.password, is_admin=body.admin)
        )

    return await call(request, run, status=201)


@router.post("/users/{name}/disable", response_model=UserOut, responses=PROBLEMS)
@access("admin")
async def disable_user(request: Request, name: str) -> Response:
    """Disable a user: their keys and sessions stop working at once."""
    return await _set_disabled(request, "user", name, disabled=True)


@router.post("/users/{name}/enable", response_model=UserOut, responses=PROBLEMS)
@access("admin")
async def enable_user(request: Request, name: str) -> Response:
    return await _set_disabled(request, "user", name, disabled=False)


@router.put("/users/{name}/password", status_code=204, responses=PROBLEMS)
@access("admin")
async def set_password(request: Request, name: str, body: PasswordSet) -> Response:
    """Set a user's password (admins only); their sessions end."""
    await call(
        request,
        lambda s, p: s.access.set_password(name, body.password, by=p),
    )
    return Response(status_code=204)


@router.get("/consumers", response_model=list[ConsumerOut], responses=PROBLEMS)
@access("admin")
async def list_consumers(request: Request) -> Response:
    return await call(
        request,
        lambda s, p: [_consumer(c) for c in s.access.consumers(by=p)],
    )


@router.post("/consumers", status_code=201, response_model=ConsumerOut, responses=PROBLEMS)
@access("admin")
async def create_consumer(request: Request, body: ConsumerIn) -> Response:
    """Create a consumer: a customer account that calls prediction endpoints."""
    return await call(
        request,
        lambda s, p: _consumer(
            s.access.create_consumer(by=p, name=body.name, description=body.description)
        ),
        status=201,
    )


@router.put("/consumers/{name}/password", status_code=204, responses=PROBLEMS)
@access("admin")
async def set_consumer_password(request: Request, name: str, body: PasswordSet) -> Response:
    """Set a consumer's portal password (admins only); its portal sessions end."""
    await call(
        request,
        lambda s, p: s.access.set_consumer_password(name, body.password, by=p),
    )
    return Response(status_code=204)


@router.put("/consumers/{name}/billing-id", response_model=ConsumerOut, responses=PROBLEMS)
@access("admin")
async def set_billing_id(request: Request, name: str, body: BillingIdIn) -> Response:
    """The consumer's id in the billing system: the usage export to Stripe names it, and a
    consumer without one is not exported there (admins only)."""
    return await call(
        request,
        lambda s, p: _consumer(s.access.set_billing_id(name, body.billing_id, by=p)),
    )


@router.get("/consumers/{name}", response_model=ConsumerOut, responses=PROBLEMS)
@access("authenticated")
async def get_consumer(request: Request, name: str) -> Response:
    """A consumer (admins; or the consumer itself)."""
    return await call(
        request,
        lambda s, p: _consumer(s.access.consumer(name, by=p)),
    )


@router.post("/consumers/{name}/disable", response_model=ConsumerOut, responses=PROBLEMS)
@access("admin")
async def disable_consumer(request: Request, name: str) -> Response:
    """Disable a consumer: every key of theirs stops working at once."""
    return await _set_disabled(request, "consumer", name, disabled=True)


@router.post("/consumers/{name}/enable", response_model=ConsumerOut, responses=PROBLEMS)
@access("admin")
async def enable_consumer(request: Request, name: str) -> Response:
    return await _set_disabled(request, "consumer", name, disabled=False)


async def _set_disabled(request: Request, kind: Kind, name: str, *, disabled: bool) -> Response:
    """The body of the enable and disable routes of users and consumers: the account's use case
    (an admin's, by the routes' rule), the account as it now stands."""

    def run(s: Services, p: Principal) -> UserOut | ConsumerOut:
        if kind == "user":
            user = s.access.set_user_disabled(name, disabled=disabled, by=p)
            return _user(user)
        consumer = s.access.set_consumer_disabled(name, disabled=disabled, by=p)
        return _consumer(consumer)

    return await call(request, run)


@router.get("/keys", response_model=list[KeyOut], responses=PROBLEMS)
@access("authenticated")
async def list_keys(
    request: Request,
    owner_kind: Kind | None = None,
    owner: str | None = Query(None, max_length=128),
) -> Response:
    """Your keys; admins see everyone's (or one owner's). Never the secrets."""

    def run(s: Services, p: Principal) -> list[KeyOut]:
        now = s.clock()
        found = s.access.keys(by=p, owner_kind=owner_kind, owner=owner)
        return [_key(k, now) for k in found]

    return await call(request, run)


@router.post("/keys", status_code=201, response_model=NewKeyOut, responses=PROBLEMS)
@access("authenticated")
async def create_key(request: Request, body: KeyIn) -> Response:
    """Create a key for yourself (a login session, or a key with the admin scope), or, as an
    admin, for any user or consumer. The token is in this response only."""

    def run(s: Services, p: Principal) -> NewKeyOut:
        key, token = s.access.create_key(
            by=p,
            owner_kind=body.owner_kind or p.kind,
            owner=body.owner or p.name,
            name=body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            targets=body.targets,
        )
        return NewKeyOut(**_key(key, s.clock()).model_dump(), token=token)

    return await call(request, run, status=201)


@router.post("/keys/check", response_model=list[KeyFindingOut], responses=PROBLEMS)
@access("admin", audit=False)
async def check_keys(request: Request, body: KeysCheckIn) -> Response:
    """The mlgate keys in a text (a file, a diff): whether each is well-formed and whether it
    works, and which key it is; never a secret (admins only)."""

    def run(s: Services, p: Principal) -> list[KeyFindingOut]:
        found = s.access.check_keys(body.text)
        return [KeyFindingOut(**dataclasses.asdict(f)) for f in found]

    return await call(request, run)


@router.post("/keys/{prefix}/rotate", response_model=NewKeyOut, responses=PROBLEMS)
@access("authenticated")
async def rotate_key(request: Request, prefix: str, body: RotateIn) -> Response:
    """A new secret for a key (yours, or anyone's as an admin): same id, name, scopes and usage;
    the old secret keeps working for `overlap_seconds`. The new token is in this response only."""

    def run(s: Services, p: Principal) -> NewKeyOut:
        overlap = timedelta(seconds=body.overlap_seconds)
        key, token = s.access.rotate_key(prefix, by=p, overlap=overlap)
        request.state.audit_detail = rotation_detail(key, overlap)  # the AuditLog's event
        return NewKeyOut(**_key(key, s.clock()).model_dump(), token=token)

    return await call(request, run)


@router.delete("/keys/{prefix}", response_model=KeyOut, responses=PROBLEMS)
@access("authenticated")
async def revoke_key(request: Request, prefix: str) -> Response:
    """Revoke a key (yours, or anyone's as an admin); refused on every worker within a second."""
    return await call(
        request,
        lambda s, p: _key(s.access.revoke_key(prefix, by=p), s.clock()),
    )


@router.get("/grants", response_model=list[GrantOut], responses=PROBLEMS)
@access("authenticated")
async def list_grants(
    request: Request, model: str | None = Query(None, max_length=128)
) -> Response:
    """Grants you may see: all (admins), those on models you own, and your own."""
    return await call(
        request,
        lambda s, p: [_grant(g) for g in s.access.grants(by=p, model=model)],
    )


@router.post("/grants", status_code=201, response_model=GrantOut, responses=PROBLEMS)
@access("grant")
async def add_grant(request: Request, body: GrantIn) -> Response:
    """Give a user or consumer a role on a model, alias or version (admins, model owners)."""

    def run(s: Services, p: Principal) -> GrantOut:
        return _grant(
            s.access.add_grant(
                by=p,
                subject_kind=body.subject_kind,
                subject=body.subject,
                target=body.target,
                role=body.role,
                actor=p.actor,
            )
        )

    return await call(request, run, status=201, target_in_body=True)


@router.delete("/grants/{grant_id}", response_model=GrantOut, responses=PROBLEMS)
@access("grant")
async def remove_grant(request: Request, grant_id: GrantId) -> Response:
    """Take a grant away (admins, model owners); effective on the next request."""
    return await call(
        request,
        lambda s, p: _grant(s.access.remove_grant(grant_id, by=p)),
        target_in_body=True,
    )


@router.get("/audit", response_model=list[AuditOut], responses=PROBLEMS)
@access("admin")
async def list_audit(
    request: Request,
    actor: str | None = Query(None, max_length=160),
    action: str | None = Query(None, max_length=64, description='exact, or a prefix like "keys."'),
    target: str | None = Query(None, max_length=300),
    result: Literal["ok", "denied", "failed"] | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: int = Query(100, ge=1, le=audit.MAX_LIMIT),
) -> Response:
    """The audit log, newest first (admins only)."""
    q = AuditQuery(actor, action, target, result, since, until, limit)
    return await call(request, lambda s, p: [_audit(e) for e in s.access.audit_log(q)])


def _user(u: User) -> UserOut:
    return UserOut(
        name=u.name,
        admin=u.is_admin,
        created_at=u.created_at,
        disabled=u.disabled_at is not None,
        can_log_in=u.password_hash is not None,
        single_sign_on=u.sso_subject is not None,
        groups=list(u.groups),
    )


def _consumer(c: Consumer) -> ConsumerOut:
    return ConsumerOut(
        name=c.name,
        description=c.description,
        created_at=c.created_at,
        disabled=c.disabled_at is not None,
        billing_id=c.billing_id,
    )


def _key(k: ApiKey, now: datetime) -> KeyOut:
    return KeyOut(
        prefix=k.prefix,
        name=k.name,
        owner_kind=k.owner_kind,
        owner=k.owner,
        scopes=list(k.scopes),
        targets=[str(t) for t in k.targets],
        created_at=k.created_at,
        expires_at=k.expires_at,
        last_used_at=k.last_used_at,
        state=k.state(now),
        rotated_at=k.rotated_at,
        previous_until=k.previous_until if k.old_secret_works(now) else None,
    )


def _grant(g: Grant) -> GrantOut:
    return GrantOut(
        id=g.id,
        subject_kind=g.subject_kind,
        subject=g.subject,
        target=str(g.target),
        role=g.role,
        created_at=g.created_at,
        created_by=g.created_by,
    )


def _audit(e: AuditEvent) -> AuditOut:
    return AuditOut(
        id=e.id,
        at=e.at,
        actor=e.actor,
        action=e.action,
        target=e.target,
        address=e.address,
        result=e.result,
        detail=e.detail,
    )


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
