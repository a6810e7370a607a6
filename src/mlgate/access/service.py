"""API key use cases: create (the token is shown once), list, revoke, authenticate."""

from __future__ import annotations

from datetime import datetime

from mlgate.access import keys
from mlgate.access.model import SCOPES, ApiKey
from mlgate.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from mlgate.uow import UnitOfWork


def create_key(
    uow: UnitOfWork,
    server_secret: bytes,
    *,
    name: str,
    now: datetime,
    scopes: tuple[str, ...] = ("predict",),
) -> tuple[ApiKey, str]:
    """A new active key and its token; the token exists nowhere else, so show it once."""
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("a key needs a name of 1 to 128 characters, e.g. --name billing-service")
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise InvalidInput(f"unknown scope(s) {sorted(unknown)}; known: {', '.join(SCOPES)}")
    token = keys.new_token()
    key = ApiKey(
        prefix=token.prefix,
        name=name,
        digest=keys.digest(token, server_secret),
        scopes=scopes,
        created_at=now,
    )
    with uow:
        uow.keys.add(key)
        uow.commit()
    return key, str(token)


def list_keys(uow: UnitOfWork) -> list[ApiKey]:
    with uow:
        return uow.keys.all()


def revoke_key(uow: UnitOfWork, prefix_or_name: str, *, now: datetime) -> ApiKey:
    """Revoke the key with this prefix, or the one active key with this name."""
    with uow:
        key = uow.keys.get(prefix_or_name)
        if key is None:
            named = [k for k in uow.keys.all() if k.name == prefix_or_name and k.active]
            if len(named) > 1:
                raise InvalidInput(
                    f"{len(named)} active keys are named {prefix_or_name!r}; revoke by prefix "
                    f"({', '.join(k.prefix for k in named)})"
                )
            key = named[0] if named else None
        if key is None:
            raise NotFound(f"no API key with prefix or name {prefix_or_name!r}")
        if key.active:
            uow.keys.revoke(key.prefix, now)
            uow.commit()
        return uow.keys.get(key.prefix) or key


def authenticate(
    uow: UnitOfWork, server_secret: bytes, authorization: str | None, *, scope: str
) -> ApiKey:
    """The active key behind an ``Authorization: Bearer <token>`` header value.

    Raises Unauthenticated for a missing, malformed, unknown or revoked key (one message for all,
    so that callers cannot probe which prefixes exist), PermissionDenied if it lacks `scope`.
    """
    scheme, _, raw = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthenticated(
            "send an API key as `Authorization: Bearer <key>`; `mlgate keys create` makes one"
        )
    token = keys.parse_token(raw.strip())
    with uow:
        key = None if token is None else uow.keys.get(token.prefix)
    if key is None or token is None or not keys.matches(token, key.digest, server_secret):
        raise Unauthenticated("the API key is not valid; check it, or create a new one")
    if not key.active:
        raise Unauthenticated(f"the API key {key.prefix} was revoked; use another key")
    if scope not in key.scopes:
        raise PermissionDenied(f"the API key {key.prefix} lacks the {scope!r} scope")
    return key
