"""Plans, subscriptions and usage over HTTP."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access.model import Principal, Target
from mlgate.api.authorize import AuthorizedRoute, access, authorize
from mlgate.api.body import decode_json, read_body
from mlgate.api.calls import call
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import MAX_COUNT, Instant, Percent, VersionNumber
from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput, PermissionDenied
from mlgate.plans import service
from mlgate.plans.model import LIMIT_FIELDS, LIMITS, Plan, Subscription, UsageRow

router = APIRouter(
    prefix="/v1", tags=["plans"], dependencies=[Security(bearer)], route_class=AuthorizedRoute
)
Positive = int | None
MONTH = Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")


# How each of a plan's settings travels: the bounds a request is held to, and what the new-plan
# schema says of it. Their types and defaults are the Plan record's own (plans/model.py), the
# limits are declared once in LIMITS, and a Plan field found in neither fails at import.
_PRICE = {"ge": 0, "max_digits": 12, "decimal_places": 6}
_SETTINGS: dict[str, dict[str, Any]] = {
    "models": {"max_length": 100},
    "overage": {"description": "Serve past the quotas and meter the overage"},
    "explain": {"description": "Consumers may ask for per-row explanations"},
    "price_per_1k_rows": _PRICE,
    "price_per_1k_overage_rows": _PRICE,
    "price_per_1k_explained_rows": _PRICE,
    "description": {"max_length": 1000},
    "thresholds": {
        "max_length": 5,
        "description": "Percents of each quota (and spend cap) announced",
    },
    "max_batch_bytes": {"ge": 1, "le": MAX_COUNT, "description": "The largest batch file"},
}
# A Plan field's type -> (as a request sends it, as an answer says it); others travel as they are.
_WIRE: dict[Any, tuple[Any, Any]] = {
    tuple[Target, ...]: (list[str], list[str]),
    tuple[int, ...]: (list[Percent], list[int]),
    int: (StrictInt, int),
    int | None: (StrictInt | None, int | None),
    Decimal | None: (Decimal | None, str | None),
}
_RECORD = {f.name: f for f in dataclasses.fields(Plan)}
_TYPES = typing.get_type_hints(Plan)
if unknown := set(_RECORD) - {"name", "created_at", *LIMIT_FIELDS, *_SETTINGS}:
    raise RuntimeError(f"api/routes/plans.py: say how Plan's {sorted(unknown)} travel")


def _types(name: str) -> tuple[Any, Any]:
    """A setting's type as a request sends it and as an answer says it."""
    hint = _TYPES[name]
    return _WIRE.get(hint, (hint, hint))


def _setting(name: str, *, patch: bool) -> tuple[Any, Any]:
    """A setting's field in PlanIn (the Plan's default) or in PlanPatch (absent: unchanged)."""
    sent, _ = _types(name)
    bounds = _SETTINGS[name]
    if patch:
        checks = {k: v for k, v in bounds.items() if k != "description"}
        return sent | None, Field(None, **checks)
    default = _RECORD[name].default
    if default == ():
        return sent, Field(default_factory=list, **bounds)
    return sent, Field(list(default) if isinstance(default, tuple) else default, **bounds)


def _limits(optional: bool) -> dict[str, Any]:
    """A field per plan limit (plans/model.py LIMITS): absent or null means no limit."""
    if optional:
        return {f.name: (StrictInt | None,
                         Field(None, ge=1, le=service.MAX_LIMIT, description=f.label))
                for f in LIMITS}  # fmt: skip
    return {f.name: (int | None, Field(description=f.label)) for f in LIMITS}


class _NewPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)


_SENT: dict[str, Any] = {n: _setting(n, patch=False) for n in _SETTINGS}
_CHANGED: dict[str, Any] = {n: _setting(n, patch=True) for n in _SETTINGS}
_ANSWERED: dict[str, Any] = {
    "name": (str, ...),
    **{n: (_types(n)[1], ...) for n in _SETTINGS},
    "created_at": (datetime, ...),
}
PlanIn = create_model("PlanIn", __base__=_NewPlan, **_SENT, **_limits(optional=True))
PlanPatch = create_model(
    "PlanPatch", __config__=ConfigDict(extra="forbid"), **_CHANGED, **_limits(optional=True)
)
PlanOut = create_model("PlanOut", **_ANSWERED, **_limits(optional=False))


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=128)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    pins: dict[str, VersionNumber] = Field(default_factory=dict, description='{"model": version}')


class SubscriptionOut(BaseModel):
    id: int
    consumer: str
    plan: str
    starts_at: datetime
    ends_at: datetime | None
    pins: dict[str, int]


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Instant | None = Field(description="When the version leaves service; null cancels")


@router.get("/plans", response_model=list[PlanOut], responses=PROBLEMS)
@access("admin")
async def list_plans(request: Request) -> Response:
    return await call(request, lambda s, p: [_plan(x) for x in s.plans.plans()])


