"""Bearer tokens: API keys ``mlg_<12 hex id>_<42 base62>``, login sessions ``mls_...``.

The id is public (it is the key's prefix, shown in lists and logs); the secret part is 36
random base62 characters (214 bits; GitHub's tokens carry 178) and a 6-character checksum, the
CRC32 of everything before it in base62, as GitHub's tokens carry one. A mistyped or truncated
key fails the checksum and is refused without a database read; a secret scanner that knows
`KEY_PATTERN` finds our keys with few false positives. Keys made before the checksum
(``mlg_<id>_<43 url-safe chars>``, `LEGACY_KEY_PATTERN`) are still accepted and looked up as
before: their secret is one character longer than a new one's, so no truncation of a new key
reads as an old one (a new key with one character too many does, and is refused by the lookup).

The secret is never stored: the database keeps an HMAC-SHA-256 of it under the server's secret
key, so a stolen database does not yield usable keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

TOKEN_PREFIX = "mlg_"
SESSION_PREFIX = "mls_"
_ID_HEX = 12
_SECRET_BYTES = 32
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_CHARS = 36  # 62**36 > 2**214
CHECKSUM_CHARS = 6  # 62**6 > 2**32
SECRET_CHARS = RANDOM_CHARS + CHECKSUM_CHARS
LEGACY_SECRET_CHARS = 43  # secrets.token_urlsafe(32)

# For secret scanners (GitHub custom patterns, gitleaks): a key made now, and one made before.
KEY_PATTERN = r"\bmlg_[0-9a-f]{12}_[0-9A-Za-z]{42}\b"
LEGACY_KEY_PATTERN = r"\bmlg_[0-9a-f]{12}_[0-9A-Za-z_-]{43}(?![0-9A-Za-z_-])"
# What `mlgate keys check` looks at: anything that starts like one of our keys, whole or not.
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])mlg_[0-9A-Za-z]{12}_[0-9A-Za-z_-]{16,}")

Shape = Literal["checksummed", "legacy", "bad_checksum", "malformed"]


@dataclass(frozen=True)
class Token:
    prefix: str  # "mlg_" + id: public
    secret: str

    def __str__(self) -> str:
        return f"{self.prefix}_{self.secret}"

    def __repr__(self) -> str:
        return f"Token(prefix={self.prefix!r}, secret='**********')"


def new_key() -> Token:
    """A new API key's token: a fresh id, 256 random bits and their checksum."""
    prefix = TOKEN_PREFIX + secrets.token_hex(_ID_HEX // 2)
    return with_new_secret(prefix)


def with_new_secret(prefix: str) -> Token:
    """A new secret for the key `prefix` (a rotation keeps the id)."""
    random = "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
    return Token(prefix, random + checksum(f"{prefix}_{random}"))


def new_token(kind: str = TOKEN_PREFIX) -> Token:
    """A login session's token (`SESSION_PREFIX`); API keys come from `new_key`."""
    return Token(kind + secrets.token_hex(_ID_HEX // 2), secrets.token_urlsafe(_SECRET_BYTES))


def checksum(text: str) -> str:
    """CRC32 of `text` in base62, six characters."""
    value, out = zlib.crc32(text.encode()), []
    for _ in range(CHECKSUM_CHARS):
        value, digit = divmod(value, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def parse_token(raw: str, kind: str = TOKEN_PREFIX) -> Token | None:
    """The token's parts, or None if `raw` does not have the shape of one of our tokens."""
    head = len(kind) + _ID_HEX
    if len(raw) < head + 2 or len(raw) > head + 100 or not raw.startswith(kind) or raw[head] != "_":
        return None
    key_id = raw[len(kind) : head]
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return Token(raw[:head], raw[head + 1 :])


def shape_of(raw: str) -> tuple[Shape, Token | None]:
    """What `raw` is as an API key, from its text alone: a key with a valid checksum, a key of
    the old shape (only the database can tell), one whose checksum fails (mistyped, cut short
    by a character or two past the checksum...), or nothing like our keys. The token is None
    only where it is malformed."""
    token = parse_token(raw)
    if token is None:
        return "malformed", None
    secret = token.secret
    if len(secret) == SECRET_CHARS and all(c in BASE62 for c in secret):
        ok = checksum(f"{token.prefix}_{secret[:RANDOM_CHARS]}") == secret[RANDOM_CHARS:]
        return ("checksummed" if ok else "bad_checksum"), token
    if len(secret) == LEGACY_SECRET_CHARS and re.fullmatch(r"[0-9A-Za-z_-]+", secret):
        return "legacy", token
    if all(c in BASE62 for c in secret) and 0 < len(secret) < SECRET_CHARS:
        return "bad_checksum", token  # cut short: what is left cannot carry its checksum
    return "malformed", None


def find_keys(text: str) -> list[tuple[int, str]]:
    """(line number, text) of everything in `text` that starts like one of our API keys,
    well-formed or not: what `mlgate keys check` reports on."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        found.extend((number, m.group(0)) for m in _CANDIDATE.finditer(line))
    return found


def masked(raw: str) -> str:
    """`raw` with its secret hidden: the public id, then stars."""
    token = parse_token(raw)
    if token is not None:
        return f"{token.prefix}_****"
    return raw[: len(TOKEN_PREFIX) + _ID_HEX] + "****"


def digest(token: Token, server_secret: bytes) -> str:
    message = f"{token.prefix}:{token.secret}".encode()
    return hmac.new(server_secret, message, hashlib.sha256).hexdigest()


def matches(token: Token, stored_digest: str, server_secret: bytes) -> bool:
    return hmac.compare_digest(digest(token, server_secret), stored_digest)
