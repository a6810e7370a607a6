"""Bearer tokens: API keys ``mlg_<12 hex id>_<43 url-safe chars>``, login sessions ``mls_...``.

The id is public (it is the key's prefix, shown in lists and logs); the secret part carries 256
random bits and is never stored: the database keeps an HMAC-SHA-256 of it under the server's
secret key, so a stolen database does not yield usable keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "mlg_"
SESSION_PREFIX = "mls_"
_ID_HEX = 12
_SECRET_BYTES = 32


@dataclass(frozen=True)
class Token:
    prefix: str  # "mlg_" + id: public
    secret: str

    def __str__(self) -> str:
        return f"{self.prefix}_{self.secret}"

    def __repr__(self) -> str:
        return f"Token(prefix={self.prefix!r}, secret='**********')"


def new_token(kind: str = TOKEN_PREFIX) -> Token:
    return Token(kind + secrets.token_hex(_ID_HEX // 2), secrets.token_urlsafe(_SECRET_BYTES))


def parse_token(raw: str, kind: str = TOKEN_PREFIX) -> Token | None:
    """The token's parts, or None if `raw` does not have the shape of one of our tokens."""
    head = len(kind) + _ID_HEX
    if len(raw) < head + 2 or len(raw) > head + 100 or not raw.startswith(kind) or raw[head] != "_":
        return None
    key_id = raw[len(kind) : head]
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return Token(raw[:head], raw[head + 1 :])


def digest(token: Token, server_secret: bytes) -> str:
    message = f"{token.prefix}:{token.secret}".encode()
    return hmac.new(server_secret, message, hashlib.sha256).hexdigest()


def matches(token: Token, stored_digest: str, server_secret: bytes) -> bool:
    return hmac.compare_digest(digest(token, server_secret), stored_digest)
