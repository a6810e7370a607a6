"""The pages' plumbing: templates, the session cookie, CSRF tokens, and errors shown as pages.

Every page handler is a plain function wrapped by `@page(area)`, which turns the use cases'
errors into an HTML page with the same status the API would answer (a missing login on a GET
becomes a redirect to the login form). Handlers call `member(...)` first: it reads the session
cookie, checks that the caller belongs to this area (team users in /ui, consumers in /portal)
and asks the one authorization decision point the API uses.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mlgate import __version__, errors
from mlgate.access import keys
from mlgate.access.model import Principal, Target
from mlgate.access.policy import Action, GlobalAction
from mlgate.api.authorize import authorize
from mlgate.api.problems import error_headers
from mlgate.bootstrap import Services
from mlgate.outcomes import outcome_of, status_of
from mlgate.plans.model import money
from mlgate.serving import asking
from mlgate.serving.asking import Asked
from mlgate.training import undefined as undefined_statistics

log = logging.getLogger("mlgate.web")

Area = Literal["ui", "portal"]
H = TypeVar("H", bound=Callable[..., Any])

CSRF_FIELD = "csrf"
LOGIN_CSRF_COOKIE = "mlgate_login_csrf"
# Scripts and styles only from our own static folder; images from it or data: URIs (the
# reports' plots); forms post only to ourselves; no page may be framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# What a redirect after a form may tell the next page (codes, so no text comes from a URL).
NOTICES = {
    "promoted": "The alias now points at the new version.",
    "retention_set": "The log retention is set; the server deletes what is older.",
    "retention_set_short": "The log retention is set; the server deletes what is older. It is "
    "shorter than six months: the EU AI Act asks a high-risk AI system's logs to be kept at "
    "least six months (Articles 19(1) and 26(6)).",
    "promoted_better": "The alias now points at the new version: it was significantly better "
    "than the version it had to beat (the alias's target, or what the bare model name served).",
    "promoted_unopposed": "The alias now points at the new version: there was nothing to beat "
    "(the alias pointed nowhere and no other version is in service).",
    "imported": "The model is imported as a new version.",
    "spend_cap_set": "Your monthly spend cap is set; calls past it are refused (402).",
    "rolled_back": "The alias is back on its previous version.",
    "rollout_started": "The rollout is running: servers follow it within a second.",
    "rollout_stopped": "The rollout is stopped: every caller is back on the incumbent.",
    "source_added": "The source is saved; its credentials are stored sealed.",
    "source_ok": "Connected: the source answers.",
    "source_removed": "The source is removed.",
    "consumer_created": "The consumer is created.",
    "subscribed": "The subscription is in force.",
    "granted": "The grant is added.",
    "password_set": "The password is set; the account's earlier sessions ended.",
    "billing_id_set": "The billing id is saved; the next usage export names it.",
    "disabled": "Disabled: its keys and sessions stopped working.",
    "enabled": "Enabled again.",
    "plan_saved": "The plan is saved.",
    "key_revoked": "The key is revoked; calls with it are refused from now on.",
    "cancel_requested": "Cancelling: the job stops at its next step.",
    "logged_out": "You are logged out.",
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("mlgate.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Every number a page shows that may be undefined goes through the reports' one formatter.
_templates.globals["stated"] = undefined_statistics.stated_or_blank


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def secure(request: Request) -> bool:
    """Whether cookies carry Secure: by the setting, else when the request came over HTTPS."""
    setting = services_of(request).settings.secure_cookies
    return request.url.scheme == "https" if setting is None else setting


def session_cookie(request: Request) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, Path=/, no Domain.
    return "__Host-mlgate_session" if secure(request) else "mlgate_session"


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        session_cookie(request),
        token,
        max_age=max_age,
        path="/",
        secure=secure(request),
        httponly=True,
        samesite="lax",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        session_cookie(request), path="/", secure=secure(request), httponly=True, samesite="lax"
    )


def member(
    request: Request,
    area: Area,
    action: Action | GlobalAction | Literal["authenticated"] = "authenticated",
    target: Target | str | None = None,
    *,
    csrf: str | None = None,
) -> Principal:
    """The logged-in caller of this area, if it may do `action` on `target`. The cookie must
    hold a login session (an API key pasted into a cookie is ignored). A form (any POST) must
    hand in its `csrf` field: it is checked here, before anything else is decided."""
    services = services_of(request)
    token = request.cookies.get(session_cookie(request), "")
    request.state.credential = f"Bearer {token}" if token.startswith(keys.SESSION_PREFIX) else ""
    principal = authorize(services, request, action="authenticated")
    wanted = "user" if area == "ui" else "consumer"
    if principal.kind != wanted:
        where = "the portal at /portal" if wanted == "user" else "the dashboard at /ui"
        raise errors.PermissionDenied(
            f"this page is for {'the team' if area == 'ui' else 'consumers'}; "
            f"{principal.actor} uses {where}",
            code="wrong_area",
        )
    if request.method not in ("GET", "HEAD"):
        if csrf is None:
            raise AssertionError(f"{request.url.path}: a form's handler must pass its csrf field")
        check_csrf(request, principal, csrf)
    if action != "authenticated":
        authorize(services, request, target, action=action)
    return principal


def member_asking(
    request: Request, area: Area, action: Action, ref: str, *, csrf: str | None = None
) -> tuple[Principal, Asked]:
    """The logged-in caller of this area and the model as the page names it (`churn`,
    `churn@production`, `churn@3`), if it may do `action` on that: the same decision as the
    API's (serving/asking.py), so a grant opens the same calls on a page as over HTTP."""
    principal = member(request, area, csrf=csrf)
    asked = asking.authorize_asked(principal, action, services_of(request).aliases.target, ref)
    return principal, asked


