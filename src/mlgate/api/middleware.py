"""Two thin ASGI layers around every request: security headers, and the audit log.

Both are plain ASGI (no BaseHTTPMiddleware), so they add no task or body copy to the hot path.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlgate.access import audit
from mlgate.access.model import Principal, Target

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_HOT_PATH = {"predict", "generate"}  # metered in usage (issue 6), not audited call by call

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Our own pages (reports) are self-contained: inline styles, images as data: URIs, no scripts.
_CSP_API = b"default-src 'none'; frame-ancestors 'none'"
_CSP_PAGE = b"default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
_DOCS = ("/docs", "/redoc")  # FastAPI's documentation pages load their own scripts


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secured(path, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secured(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An answer's headers with the security headers it lacks (the API's or a page's policy)."""
    present = {name.lower() for name, _ in headers}
    headers += [(k, v) for k, v in _HEADERS if k not in present]
    if not path.startswith(_DOCS) and b"content-security-policy" not in present:
        is_html = any(
            k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
        )
        headers.append((b"content-security-policy", _CSP_PAGE if is_html else _CSP_API))
    if path.startswith("/v1/") and b"cache-control" not in present:
        headers.append((b"cache-control", b"no-store"))
    return headers


class AuditLog:
    """Records every state-changing call (its actor, action, target, address and result, denied
    and failed ones included) after the response is sent, in its own transaction."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if _audited(scope):  # a change: this process's caches must not outlive it
                    scope["app"].state.services.forget_cached()
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if _audited(scope):
                await run_in_threadpool(_record, scope, scope.get("route"), status)


def _audited(scope: Scope) -> bool:
    endpoint = getattr(scope.get("route"), "endpoint", None)
    rule = getattr(endpoint, "__mlgate_access__", None)
    wanted = getattr(endpoint, "__mlgate_audit__", None)
    return rule is not None and (wanted if wanted is not None else rule not in _HOT_PATH)


def _record(scope: Scope, route: Any, status: int) -> None:
    services = scope["app"].state.services
    state: dict[str, Any] = scope.get("state", {})
    principal = state.get("principal")
    detail: dict[str, Any] = {"method": scope["method"], "path": scope["path"][:300]}
    detail["status"] = status
    detail.update(state.get("audit_detail") or {})  # what the route said of its change
    if isinstance(principal, Principal):
        actor = principal.actor
        detail["credential"] = principal.credential
    else:
        actor = str(state.get("actor", "anonymous"))
    tags = getattr(route, "tags", None) or ["api"]
    audit.record(
        services.uow(),
        at=services.clock(),
        actor=actor,
        action=f"{tags[0]}.{route.name}",
        target=_target(scope.get("path_params", {})),
        address=(scope.get("client") or ("unknown",))[0],
        result="ok" if status < 400 else "denied" if status in (401, 403, 429) else "failed",
        detail=detail,
    )


def _target(params: dict[str, Any]) -> str:
    if "name" in params:
        version = params.get("version")
        number = int(version) if isinstance(version, str) and version.isdecimal() else None
        return str(Target(str(params["name"]), alias=params.get("alias"), version=number))
    return "/".join(str(v) for v in params.values())
