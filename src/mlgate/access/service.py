"""API keys and authentication: create (the token is shown once), list, rotate, revoke; and
turning an ``Authorization`` header into a Principal.

`by` is the principal asking; None means the local operator at the CLI, who owns the machine
and the database anyway and may do anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from mlgate.access import keys, policy
from mlgate.access.accounts import grants_of
from mlgate.access.audit import audited
from mlgate.access.model import SCOPES, ApiKey, Consumer, OwnerKind, Principal, Target, User
from mlgate.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)
from mlgate.registry.model import check_name
from mlgate.uow import UnitOfWork

CONSUMER_SCOPES = ("predict", "generate", "read")
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per key
MAX_OVERLAP = timedelta(days=30)  # how long an old secret may keep working after a rotation


@audited(
    "access.create_key", lambda a: f"{a['owner_kind'] or 'own'}:{a['owner'] or ''}/{a['name']}"
)
def create_key(
    uow: UnitOfWork,
    server_secret: bytes,
    *,
    by: Principal | None,
    owner_kind: OwnerKind,
    owner: str,
    name: str,
    now: datetime,
    scopes: Sequence[str] = ("predict",),
    expires_at: datetime | None = None,
    targets: Sequence[str] = (),
) -> tuple[ApiKey, str]:
    """A new active key and its token; the token exists nowhere else, so show it once."""
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("a key needs a name of 1 to 128 characters, e.g. --name billing-service")
    scopes = tuple(dict.fromkeys(scopes))
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise InvalidInput(
            f"unknown scope(s) {sorted(unknown)}; known: {', '.join(SCOPES)}"
            if unknown
            else f"a key needs at least one scope of: {', '.join(SCOPES)}"
        )
    if owner_kind == "consumer" and not set(scopes) <= set(CONSUMER_SCOPES):
        raise InvalidInput(
            f"a consumer's key may only have the scopes {', '.join(CONSUMER_SCOPES)}"
        )
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the key's expiry is in the past; give a future time")
    parsed = tuple(_target(t) for t in targets)
    _check_manages(by, owner_kind, owner)
    if by is not None and not set(scopes) <= by.scopes:
        raise PermissionDenied(
            f"the {by.credential} cannot give a new key scopes it does not have itself "
            f"({', '.join(sorted(set(scopes) - by.scopes))})",
            code="missing_scope",
        )
    token = keys.new_key()
    key = ApiKey(
        prefix=token.prefix,
        name=name,
        digest=keys.digest(token, server_secret),
        scopes=scopes,
        created_at=now,
        owner_kind=owner_kind,
        owner=owner,
        expires_at=expires_at,
        targets=parsed,
    )
    with uow:
        _check_owner_exists(uow, owner_kind, owner)
        uow.keys.add(key)
        uow.commit()
    return key, str(token)


def list_keys(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    owner_kind: OwnerKind | None = None,
    owner: str | None = None,
) -> list[ApiKey]:
    """Everyone's keys for admins and the local operator (optionally one owner's); one's own
    keys for everyone else."""
    if by is not None and not by.is_admin:
        if owner is not None and (owner_kind, owner) != (by.kind, by.name):
            raise PermissionDenied("only admins list other people's keys", code="admin_only")
        owner_kind, owner = by.kind, by.name
    with uow:
        found = uow.keys.all(owner_kind, owner)
        owners = {(k.owner_kind, k.owner): k for k in found}
        off = {o for o, k in owners.items() if _owner_disabled(uow, k)}
    return [replace(k, owner_disabled=True) if (k.owner_kind, k.owner) in off else k
            for k in found]  # fmt: skip


@audited("access.revoke_key", "prefix_or_name")
def revoke_key(
    uow: UnitOfWork, prefix_or_name: str, *, by: Principal | None, now: datetime
) -> ApiKey:
    """Revoke the key with this prefix, or the one active key with this name (among the keys
    `by` may see)."""
    with uow:
        key = _find_key(uow, prefix_or_name, by, "revoke")
        if key.active:
            uow.keys.revoke(key.prefix, now)
            uow.commit()
        return uow.keys.get(key.prefix) or key


def rotation_detail(key: ApiKey, overlap: timedelta) -> dict[str, Any]:
    """What a rotation's audit event says: the key, the overlap, when the old secret stops."""
    return {
        "prefix": key.prefix,
        "overlap_s": int(overlap.total_seconds()),
        "old_secret_until": key.previous_until.isoformat() if key.previous_until else None,
    }