@router.post("/plans", status_code=201, response_model=PlanOut, responses=PROBLEMS)
@access("admin")
async def create_plan(request: Request, body: PlanIn) -> Response:
    """Create a plan: rate limits, quotas in requests and rows, prices."""

    def run(s: Services, p: Principal) -> BaseModel:
        settings = body.model_dump(exclude={"name"})
        plan = service.make_plan(body.name, s.clock(), **settings)
        return _plan(s.plans.create_plan(plan, by=p))

    return await call(request, run, status=201)


@router.get("/plans/{name}", response_model=PlanOut, responses=PROBLEMS)
@access("authenticated")
async def get_plan(request: Request, name: str) -> Response:
    """A plan (admins; or a consumer subscribed to it)."""

    def run(s: Services, p: Principal) -> BaseModel:
        if not p.is_admin:
            found = s.gate.open(p) if p.kind == "consumer" else None
            if found is None or found.plan is None or found.plan.name != name:
                raise PermissionDenied(
                    "only admins see plans other than their own", code="admin_only"
                )
        return _plan(s.plans.plan(name))

    return await call(request, run)


@router.patch("/plans/{name}", response_model=PlanOut, responses=PROBLEMS)
@access("admin")
async def update_plan(request: Request, name: str, body: PlanPatch) -> Response:
    """Change a plan; subscribers are on the new terms within a second."""
    changes = body.model_dump(exclude_unset=True)
    return await call(request, lambda s, p: _plan(s.plans.update_plan(name, by=p, **changes)))


@router.delete("/plans/{name}", status_code=204, responses=PROBLEMS)
@access("admin")
async def delete_plan(request: Request, name: str) -> Response:
    """Delete a plan nobody subscribes to."""
    await call(request, lambda s, p: s.plans.delete_plan(name, by=p))
    return Response(status_code=204)


@router.post(
    "/consumers/{name}/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    responses=PROBLEMS,
)
@access("admin")
async def subscribe(request: Request, name: str, body: SubscribeIn) -> Response:
    """Put a consumer on a plan (from now, unless `starts_at`); its current plan ends there."""

    def run(s: Services, p: Principal) -> SubscriptionOut:
        made = s.plans.subscribe(
            by=p,
            consumer=name,
            plan=body.plan,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            pins=body.pins,
        )
        return _subscription(made)

    return await call(request, run, status=201)


@router.get(
    "/consumers/{name}/subscriptions", response_model=list[SubscriptionOut], responses=PROBLEMS
)
@access("authenticated")
async def list_subscriptions(request: Request, name: str) -> Response:
    """A consumer's subscriptions, past and present (admins; or the consumer itself)."""

    def run(s: Services, p: Principal) -> list[SubscriptionOut]:
        _self_or_admin(p, name, "see another consumer's subscriptions")
        return [_subscription(x) for x in s.plans.subscriptions_of(name)]

    return await call(request, run)


class SpendCapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap: str | None = Field(
        description='The monthly cap in the plan\'s currency, whole cents ("25.00"); null: none'
    )


class SpendOut(BaseModel):
    consumer: str
    month: str
    plan: str | None
    spent: str = Field(description="This month so far at the plan's prices (to the nano)")
    cap: str | None
    projected: str = Field(description="By the month's end at this month's pace")


@router.get("/consumers/{name}/spend", response_model=SpendOut, responses=PROBLEMS)
@access("authenticated")
async def get_spend(request: Request, name: str) -> Response:
    """A consumer's spend this month, its cap and the month-end projection (admins; or the
    consumer itself)."""

    def run(s: Services, p: Principal) -> dict[str, Any]:
        _self_or_admin(p, name, "see another consumer's spend")
        return s.plans.spend_of(name).to_json()

    return await call(request, run)


@router.put(
    "/consumers/{name}/spend-cap",
    response_model=SpendOut,
    responses=PROBLEMS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": SpendCapIn.model_json_schema()}}}},
)  # fmt: skip
@access("authenticated")
async def set_spend_cap(request: Request, name: str) -> Response:
    """Set or remove a consumer's monthly spend cap (admins; or the consumer itself). Past it
    calls are refused with 402 until it is raised or the month ends."""
    services = _services(request)
    principal, data = await _own_setting(request, name, "cap", '"25.00"', "spend cap")
    if data["cap"] is not None and not isinstance(data["cap"], str):
        raise InvalidInput(
            f'cap is an amount as a string, such as "25.00", or null; got {data["cap"]!r} '
            "(a JSON number would pass through binary floating point on its way)"
        )

    def run() -> dict[str, Any]:
        services.plans.set_spend_cap(by=principal, consumer=name, cap=data["cap"])
        services.gate.forget_subscriptions()
        return services.plans.spend_of(name).to_json()

    body = await run_in_threadpool(run)
    return Response(orjson.dumps(body), media_type="application/json")


