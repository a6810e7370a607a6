"""Signing in to the dashboard through the OpenID Connect provider (sso/): the authorization
code flow with PKCE and a nonce, by Authlib's Starlette client; the ID token is checked again
by sso/tokens.py (our algorithms, key rotation, leeway) before a session starts.

Authlib keeps the flow's state, nonce and code verifier in `request.session`: `SsoState` gives
the two /ui/sso/ routes a signed cookie for that (path /ui/sso, ten minutes), and no other
route a session at all.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlgate import errors
from mlgate.api.authorize import access
from mlgate.outcomes import outcome_of, status_of
from mlgate.sso.service import SingleSignOn
from mlgate.web import pages

router = APIRouter(tags=["web"], include_in_schema=False)
PATH = "/ui/sso"


class SsoState:
    """A session cookie for the sign-in flow's routes only (Authlib keeps its state there)."""

    def __init__(self, app: ASGIApp, *, secret_key: str, https_only: bool) -> None:
        self.app = app
        self.with_state = SessionMiddleware(
            app, secret_key=secret_key, session_cookie="mlgate_sso", max_age=600,
            path=PATH, same_site="lax", https_only=https_only,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(PATH + "/"):
            await self.with_state(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def sso_of(request: Request) -> SingleSignOn:
    sso = pages.services_of(request).sso
    if sso is None:
        raise errors.NotFound("single sign-on is not set up here (MLGATE_OIDC_ISSUER)")
    return sso


def provider_name(request: Request) -> str | None:
    """How the login page names the provider; None without single sign-on."""
    settings = pages.services_of(request).settings
    if not settings.oidc_issuer or not settings.oidc_client_id:
        return None
    return settings.oidc_provider_name or settings.oidc_issuer.split("//")[-1].split("/")[0]


def client_of(request: Request) -> StarletteOAuth2App:
    """Authlib's client for the provider, made once per app."""
    client: StarletteOAuth2App | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        settings = pages.services_of(request).settings
        secret = settings.oidc_client_secret
        oauth = OAuth()
        client = oauth.register(
            "provider",
            client_id=settings.oidc_client_id,
            client_secret=secret.reveal() if secret else None,
            server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )
        request.app.state.oidc_client = client
    assert client is not None
    return client


@router.get(f"{PATH}/login", name="ui_sso_login")
@access("public")
@pages.page("ui")
async def sso_login(request: Request, next: str = "") -> Response:
    """Off to the provider, with a fresh state, nonce and PKCE code verifier."""
    sso_of(request)
    request.session.clear()
    request.session["next"] = pages.local_path(next, "/ui/models")
    redirect_uri = str(request.url_for("ui_sso_callback"))
    response: Response = await client_of(request).authorize_redirect(request, redirect_uri)
    return response


@router.get(f"{PATH}/callback", name="ui_sso_callback")
@access("public", audit=False)  # sso/service.py records each sign-in, refused ones too
@pages.page("ui")
async def sso_callback(request: Request) -> Response:
    sso = sso_of(request)
    address = (request.client.host if request.client else None) or "unknown"
    client = client_of(request)
    next_ = pages.local_path(str(request.session.get("next", "")), "/ui/models")
    try:
        try:
            state = request.query_params.get("state") or ""
            saved: dict[str, Any] | None = await client.framework.get_state_data(
                request.session, state
            )
            if not saved or not saved.get("nonce"):
                raise errors.Unauthenticated(
                    "the sign-in took too long or did not start here; sign in again",
                    code="sso_state",
                )
            token = await client.authorize_access_token(request)
            if "id_token" not in token:
                raise errors.Unauthenticated("the provider sent no ID token", code="no_id_token")
            claims = await run_in_threadpool(
                sso.check_id_token, str(token["id_token"]), str(saved["nonce"])
            )
        except OAuthError as exc:
            raise errors.Unauthenticated(
                f"the provider did not sign you in ({exc.error or 'error'})", code="sso_refused"
            ) from exc
        except errors.Unauthenticated as exc:
            await run_in_threadpool(sso.refuse_sign_in, exc, address=address)
            raise
        session, raw, _ = await run_in_threadpool(sso.sign_in, claims, address=address)
    except errors.MlgateError as exc:
        request.session.clear()
        return pages.render(
            request, "login.html", status=status_of(outcome_of(exc)), login_area="ui",
            login_csrf="", next=next_, error=str(exc), name="",
            sso_name=provider_name(request), password_login=_password_login(request),
        )  # fmt: skip
    request.session.clear()
    response = pages.see_other(next_)
    ttl = int((session.expires_at - session.created_at).total_seconds())
    pages.set_session(response, request, raw, ttl)
    return response


def _password_login(request: Request) -> bool:
    return pages.services_of(request).settings.password_login