@audited(
    "access.rotate_key",
    "prefix_or_name",
    detail=lambda a, out: rotation_detail(out[0], a["overlap"]),
)
def rotate_key(
    uow: UnitOfWork,
    server_secret: bytes,
    prefix_or_name: str,
    *,
    by: Principal | None,
    overlap: timedelta,
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new secret for the same key (its id, name, scopes, restriction and usage stay); the
    secret it had keeps working for `overlap` (0 to 30 days), then stops. A secret older than
    that one (an earlier rotation still in its overlap) stops at once. The new token exists
    nowhere else: show it once."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise InvalidInput(
            f"the overlap is 0 to {MAX_OVERLAP.days} days (e.g. --overlap 24h); "
            "for longer, make a second key and revoke the first when its users have moved"
        )
    with uow:
        key = _find_key(uow, prefix_or_name, by, "rotate")
        if not key.usable(now):
            raise InvalidInput(
                f"the key {key.prefix} is {key.state(now)}: only a working key rotates; "
                "make a new one with `mlgate keys create`"
            )
        token = keys.with_new_secret(key.prefix)
        until = now + overlap if overlap else None
        if until is not None and key.expires_at is not None:
            until = min(until, key.expires_at)
        uow.keys.rotate(
            key.prefix,
            current=key.digest,
            new=keys.digest(token, server_secret),
            previous_until=until,
            at=now,
        )
        uow.commit()
        rotated = uow.keys.get(key.prefix)
    assert rotated is not None
    return rotated, str(token)


def _find_key(uow: UnitOfWork, prefix_or_name: str, by: Principal | None, verb: str) -> ApiKey:
    """The key with this prefix, or the one active key with this name, among those `by` may
    manage; someone else's key reads as unknown."""
    key = uow.keys.get(prefix_or_name)
    if key is not None and by is not None and not _manages(by, key.owner_kind, key.owner):
        key = None  # someone else's key: as if it did not exist
    if key is None:
        named = [
            k
            for k in uow.keys.all()
            if k.name == prefix_or_name
            and k.active
            and (by is None or _manages(by, k.owner_kind, k.owner))
        ]
        if len(named) > 1:
            raise InvalidInput(
                f"{len(named)} active keys are named {prefix_or_name!r}; {verb} by prefix "
                f"({', '.join(k.prefix for k in named)})"
            )
        key = named[0] if named else None
    if key is None:
        raise NotFound(f"no API key with prefix or name {prefix_or_name[:40]!r}")
    return key


def authenticate(
    uow: UnitOfWork, server_secret: bytes, authorization: str | None, *, now: datetime
) -> Principal:
    """The principal behind an ``Authorization: Bearer <token>`` header value: an API key or a
    login session. Raises Unauthenticated with a reason code otherwise. An unknown prefix and a
    wrong secret read the same, so that callers cannot probe which prefixes exist."""
    scheme, _, raw = (authorization or "").strip().partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise Unauthenticated(
            "send an API key as `Authorization: Bearer <key>`; `mlgate keys create` makes one",
            code="missing_credentials",
        )
    if raw.startswith(keys.SESSION_PREFIX):
        from mlgate.access.accounts import session_principal

        return session_principal(uow, server_secret, raw, now=now)
    shape, token = keys.shape_of(raw)
    if shape == "bad_checksum":
        raise Unauthenticated(
            "malformed key: checksum does not match; it was mistyped or cut short, copy it "
            "again from where it was made",
            code="bad_checksum",
        )
    if token is None:
        raise Unauthenticated(
            "the credential is not shaped like an mlgate key (mlg_<id>_<secret>)",
            code="malformed_credentials",
        )
    with uow:
        key = uow.keys.get(token.prefix)
        which = None if key is None else _secret_of(key, token, server_secret, now)
        if key is None or which is None:
            raise Unauthenticated(
                "the API key is not valid; check it, or create a new one",
                code="invalid_credentials",
            )
        state = key.state(now)
        if state == "revoked":
            raise Unauthenticated(f"the API key {key.prefix} was revoked", code="key_revoked")
        if state == "expired":
            raise Unauthenticated(f"the API key {key.prefix} has expired", code="key_expired")
        principal = _owner_principal(uow, key, which)
        if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
            uow.keys.touch(key.prefix, now)
            uow.commit()
    return principal


def _secret_of(
    key: ApiKey, token: keys.Token, server_secret: bytes, now: datetime
) -> Literal["current", "old"] | None:
    """Which of the key's secrets `token` carries: the current one, the one before the last
    rotation while it still works, or neither."""
    if keys.matches(token, key.digest, server_secret):
        return "current"
    previous = key.previous_digest if key.old_secret_works(now) else None
    if previous is not None and keys.matches(token, previous, server_secret):
        return "old"
    return None


@dataclass(frozen=True)
class KeyFinding:
    """What `mlgate keys check` says of one key-like string it found (never the secret)."""

    line: int
    masked: str
    shape: keys.Shape
    status: str  # live, live (old secret), revoked, expired, retired, unknown, malformed
    name: str | None = None
    owner: str | None = None
    until: datetime | None = None  # an old secret's end, or the key's expiry

    @property
    def live(self) -> bool:
        return self.status.startswith("live")


MAX_KEYS_LOOKED_UP = 1_000  # each is a database read: 70,000 in one body took 12.8 s
LOOKED_UP = ("checksummed", "legacy")