class WebhookOut(BaseModel):
    url: str | None
    secret: str | None = Field(
        description="Signs each delivery (X-Mlgate-Signature: HMAC-SHA256 of "
        "'<X-Mlgate-Timestamp>.<body>'); shown only now"
    )


@router.put(
    "/consumers/{name}/webhook",
    response_model=WebhookOut,
    responses=PROBLEMS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["url"],
                   "properties": {"url": {"type": ["string", "null"]}}}}}}},
)  # fmt: skip
@access("authenticated")
async def set_webhook(request: Request, name: str) -> Response:
    """Where the consumer is told (a signed POST) when its use of a quota or of its spend cap
    reaches one of its plan's thresholds (admins; or the consumer itself)."""
    services = _services(request)
    principal, data = await _own_setting(request, name, "url", '"https://..."', "webhook")
    url = data["url"]
    if url is not None and not isinstance(url, str):
        raise InvalidInput("url is a string or null")
    host = request.url.hostname or ""
    own = {f"{host}:{request.url.port or (443 if request.url.scheme == 'https' else 80)}"}

    def run() -> dict[str, Any]:
        secret = services.plans.set_consumer_webhook(by=principal, consumer=name, url=url, own=own)
        return {"url": url, "secret": secret}

    body = await run_in_threadpool(run)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/usage", response_model=list[UsageRow], responses=PROBLEMS)  # the record itself
@access("authenticated")
async def usage(
    request: Request,
    month: str = MONTH,
    consumer: str | None = Query(None, max_length=128),
    model: str | None = Query(None, max_length=128),
    by: Literal["hour", "day", "month"] = "day",
) -> Response:
    """Metered calls per period, account, key, model, version and status (admins: anyone's;
    consumers: their own). What this server metered is written first, so its own answers are
    all counted; other replicas' reach the ledger within a second."""

    def run(s: Services, p: Principal) -> list[UsageRow]:
        s.flusher.flush()  # read your own writes: the flusher would write them within a second
        return s.plans.usage(by=p, month=month, consumer=consumer, model=model, group=by)

    return await call(request, run)


@router.get(
    "/usage/export",
    responses={**PROBLEMS, 200: {"content": {"text/csv": {}}, "description": "The bill, as CSV"}},
)
@access("authenticated")
async def export_usage(
    request: Request, consumer: str = Query(min_length=1, max_length=128), month: str = MONTH
) -> Response:
    """One consumer's month for a billing system: rows, overage rows and amounts per version."""
    services = _services(request)

    def run() -> str:
        principal = authorize(services, request)
        return services.plans.bill_csv(by=principal, consumer=consumer, month=month)

    text = await run_in_threadpool(run)
    disposition = f'attachment; filename="usage-{consumer}-{month}.csv"'
    return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})


@router.post("/models/{name}/versions/{version}/retire", responses=PROBLEMS)
@access("archive")
async def retire(request: Request, name: str, version: VersionNumber, body: RetireIn) -> Response:
    """Schedule (or cancel) a version's end of service: consumers pinned to it get Deprecation
    and Sunset headers from now on."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        services.registry.retire(name, version, body.at)
        return {
            "model": name,
            "version": version,
            "retire_at": body.at.isoformat() if body.at else None,
        }

    return Response(orjson.dumps(await run_in_threadpool(run)), media_type="application/json")


async def _own_setting(
    request: Request, consumer: str, field: str, example: str, what: str
) -> tuple[Principal, dict[str, Any]]:
    """A consumer's own setting ({field: value}): the caller (an admin, or the consumer) is
    authorized before the body is read, so a caller without standing hears 403 whatever."""
    services = _services(request)

    def who() -> Principal:
        principal = authorize(services, request)
        _self_or_admin(principal, consumer, f"change another consumer's {what}")
        return principal

    principal = await run_in_threadpool(who)
    data = decode_json(await read_body(request, 4096), request.headers.get("content-type"))
    if not isinstance(data, dict) or set(data) != {field}:
        raise InvalidInput(f'send {{"{field}": {example}}} (or {{"{field}": null}} to remove it)')
    return principal, data


def _self_or_admin(p: Principal, consumer: str, what: str) -> None:
    """`what`: what only an admin may do here, e.g. "change another consumer's webhook"."""
    if not p.is_admin and (p.kind, p.name) != ("consumer", consumer):
        raise PermissionDenied(f"only admins {what}", code="admin_only")


def _plan(plan: Plan) -> BaseModel:
    return PlanOut(**{name: _wire(getattr(plan, name)) for name in PlanOut.model_fields})


def _wire(value: Any) -> Any:
    """A Plan attribute as PlanOut says it: prices as exact strings, models as names."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [str(v) if isinstance(v, Target) else v for v in value]
    return value


def _subscription(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=s.id,
        consumer=s.consumer,
        plan=s.plan,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        pins=s.pins,
    )


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
