"""SCIM 2.0 (RFC 7644) at /scim/v2: the identity provider provisions users and groups.

The provider authenticates with the bearer token set as MLGATE_SCIM_TOKEN (compared in
constant time); no mlgate key or session reaches these routes, and they answer 404 while the
setting is unset. Answers are SCIM's own (application/scim+json, SCIM Error bodies), not the
API's problem details. The rules are in scim/service.py; every change is audited there.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Request
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    NotFoundException,
    Patch,
    ResourceType,
    SCIMException,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_models import Schema as ScimSchema
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access import audit
from mlgate.api.authorize import access
from mlgate.api.body import read_body
from mlgate.bootstrap import Services
from mlgate.errors import MlgateError
from mlgate.outcomes import outcome_of, status_of
from mlgate.scim.model import Kind
from mlgate.scim.service import (
    MAX_COUNT,
    MODELS,
    Provisioning,
    error_body,
)

MEDIA = "application/scim+json"


class ScimResponse(Response):
    media_type = MEDIA


def _scim_error(what: str) -> dict[str, Any]:
    return {"description": what, "content": {MEDIA: {"schema": {"type": "object"}}}}


# What every SCIM route may answer besides its success, as SCIM's Error resource (RFC 7644 3.12).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _scim_error("invalidFilter, invalidSyntax, invalidValue, …: the detail says which"),
    401: _scim_error("no SCIM token, or a wrong one"),
    404: _scim_error("no such resource or resource type; or SCIM is off here"),
    405: _scim_error("that method is not offered on this resource"),
    409: _scim_error("uniqueness: the userName or displayName is taken"),
    413: _scim_error("the body is larger than a resource can be"),
    415: _scim_error("send application/scim+json or application/json"),
    501: _scim_error("not offered here (a search across every resource type, bulk)"),
}
router = APIRouter(
    prefix="/scim/v2", tags=["scim"], default_response_class=ScimResponse, responses=ERRORS
)
MAX_BODY = 1 << 20  # a resource or a patch: a megabyte is thousands of group members
KINDS: dict[str, Kind] = {"Users": "User", "Groups": "Group"}


class Unauthorized(SCIMException):
    status = 401


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA)


def _error(exc: SCIMException) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return _answer(error_body(exc), int(exc.status), headers)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


async def _guard(request: Request) -> Services:
    """The services, if the caller holds the SCIM token; SCIMException otherwise."""
    services: Services = request.app.state.services
    token = services.settings.scim_token
    if token is None:
        raise NotFoundException(detail="SCIM is off here: set MLGATE_SCIM_TOKEN to turn it on")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.reveal().encode()
    ):
        address = (request.client.host if request.client else "unknown")[:64]
        await run_in_threadpool(
            audit.record, services.uow(), at=services.clock(), actor="anonymous",
            action="scim.authenticate", target=request.url.path[:200], address=address,
            result="denied", detail={"method": request.method},
        )  # fmt: skip
        raise Unauthorized(detail="send the SCIM token as 'Authorization: Bearer <token>'")
    request.state.actor = "scim"
    return services


def _provisioning(services: Services) -> Provisioning:
    admins = frozenset(services.settings.oidc_admin_groups)
    return Provisioning(services.uow, services.clock, admins)


class MethodNotAllowed(SCIMException):
    status = 405


DISCOVERY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


def _kind(resource: str, method: str = "GET") -> Kind:
    kind = KINDS.get(resource)
    if resource in DISCOVERY and method != "GET":  # read-only: GET is their one method
        raise MethodNotAllowed(detail=f"/scim/v2/{resource} answers GET only")
    if kind is None:
        raise NotFoundException(detail=f"no resource type at /scim/v2/{resource[:40]}")
    return kind


def _bounded(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.strip().lstrip("-").isdecimal() or len(raw) > 12:
        raise BadRequestValue(detail=f"{name} is a whole number of at most 12 digits, not "
                              f"{raw[:20]!r}{'...' if len(raw) > 20 else ''}")  # fmt: skip
    return min(max(int(raw), low), high)


class BadRequestValue(SCIMException):
    status = 400
    scim_type = "invalidValue"


async def _json(request: Request) -> Any:
    raw = await read_body(request, MAX_BODY)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntax(detail=f"the body is not JSON (line {exc.lineno})") from None


class InvalidSyntax(SCIMException):
    status = 400
    scim_type = "invalidSyntax"


async def _run(request: Request, work: Any) -> Response:
    """`work(services)` for a caller with the SCIM token; a failure becomes SCIM's Error."""
    try:
        services = await _guard(request)
        answer: Response = await work(services)
    except SCIMException as exc:
        return _error(exc)
    except MlgateError as exc:  # a body too large, two writes at once: SCIM's Error all the same
        return _error(_Failed(status=status_of(outcome_of(exc)), detail=str(exc)))
    return answer