def check_text(
    uow: UnitOfWork | None, server_secret: bytes, text: str, *, now: datetime
) -> list[KeyFinding]:
    """Every key-like string in `text` (a file, a diff): well-formed or not, and, with a
    database (`uow`), whether it works: which key, in which state. Audited by the caller."""
    candidates = keys.find_keys(text)
    if uow is not None:
        to_look_up = {raw for _, raw in candidates if keys.shape_of(raw)[0] in LOOKED_UP}
        if len(to_look_up) > MAX_KEYS_LOOKED_UP:
            raise PayloadTooLarge(
                f"{len(to_look_up):,} distinct keys to look up; a check looks up at most "
                f"{MAX_KEYS_LOOKED_UP:,}: split the text, or check their shape only (--offline)"
            )
    found = []
    for line, raw in candidates:
        shape, token = keys.shape_of(raw)
        if token is None or shape == "bad_checksum":
            found.append(KeyFinding(line, keys.masked(raw), shape, "malformed"))
        elif uow is None:
            found.append(KeyFinding(line, keys.masked(raw), shape, "well-formed"))
        else:
            found.append(_finding(uow, server_secret, line, raw, shape, token, now))
    return found


def _finding(
    uow: UnitOfWork,
    server_secret: bytes,
    line: int,
    raw: str,
    shape: keys.Shape,
    token: keys.Token,
    now: datetime,
) -> KeyFinding:
    with uow:
        key = uow.keys.get(token.prefix)
        owner_off = key is not None and _owner_disabled(uow, key)
    if key is None:
        return KeyFinding(line, keys.masked(raw), shape, "unknown")
    which = _secret_of(key, token, server_secret, now)
    if which is None:
        earlier = key.previous_digest is not None and keys.matches(
            token, key.previous_digest, server_secret
        )
        status = "retired" if earlier else "unknown"  # an old secret past its overlap
        until = None
    elif key.state(now) in ("revoked", "expired"):
        status, until = key.state(now), None
    elif owner_off:  # refused now; works again if the owner is enabled
        status, until = "live (owner disabled)", key.expires_at
    elif which == "old":
        status, until = "live (old secret)", key.previous_until
    else:
        status, until = "live", key.expires_at
    known = status != "unknown"
    return KeyFinding(
        line, keys.masked(raw), shape, status,
        name=key.name if known else None,
        owner=f"{key.owner_kind}:{key.owner}" if known else None,
        until=until,
    )  # fmt: skip


def _owner_disabled(uow: UnitOfWork, key: ApiKey) -> bool:
    """Whether the key's owner is disabled (or gone); inside the caller's `with uow`."""
    account: User | Consumer | None = (
        uow.users.get(key.owner) if key.owner_kind == "user" else uow.consumers.get(key.owner)
    )
    return account is None or account.disabled_at is not None


def _owner_principal(
    uow: UnitOfWork, key: ApiKey, which: Literal["current", "old"] = "current"
) -> Principal:
    account: User | Consumer | None = (
        uow.users.get(key.owner) if key.owner_kind == "user" else uow.consumers.get(key.owner)
    )
    if account is None or account.disabled_at is not None:
        raise Unauthenticated(
            f"the owner of API key {key.prefix} is disabled", code="account_disabled"
        )
    is_admin = isinstance(account, User) and account.is_admin
    return Principal(
        kind=key.owner_kind,
        name=key.owner,
        is_admin=is_admin,
        scopes=frozenset(key.scopes),
        grants=grants_of(uow, key.owner_kind, account),
        groups=frozenset(account.groups) if isinstance(account, User) else frozenset(),
        key_prefix=key.prefix,
        targets=key.targets,
        expires_at=_earliest(key.expires_at, key.previous_until if which == "old" else None),
    )


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _target(ref: str) -> Target:
    target = Target.parse(ref.strip())
    check_name("model", target.model)
    return target


def _manages(by: Principal, owner_kind: OwnerKind, owner: str) -> bool:
    """Whether `by` may manage the keys of (owner_kind, owner): their own, or anyone's as admin;
    a key needs the admin scope for it, a login session has every scope."""
    if "admin" not in by.scopes:
        return False
    return by.is_admin or (owner_kind, owner) == (by.kind, by.name)


def _check_manages(by: Principal | None, owner_kind: OwnerKind, owner: str) -> None:
    if by is None or _manages(by, owner_kind, owner):
        return
    if "admin" not in by.scopes:
        policy.check_scope(by, "admin")
    raise PermissionDenied(
        f"{by.actor} may only manage their own keys; admins manage everyone's", code="admin_only"
    )


def _check_owner_exists(uow: UnitOfWork, owner_kind: OwnerKind, owner: str) -> None:
    found = uow.users.get(owner) if owner_kind == "user" else uow.consumers.get(owner)
    if found is None:
        raise NotFound(
            f"no {owner_kind} named {owner!r}; create it first with "
            f"`mlgate {owner_kind}s create {owner}`"
        )
    if found.disabled_at is not None:
        raise InvalidInput(f"the {owner_kind} {owner!r} is disabled; enable it first")
