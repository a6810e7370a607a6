"""A small OpenID Connect provider with the OAuth 2.0 Device Authorization Grant (RFC 8628),
for the tests of `mlgate login --sso` and `Client.login_sso` (a test helper, not product
code): oidc-provider-mock has no device endpoint, so this serves the parts the device flow
uses, over a real socket on a thread: discovery, JWKS, device authorization, the token
endpoint and the page where the user approves or denies the code. Its ID tokens are RS256,
signed by its own key (or, with `rogue=True`, by a key it does not publish).

Clients authenticate with client_secret_basic, as mlgate sends them.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Grant:
    user_code: str
    scope: str
    client_id: str
    expires_at: float
    interval: int
    decision: str | None = None  # approved | denied
    sub: str | None = None
    polls: int = 0
    used: bool = False


@dataclass
class DeviceProvider:
    users: dict[str, dict[str, Any]]  # sub -> claims
    clients: dict[str, str] = field(default_factory=lambda: {"mlgate": "s3cret"})
    expires_in: int = 600
    interval: int = 1
    slow_down_first: bool = False  # the first poll of each code answers slow_down
    rogue: bool = False  # sign ID tokens with a key the JWKS does not publish
    device_endpoint: bool = True
    issuer: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    other: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what the user's browser does -----------------------------------------------------------

    def decide(self, user_code: str, sub: str, decision: str = "approved") -> None:
        with self.lock:
            (grant,) = [g for g in self.grants.values() if g.user_code == user_code]
            grant.decision, grant.sub = decision, sub

    # -- the endpoints --------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        doc = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["authorization_code", GRANT],
        }
        if self.device_endpoint:
            doc["device_authorization_endpoint"] = f"{self.issuer}/device_authorization"
        return doc

    def authorize_device(self, client_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        device_code = secrets.token_urlsafe(32)
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "".join(secrets.choice(letters) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with self.lock:
            self.grants[device_code] = Grant(
                user_code=user_code, scope=form.get("scope", ""), client_id=client_id,
                expires_at=time.monotonic() + self.expires_in, interval=self.interval,
            )  # fmt: skip
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.issuer}/device",
            "verification_uri_complete": f"{self.issuer}/device?user_code={user_code}",
            "expires_in": self.expires_in,
            "interval": self.interval,
        }

    def token(self, client_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != GRANT:
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.grants.get(form.get("device_code", ""))
            if grant is None or grant.client_id != client_id or grant.used:
                return 400, {"error": "invalid_grant"}
            grant.polls += 1
            if time.monotonic() > grant.expires_at:
                return 400, {"error": "expired_token"}
            if self.slow_down_first and grant.polls == 1:
                grant.interval += 5
                return 400, {"error": "slow_down"}
            if grant.decision is None:
                return 400, {"error": "authorization_pending"}
            if grant.decision == "denied":
                return 400, {"error": "access_denied"}
            grant.used = True
            sub = grant.sub
        assert sub is not None
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": client_id, "sub": sub, "iat": now,
                  "exp": now + 300, **self.users[sub]}  # fmt: skip
        signer = self.other if self.rogue else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signer)
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                     "expires_in": 300, "id_token": id_token}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    provider: DeviceProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: dict[str, Any] | str) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        kind = "text/html" if isinstance(body, str) else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        parsed = parse_qs(self.rfile.read(length).decode())
        return {k: v[0] for k, v in parsed.items()}

    def _client(self) -> str | None:
        """The client id, when its client_secret_basic credentials are right."""
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, secret = base64.b64decode(encoded).decode().partition(":")
        client_id, secret = unquote_plus(user), unquote_plus(secret)
        return client_id if self.provider.clients.get(client_id) == secret else None

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        p = self.provider
        if path == "/.well-known/openid-configuration":
            self._answer(200, p.document())
        elif path == "/jwks":
            self._answer(200, {"keys": [p.key.as_dict(private=False)]})
        elif path == "/device":
            self._answer(200, "<form method=post>code <input name=user_code> as "
                              "<input name=sub><button>Approve</button></form>")  # fmt: skip
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        p, form = self.provider, self._form()
        if path == "/device":  # the user's browser: approve (or deny) a code
            try:
                p.decide(form["user_code"], form["sub"], form.get("decision", "approved"))
            except (KeyError, ValueError):
                self._answer(400, "unknown code")
                return
            self._answer(200, "Device approved: you may go back to your terminal.")
            return
        if path not in ("/device_authorization", "/token") or (
            path == "/device_authorization" and not p.device_endpoint
        ):
            self._answer(404, {"error": "not_found"})
            return
        client_id = self._client()
        if client_id is None:
            self._answer(401, {"error": "invalid_client"})
            return
        status, body = (p.authorize_device if path == "/device_authorization" else p.token)(
            client_id, form
        )
        self._answer(status, body)


@contextmanager
def running(provider: DeviceProvider) -> Iterator[DeviceProvider]:
    """The provider served on a free port of 127.0.0.1 on a thread; its issuer set."""
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
