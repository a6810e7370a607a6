"""Checking the provider's JWTs (ID tokens at sign-in, access tokens from machines) with joserfc.

A token passes when its header names an asymmetric algorithm we accept (never `none`, never an
HMAC one: the client secret must not sign tokens), a key of the provider's JWKS verifies its
signature, its `iss` is the provider's, its `aud` ours, and it is within `exp` (and `nbf`, `iat`)
give or take the leeway. A `kid` the key set lacks fetches the set again (the provider rotated
its keys), at most once per `REFETCH_EVERY`, so a stream of made-up kids cannot make us hammer
the provider.

Machine tokens are cached after the first check, under the whole token (never its `jti` alone,
which a forged token could copy) until their `exp`: a repeated token costs a dict lookup.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from mlgate.errors import Unauthenticated

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
REFETCH_EVERY = 30.0  # seconds between two fetches of the key set for an unknown kid
CACHE_SIZE = 10_000  # machine tokens kept checked at once

Claims = dict[str, Any]


class Jwks:
    """The provider's signing keys, fetched by `fetch` (the `jwks_uri` document as a dict)."""

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_every: float = REFETCH_EVERY,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refetch_every = refetch_every
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0

    def keys_for(self, kid: str | None) -> KeySet:
        """The key set, fetched again first when it lacks `kid` (and may be fetched again)."""
        with self._lock:
            if self._keys is None or (
                kid is not None
                and not _has(self._keys, kid)
                and self._clock() - self._fetched_at >= self._refetch_every
            ):
                try:
                    self._keys = KeySet.import_key_set(dict(self._fetch()))  # type: ignore[arg-type]
                except Exception as exc:
                    if self._keys is None:
                        raise Unauthenticated(
                            "the identity provider's keys could not be read; try again later",
                            code="provider_unavailable",
                        ) from exc
                self._fetched_at = self._clock()
                self.fetches += 1
            assert self._keys is not None
            return self._keys


def _has(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def header_of(raw: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified; refused when it is not one."""
    head, dot, _ = raw.partition(".")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        header = None
    if not dot or not isinstance(header, dict):
        raise Unauthenticated("the bearer token is not a JWT", code="malformed_credentials")
    return header


def verify(
    raw: str,
    jwks: Jwks,
    *,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
    nonce: str | None = None,
) -> Claims:
    """The token's claims if it passes (see the module's docstring); Unauthenticated with a
    code saying why otherwise: bad_algorithm, bad_signature, wrong_issuer, wrong_audience,
    token_expired, invalid_token."""
    header = header_of(raw)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise Unauthenticated(
            f"the token's algorithm {str(alg)[:20]!r} is not accepted (only signed tokens: "
            f"{', '.join(ALGORITHMS)})",
            code="bad_algorithm",
        )
    kid = header.get("kid")
    keys = jwks.keys_for(kid if isinstance(kid, str) else None)
    if isinstance(kid, str) and not _has(keys, kid):
        raise Unauthenticated(
            "the token is signed by a key the identity provider does not publish",
            code="bad_signature",
        )
    try:
        token = jwt.decode(raw, keys, algorithms=ALGORITHMS)
    except (jose_errors.BadSignatureError, jose_errors.MissingKeyError, ValueError) as exc:
        raise Unauthenticated(
            "the token's signature does not verify with the identity provider's keys",
            code="bad_signature",
        ) from exc
    except jose_errors.JoseError as exc:
        raise Unauthenticated("the token is malformed", code="invalid_token") from exc
    claims: Claims = dict(token.claims)
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        jwt.JWTClaimsRegistry(now=now, leeway=leeway, **options).validate(claims)
    except jose_errors.ExpiredTokenError as exc:
        raise Unauthenticated("the token has expired", code="token_expired") from exc
    except (jose_errors.InvalidClaimError, jose_errors.MissingClaimError) as exc:
        claim = getattr(exc, "claim", "")
        if claim == "iss":
            raise Unauthenticated(
                "the token was issued by another provider than this mlgate's",
                code="wrong_issuer",
            ) from exc
        if claim == "aud":
            raise Unauthenticated(
                "the token is meant for another audience than this mlgate", code="wrong_audience"
            ) from exc
        raise Unauthenticated(f"the token's {claim or 'claims'} are not valid",
                              code="invalid_token") from exc  # fmt: skip
    except jose_errors.JoseError as exc:  # not yet valid (nbf, iat in the future)
        raise Unauthenticated("the token is not valid yet", code="invalid_token") from exc
    return claims


class CheckedTokens:
    """Machine tokens that passed `verify`, each until its `exp`: a bounded dict."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._checked: dict[str, tuple[int, Claims]] = {}

    def get(self, raw: str, now: int) -> Claims | None:
        found = self._checked.get(raw)
        if found is None:
            return None
        if found[0] <= now:
            self._checked.pop(raw, None)
            return None
        return found[1]

    def put(self, raw: str, claims: Claims) -> None:
        if len(self._checked) >= self._size:
            self._checked.pop(next(iter(self._checked)), None)  # the oldest
        self._checked[raw] = (int(claims["exp"]), claims)
