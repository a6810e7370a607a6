"""Logging in and out of the dashboard (team users) and the portal (consumers).

The login form is protected against cross-site submission by a double-submit token: a random
value in a strict cookie that the form must repeat. After login, forms carry the session-bound
token of pages.csrf_token instead.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from mlgate import errors
from mlgate.access.model import OwnerKind
from mlgate.api.authorize import access, authorize
from mlgate.api.problems import error_headers
from mlgate.bootstrap import Services
from mlgate.outcomes import outcome_of, status_of
from mlgate.web import pages, sso
from mlgate.web.pages import Area

router = APIRouter(tags=["web"], include_in_schema=False)
HOME = {"ui": "/ui/models", "portal": "/portal"}


def _form(request: Request, area: Area, *, next_: str, status: int = 200, error: str = "",
          name: str = "") -> Response:  # fmt: skip
    token = secrets.token_urlsafe(24)
    response = pages.render(
        request, "login.html", status=status, login_area=area, login_csrf=token,
        next=pages.local_path(next_, HOME[area]), error=error, name=name,
        sso_name=sso.provider_name(request) if area == "ui" else None,
        password_login=area == "portal" or pages.services_of(request).settings.password_login,
    )  # fmt: skip
    response.set_cookie(
        pages.LOGIN_CSRF_COOKIE, token, max_age=3600, path="/", secure=pages.secure(request),
        httponly=True, samesite="strict",
    )  # fmt: skip
    return response


def _login(request: Request, area: Area, name: str, password: str, csrf: str, next_: str
           ) -> Response:  # fmt: skip
    services = pages.services_of(request)
    kind: OwnerKind = "user" if area == "ui" else "consumer"
    request.state.actor = f"{kind}:{name[:128]}"
    cookie = request.cookies.get(pages.LOGIN_CSRF_COOKIE, "")
    try:
        pages.check_origin(request)
        if not cookie or not secrets.compare_digest(cookie.encode(), csrf.encode()):
            raise errors.PermissionDenied(
                "the login form is stale or came from another site; submit it again",
                code="csrf",
            )
        if area == "ui" and not services.settings.password_login:
            raise errors.PermissionDenied(
                "password login is off here (MLGATE_PASSWORD_LOGIN=false): sign in with the "
                "identity provider; `mlgate users` on the server's machine is the way back in",
                code="forbidden",
            )
        if not name or not password:
            raise errors.InvalidInput("give your name and password")
        session, token = services.access.login(name, password, kind=kind)
    except errors.MlgateError as exc:
        status = status_of(outcome_of(exc))
        response = _form(request, area, next_=next_, status=status, error=str(exc), name=name)
        for header, value in error_headers(exc).items():
            if header.lower() != "www-authenticate":
                response.headers[header] = value
        return response
    response = pages.see_other(pages.local_path(next_, HOME[area]))
    ttl = int((session.expires_at - session.created_at).total_seconds())
    pages.set_session(response, request, token, ttl)
    response.delete_cookie(pages.LOGIN_CSRF_COOKIE, path="/")
    return response


def _logout(request: Request, area: Area, csrf: str) -> Response:
    services = pages.services_of(request)
    signed_on = False
    try:
        pages.member(request, area, csrf=csrf)
        principal = authorize(services, request, action="authenticated")
        services.access.logout(principal)
        signed_on = area == "ui" and _signed_on(services, principal.name)
    except errors.Unauthenticated:
        pass  # logged out already: the cookie goes all the same
    response = pages.see_other(f"/{area}/login", "logged_out")
    if signed_on and services.sso is not None:  # RP-initiated logout: at the provider too
        back = str(request.url_for(f"{area}_login_form"))
        there = services.sso.end_session_url(back)
        if there is not None:
            response = RedirectResponse(there, status_code=303)
    pages.clear_session(response, request)
    return response


def _signed_on(services: Services, name: str) -> bool:
    with services.uow() as uow:
        user = uow.users.get(name)
    return user is not None and user.sso_subject is not None


def _mount(area: Area) -> None:
    """The login form, the login and the logout of one area (the dashboard or the portal)."""

    @router.get(f"/{area}/login", name=f"{area}_login_form")
    @access("public")
    def login_form(request: Request, next: str = "") -> Response:
        return _form(request, area, next_=next)

    @router.post(f"/{area}/login", name=f"{area}_login")
    @access("public")
    def login(
        request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form(""),
        next: str = Form(""),
    ) -> Response:  # fmt: skip
        return _login(request, area, name, password, csrf, next)

    @router.post(f"/{area}/logout", name=f"{area}_logout")
    @access("authenticated")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        return pages.page(area)(_logout)(request=request, area=area, csrf=csrf)


_mount("ui")
_mount("portal")


@router.get("/")
@access("public")
def root(request: Request) -> Response:
    """The server's address in a browser opens the dashboard."""
    return pages.see_other("/ui/models")
