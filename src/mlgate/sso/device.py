"""The OAuth 2.0 Device Authorization Grant (RFC 8628) at the provider, run by the server on
the CLI's behalf (the adapter of sso/, over HTTP).

The server, not the CLI, talks to the provider: mlgate's client is a confidential one, and its
secret stays on the server. The CLI (or the Python client) asks the server to start a sign-in,
shows the user the code and the address, and asks the server again every `interval` seconds;
the server hands the provider's device code back each time, so no replica keeps any state and
any replica can answer. A device code is worth nothing without the client secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from mlgate import errors

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT = 10.0
MAX_INTERVAL = 60  # seconds: a provider asking for more is capped (the CLI waits the longest)


@dataclass(frozen=True)
class Started:
    """What the user is shown, and what the CLI hands back while it waits (RFC 8628 3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Pending:
    """Not signed in yet: ask again in `interval` seconds (`slow_down`: the provider asked
    for longer waits)."""

    status: str  # authorization_pending | slow_down
    interval: int


# the provider's refusals (RFC 8628 3.5) as what the user reads
REFUSED = {
    "expired_token": "the code expired before it was approved; run the sign-in again",
    "access_denied": "the sign-in was denied at the identity provider",
}


class DeviceGrant:
    """mlgate's client at the provider: its id, secret and scopes, and the discovery document
    that names the provider's endpoints."""

    def __init__(
        self,
        document: Any,  # () -> the provider's discovery document
        *,
        client_id: str,
        client_secret: str | None,
        scope: str,
        client: httpx.Client | None = None,
    ) -> None:
        self._document = document
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self._client = client or httpx.Client(timeout=TIMEOUT)

    def endpoint(self) -> str:
        return self._endpoint(
            "device_authorization_endpoint",
            errors.NotFound(
                "the identity provider does not offer the device flow (its discovery document "
                "has no device_authorization_endpoint); sign in on the dashboard instead"
            ),
        )

    def _endpoint(self, name: str, missing: errors.MlgateError) -> str:
        """The provider's endpoint `name` from its discovery document; `missing` without it."""
        try:
            found = self._document().get(name)
        except httpx.HTTPError as exc:
            raise errors.NotReady(
                f"the identity provider cannot be reached ({type(exc).__name__}); try again later"
            ) from exc
        if not isinstance(found, str) or not found:
            raise missing
        return found

    def start(self) -> Started:
        body = self._post(self.endpoint(), {"scope": self.scope})
        if "error" in body:
            raise errors.Unauthenticated(
                f"the identity provider refused to start a device sign-in "
                f"({str(body['error'])[:64]}): is the device flow enabled for mlgate's client?",
                code="sso_refused",
            )
        try:
            return Started(
                device_code=str(body["device_code"]),
                user_code=str(body["user_code"]),
                verification_uri=str(body.get("verification_uri") or body["verification_url"]),
                verification_uri_complete=(
                    str(body["verification_uri_complete"])
                    if body.get("verification_uri_complete")
                    else None
                ),
                expires_in=int(body.get("expires_in") or 600),
                interval=min(int(body.get("interval") or 5), MAX_INTERVAL),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.NotReady(
                "the identity provider's device authorization answer lacks "
                f"{exc.args[0] if isinstance(exc, KeyError) else 'a valid field'}"
            ) from exc

    def poll(self, device_code: str, interval: int) -> Pending | dict[str, Any]:
        """The provider's tokens once the user approved; Pending while they have not; the
        provider's refusals as Unauthenticated with its error as the code."""
        token_endpoint = self._token_endpoint()
        body = self._post(token_endpoint, {"grant_type": GRANT_TYPE, "device_code": device_code})
        error = body.get("error")
        if error == "authorization_pending":
            return Pending("authorization_pending", interval)
        if error == "slow_down":  # RFC 8628 3.5: the interval grows by 5 seconds
            return Pending("slow_down", min(interval + 5, MAX_INTERVAL))
        if error in REFUSED:
            raise errors.Unauthenticated(REFUSED[str(error)], code=str(error))
        if error is not None:
            raise errors.Unauthenticated(
                f"the identity provider did not sign you in ({str(error)[:64]})",
                code="sso_refused",
            )
        return body

    def _token_endpoint(self) -> str:
        return self._endpoint(
            "token_endpoint",
            errors.NotReady("the identity provider's discovery document has no token_endpoint"),
        )

    def _post(self, url: str, data: dict[str, str]) -> dict[str, Any]:
        # client_secret_basic (RFC 6749 2.3.1), the method every provider supports; a public
        # client (no secret) sends its id in the body
        secret = self._secret
        auth: dict[str, Any] = (
            {"auth": httpx.BasicAuth(_form(self.client_id), _form(secret))} if secret else {}
        )
        form = data if secret else {**data, "client_id": self.client_id}
        try:
            response = self._client.post(url, data=form, headers={"Accept": "application/json"},
                                         **auth)  # fmt: skip
        except httpx.HTTPError as exc:
            raise errors.NotReady(
                f"the identity provider cannot be reached ({type(exc).__name__}); try again later"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise errors.NotReady(
                f"the identity provider answered {response.status_code} without a JSON object"
            )
        return body


def _form(value: str | None) -> str:
    return quote_plus(value or "")
