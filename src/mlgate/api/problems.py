"""Errors as RFC 9457 problem+json responses, with the status mlgate/outcomes.py gives each."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Literal

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mlgate import errors
from mlgate.outcomes import outcome_of, status_of
from mlgate.tracing import annotate

log = logging.getLogger("mlgate.api")

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    field_errors: list[errors.FieldError] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    body.update(extra or {})
    if field_errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in field_errors]
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def error_headers(exc: errors.MlgateError) -> dict[str, str]:
    """The headers an error's answer carries, whatever the protocol's body shape."""
    headers: dict[str, str] = {}
    code = getattr(exc, "code", None)
    if isinstance(exc, errors.Unauthenticated):
        # RFC 6750: no error attribute when the request had no credentials at all.
        headers["WWW-Authenticate"] = (
            "Bearer"
            if code == "missing_credentials"
            else f'Bearer error="invalid_token", error_description="{code}"'
        )
    if isinstance(exc, errors.TooManyRequests):
        headers |= exc.headers
        headers["Retry-After"] = str(exc.retry_after)
    return headers


def traced(exc: errors.MlgateError) -> None:
    """Name the refusal or failure on the call's trace (its code, else its kind)."""
    annotate("mlgate.refusal", getattr(exc, "code", None) or type(exc).__name__)


async def mlgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.MlgateError)
    traced(exc)
    request.state.refusal = getattr(exc, "code", None) or type(exc).__name__  # for the access log
    status = status_of(outcome_of(exc))
    if status >= 500:
        log.error("%s %s -> %d: %s", request.method, request.url.path, status, exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.TooManyRequests):
        if exc.limit:
            extra["limit"] = exc.limit
        if exc.resets_at:
            extra["resets_at"] = exc.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(exc, errors.PaymentRequired):
        extra |= {"cap": exc.cap, "spent": exc.spent,
                  "resets_at": exc.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    if isinstance(exc, errors.PayloadTooLarge) and exc.max_rows is not None:
        extra["max_rows"] = exc.max_rows
    field_errors = exc.errors if isinstance(exc, errors.InvalidInput) else None
    return problem(
        status,
        str(exc),
        field_errors=field_errors,
        headers=error_headers(exc),
        code=getattr(exc, "code", None),
        extra=extra,
    )


def _browser_area(request: Request) -> Literal["ui", "portal"] | None:
    """The dashboard's or the portal's area when a browser asked for one of their pages: it
    gets the error as a page, like every other error there, instead of problem+json."""
    path = request.url.path
    if "text/html" not in request.headers.get("accept", ""):
        return None
    if path == "/ui" or path.startswith("/ui/"):
        return "ui"
    if path == "/portal" or path.startswith("/portal/"):
        return "portal"
    return None


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    area = _browser_area(request)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path[:200]}; see /docs"
        if area is not None:
            detail = f"no such page: {request.url.path[:200]}"
    headers = dict(exc.headers) if exc.headers else None
    if area is not None:
        from mlgate.web.pages import error_page

        return error_page(request, exc.status_code, detail, area=area, headers=headers)
    return problem(exc.status_code, detail, headers=headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    field_errors = [
        errors.FieldError(".".join(str(p) for p in e.get("loc", ())), str(e.get("msg", "")))
        for e in exc.errors()
    ]
    area = _browser_area(request)
    if area is not None:
        from mlgate.web.pages import error_page

        said = "; ".join(f"{f.field.split('.')[-1]}: {f.message}" for f in field_errors)
        return error_page(request, 422, f"this page cannot be shown for that address ({said})",
                          area=area)  # fmt: skip
    return problem(422, "the request does not fit this endpoint", field_errors=field_errors)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return problem(500, "mlgate failed to answer this request; the server log has the details")