def csrf_token(services: Services, principal: Principal | None) -> str:
    """The token every form of this session carries: bound to the session, so a token seen by
    one session is useless to another, and nothing to store."""
    prefix = principal.session_prefix if principal else None
    if not prefix:
        return ""
    mac = hmac.new(services.server_secret, b"mlgate-csrf\0" + prefix.encode(), hashlib.sha256)
    return mac.hexdigest()


def check_csrf(request: Request, principal: Principal, submitted: str) -> None:
    """Refuse a form that did not come from one of our pages in this session."""
    check_origin(request)
    expected = csrf_token(services_of(request), principal)
    if not expected or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise errors.PermissionDenied(
            "the form's security token is missing or stale; reload the page and submit again",
            code="csrf",
        )


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise errors.PermissionDenied("the form was sent from another site", code="csrf")


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    services = services_of(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    body = _templates.get_template(template).render(
        me=principal,
        csrf=csrf_token(services, principal),
        csrf_field=CSRF_FIELD,
        area="portal" if request.url.path.startswith("/portal") else "ui",
        path=request.url.path,
        notice=notice,
        version=__version__,
        # Every price, spend and cap a page shows goes through this one formatter.
        money=functools.partial(_money, currency=services.settings.currency),
        currency=services.settings.currency,
        **context,
    )
    response = HTMLResponse(body, status, headers=dict(headers or {}))
    response.headers["content-security-policy"] = CSP
    response.headers["cache-control"] = "no-store"
    # Our forms must carry their Origin (checked on every post); other sites learn nothing.
    response.headers["referrer-policy"] = "same-origin"
    return response


def _money(amount: Decimal | int | str | None, *, currency: str, price: bool = False) -> str:
    return "–" if amount is None else money(amount, currency, price=price)


def see_other(url: str, notice: str | None = None) -> RedirectResponse:
    """The answer to a form that worked (post, redirect, get)."""
    if notice is not None:
        assert notice in NOTICES, notice
        url += ("&" if "?" in url else "?") + f"notice={notice}"
    return RedirectResponse(url, 303)


def local_path(candidate: str | None, default: str) -> str:
    """A redirect target from a form or query: only a path on this server."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//"):
        return candidate
    return default


def page(area: Area) -> Callable[[H], H]:
    """Errors of a page handler (plain, or async for forms read whole) become pages: 401 on a
    GET sends the browser to log in."""

    def wrap(handler: H) -> H:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def awaited(*args: Any, **kwargs: Any) -> Response:
                try:
                    response: Response = await handler(*args, **kwargs)
                    return response
                except Exception as exc:
                    return _as_page(kwargs["request"], area, exc)

            return awaited  # type: ignore[return-value]

        @functools.wraps(handler)
        def wrapped(*args: Any, **kwargs: Any) -> Response:
            try:
                response: Response = handler(*args, **kwargs)
                return response
            except Exception as exc:
                return _as_page(kwargs["request"], area, exc)

        return wrapped  # type: ignore[return-value]

    return wrap


def _as_page(request: Request, area: Area, exc: Exception) -> Response:
    if isinstance(exc, errors.Unauthenticated):
        if request.method == "GET":
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"/{area}/login?next={target}", 303)
        return error_page(request, 401, f"{exc} Log in again.", area=area)
    if isinstance(exc, errors.MlgateError):
        return error_page(
            request, status_of(outcome_of(exc)), str(exc), area=area, headers=error_headers(exc)
        )
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_page(
        request, 500, "Something went wrong on our side; the server log says what.", area=area
    )


@dataclass(frozen=True)
class Form:
    """A form read whole (for forms with many optional or repeated fields)."""

    fields: dict[str, list[str]]

    def get(self, name: str) -> str:
        return (self.fields.get(name) or [""])[0]

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])


async def read_form(request: Request) -> Form:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
    return Form(fields)


async def in_thread(run: Callable[[], Response]) -> Response:
    """Run a page's database work off the event loop."""
    return await run_in_threadpool(run)


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    area: Area,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal) or principal.kind != (
        "user" if area == "ui" else "consumer"
    ):
        principal = None
    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    return render(
        request,
        "error.html",
        principal=principal,
        status=status,
        headers=headers,
        status_code=status,
        message=message,
        login=f"/{area}/login",
    )