class _Failed(SCIMException):
    def __init__(self, *, status: int, detail: str) -> None:
        super().__init__(detail=detail)
        self.status = status


def _address(request: Request) -> str:
    return (request.client.host if request.client else "unknown")[:64]


@router.get(
    "/ServiceProviderConfig", summary="SCIM: what this service provider supports (the SCIM token)"
)
@access("public")
async def service_provider_config(request: Request) -> Response:
    async def work(services: Services) -> Response:
        config = ServiceProviderConfig(
            documentation_uri=None,
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
            filter=Filter(supported=True, max_results=MAX_COUNT),
            change_password=ChangePassword(supported=False),
            sort=Sort(supported=False),
            etag=ETag(supported=False),
            authentication_schemes=[
                AuthenticationScheme(
                    type="oauthbearertoken",
                    name="Bearer token",
                    description="The token set as MLGATE_SCIM_TOKEN",
                    primary=True,
                )  # fmt: skip
            ],
        )
        body = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "ServiceProviderConfig",
                        "location": f"{_base(request)}/ServiceProviderConfig"}  # fmt: skip
        return _answer(body)

    return await _run(request, work)


def _resource_types(base: str) -> list[dict[str, Any]]:
    out = []
    for kind, model in MODELS.items():
        rt = ResourceType.from_resource(model)
        body: dict[str, Any] = rt.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{kind}"}
        out.append(body)
    return out


def _schemas(base: str) -> list[dict[str, Any]]:
    out = []
    for model in (User, Group, EnterpriseUser):
        schema: ScimSchema = model.to_schema()
        body: dict[str, Any] = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema.id}"}
        out.append(body)
    return out


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(items), "startIndex": 1, "itemsPerPage": len(items),
        "Resources": items,
    }  # fmt: skip


@router.get("/ResourceTypes", summary="SCIM: the resource types, User and Group")
@access("public")
async def resource_types(request: Request) -> Response:
    async def work(services: Services) -> Response:
        return _answer(_listed(_resource_types(_base(request))))

    return await _run(request, work)


@router.get("/ResourceTypes/{name}", summary="SCIM: one resource type")
@access("public")
async def resource_type(request: Request, name: str) -> Response:
    async def work(services: Services) -> Response:
        for body in _resource_types(_base(request)):
            if body.get("id") == name or body.get("name") == name:
                return _answer(body)
        raise NotFoundException(detail=f"no resource type {name[:40]!r}")

    return await _run(request, work)


@router.get("/Schemas", summary="SCIM: the User, enterprise User and Group schemas")
@access("public")
async def schemas(request: Request) -> Response:
    async def work(services: Services) -> Response:
        return _answer(_listed(_schemas(_base(request))))

    return await _run(request, work)


@router.get("/Schemas/{name}", summary="SCIM: one schema, by its URN")
@access("public")
async def schema(request: Request, name: str) -> Response:
    async def work(services: Services) -> Response:
        for body in _schemas(_base(request)):
            if body.get("id") == name:
                return _answer(body)
        raise NotFoundException(detail=f"no schema {name[:80]!r}")

    return await _run(request, work)


