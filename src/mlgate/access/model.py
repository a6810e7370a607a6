"""Who is who: users, consumers, API keys, grants, login sessions and audit events, as stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SCOPES = ("predict", "generate", "read", "train", "admin")
ROLES = ("owner", "maintainer", "viewer", "consumer")

OwnerKind = Literal["user", "consumer"]
SubjectKind = Literal["user", "consumer", "group"]  # who a grant names; a group: the provider's
Role = Literal["owner", "maintainer", "viewer", "consumer"]
KeyState = Literal["active", "rotating", "revoked", "expired", "owner disabled"]


@dataclass(frozen=True)
class User:
    """A person on the team running mlgate. No password hash means the account cannot log in
    (it may still own API keys)."""

    name: str
    is_admin: bool
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)
    disabled_at: datetime | None = None
    failed_logins: int = 0
    last_failed_at: datetime | None = None
    locked_until: datetime | None = None
    # Single sign-on (mlgate/sso): the provider's `sub` for a user it created, and the groups
    # its last sign-in carried (group grants reach the user through them).
    sso_subject: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Consumer:
    """A customer account that calls prediction endpoints with its own keys."""

    name: str
    created_at: datetime
    description: str = ""
    disabled_at: datetime | None = None
    password_hash: str | None = field(default=None, repr=False)  # None: no portal login
    failed_logins: int = 0
    last_failed_at: datetime | None = None
    locked_until: datetime | None = None
    # the customer's id in the billing system (Stripe's cus_…): what the usage export names
    billing_id: str | None = None


@dataclass(frozen=True)
class Target:
    """What a request or a restriction is about: a whole model, one alias or one version."""

    model: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.model}@{self.alias}"
        if self.version is not None:
            return f"{self.model}@{self.version}"
        return self.model

    @property
    def whole_model(self) -> bool:
        return self.alias is None and self.version is None

    @staticmethod
    def parse(ref: str) -> Target:
        """`churn`, `churn@production` or `churn@3`."""
        model, _, after = ref.partition("@")
        if not after:
            return Target(model)
        if after.isdecimal() and len(after) <= 9:
            return Target(model, version=int(after))
        return Target(model, alias=after)


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    name: str
    digest: str = field(repr=False)
    scopes: tuple[str, ...]
    created_at: datetime
    owner_kind: OwnerKind = "user"
    owner: str = ""
    expires_at: datetime | None = None
    targets: tuple[Target, ...] = ()  # empty: any model the owner may use
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    # After a rotation: the secret before it, which keeps working until `previous_until`.
    previous_digest: str | None = field(default=None, repr=False)
    previous_until: datetime | None = None
    rotated_at: datetime | None = None
    # Not stored: set by `list_keys` when the owner is disabled (a user SCIM deactivated), whose
    # keys are refused until the owner is enabled again.
    owner_disabled: bool = False

    def state(self, now: datetime) -> KeyState:
        """`rotating` while the secret before the last rotation still works."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.owner_disabled:
            return "owner disabled"
        if self.old_secret_works(now):
            return "rotating"
        return "active"

    def usable(self, now: datetime) -> bool:
        return self.state(now) in ("active", "rotating")

    def old_secret_works(self, now: datetime) -> bool:
        return (
            self.previous_digest is not None
            and self.previous_until is not None
            and self.previous_until > now
        )

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Grant:
    """`subject` may act as `role` on `target` (a whole model, one alias or one version)."""

    id: int
    subject_kind: SubjectKind
    subject: str
    target: Target
    role: Role
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Session:
    """A login: a short-lived bearer token for scripts, or the dashboard's and the portal's
    cookie. `user` names the subject, a user or (`kind="consumer"`) a consumer."""

    prefix: str
    digest: str = field(repr=False)
    user: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    kind: OwnerKind = "user"


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str  # user:alice, consumer:acme, cli:root, anonymous
    action: str  # e.g. keys.create, models.promote, auth.login
    target: str
    address: str
    result: str  # ok, denied, failed
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class AuditQuery:
    """Which audit events to read: every field set narrows the answer; newest first, at most
    `limit`."""

    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "keys.")
    target: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as authentication found it: who, with what credential, with
    which scopes and restrictions, and the grants that were theirs at that moment."""

    kind: OwnerKind
    name: str
    is_admin: bool
    scopes: frozenset[str]
    grants: tuple[Grant, ...] = ()
    key_prefix: str | None = None  # set when the credential is an API key
    targets: tuple[Target, ...] = ()  # the key's restriction; empty: none
    session_prefix: str | None = None  # set when the credential is a login session
    # When the credential stops working by itself (a key's expiry, an old secret's overlap):
    # a cached principal is not used past it.
    expires_at: datetime | None = None
    groups: frozenset[str] = frozenset()  # a signed-on user's groups: their grants apply too

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def credential(self) -> str:
        return f"key {self.key_prefix}" if self.key_prefix else "login session"