@router.get(
    "/{resource}", summary="SCIM: list Users or Groups (filter, startIndex, count, attributes)"
)
@access("public")
async def list_resources(request: Request, resource: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource)
        params = dict(request.query_params)
        start = _bounded(params, "startIndex", 1, 1, 1_000_000_000)
        count = _bounded(params, "count", 100, 0, MAX_COUNT)
        body = await run_in_threadpool(
            _provisioning(services).list, kind, _base(request), params, start=start, count=count
        )
        return _answer(body)

    return await _run(request, work)


@router.post("/{resource}/.search", summary="SCIM: search Users or Groups with a SearchRequest")
@access("public", audit=False)
async def search_resources(request: Request, resource: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource, request.method)
        asked = await _json(request)
        if not isinstance(asked, dict):
            raise InvalidSyntax(detail="send a SearchRequest object")
        params = {
            k: (",".join(v) if isinstance(v, list) else str(v))
            for k, v in asked.items()
            if k in ("filter", "attributes", "excludedAttributes")
        }
        start = _bounded({"s": str(asked.get("startIndex", 1))}, "s", 1, 1, 1_000_000_000)
        count = _bounded({"c": str(asked.get("count", 100))}, "c", 100, 0, MAX_COUNT)
        body = await run_in_threadpool(
            _provisioning(services).list, kind, _base(request), params, start=start, count=count
        )
        return _answer(body)

    return await _run(request, work)


@router.post("/.search", summary="SCIM: search every resource type at once (not offered: 501)")
@access("public", audit=False)
async def search_all(request: Request) -> Response:
    async def work(services: Services) -> Response:
        raise _NotImplemented(detail="search one resource type: POST /scim/v2/Users/.search")

    return await _run(request, work)


class _NotImplemented(SCIMException):
    status = 501


@router.post(
    "/{resource}",
    status_code=201,
    summary="SCIM: create a User (an mlgate user) or a Group",
)
@access("public", audit=False)
async def create_resource(request: Request, resource: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource, request.method)
        payload = await _json(request)
        body = await run_in_threadpool(
            _provisioning(services).create, kind, payload, _base(request), _address(request)
        )
        services.forget_cached()
        return _answer(body, 201, {"Location": body["meta"]["location"]})

    return await _run(request, work)


@router.get("/{resource}/{record_id}", summary="SCIM: one User or Group")
@access("public")
async def get_resource(request: Request, resource: str, record_id: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource)
        body = await run_in_threadpool(
            _provisioning(services).get, kind, record_id, _base(request), dict(request.query_params)
        )
        return _answer(body)

    return await _run(request, work)


@router.put(
    "/{resource}/{record_id}", summary="SCIM: replace a User or Group (active: false disables)"
)
@access("public", audit=False)
async def replace_resource(request: Request, resource: str, record_id: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource, request.method)
        payload = await _json(request)
        body = await run_in_threadpool(
            _provisioning(services).replace, kind, record_id, payload, _base(request),
            _address(request),
        )  # fmt: skip
        services.forget_cached()
        return _answer(body)

    return await _run(request, work)


@router.patch("/{resource}/{record_id}", summary="SCIM: patch a User or Group (active, members)")
@access("public", audit=False)
async def patch_resource(request: Request, resource: str, record_id: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource, request.method)
        payload = await _json(request)
        body = await run_in_threadpool(
            _provisioning(services).patch, kind, record_id, payload, _base(request),
            _address(request),
        )  # fmt: skip
        services.forget_cached()
        return _answer(body)

    return await _run(request, work)


@router.delete(
    "/{resource}/{record_id}",
    status_code=204,
    summary="SCIM: delete a User (disabled, keys revoked) or Group",
)
@access("public", audit=False)
async def delete_resource(request: Request, resource: str, record_id: str) -> Response:
    async def work(services: Services) -> Response:
        kind = _kind(resource, request.method)
        await run_in_threadpool(_provisioning(services).delete, kind, record_id, _address(request))
        services.forget_cached()
        return Response(status_code=204)

    return await _run(request, work)
