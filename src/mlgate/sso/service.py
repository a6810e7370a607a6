"""Single sign-on's use cases: a user's sign-in from a checked ID token (made just in time,
admin and groups from the provider's claims), and a machine's provider-issued access token
as the bearer of one API call.

Machine tokens name a service user that must exist already (`mlgate users create ci-bot`,
without a password, then grants): a token the provider issued to any of its clients gives
nothing here until an admin says which user it acts as. The user is named by the token's
`client_id` claim (Okta, Keycloak, Entra's v2 tokens: `azp`), else its `sub`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from mlgate.access import audit
from mlgate.access.accounts import SESSION_TTL, grants_of, open_session
from mlgate.access.model import SCOPES, Principal, Session, User
from mlgate.caching import Budget
from mlgate.errors import InvalidInput, MlgateError, NotFound, TooManyRequests, Unauthenticated
from mlgate.registry.model import check_user_name
from mlgate.sso import tokens
from mlgate.sso.device import DeviceGrant, Pending, Started
from mlgate.uow import UnitOfWork

PUBLIC_ASKS_PER_MINUTE = 60  # a device polls every 5 s: 12; a browser signs in once


@dataclass(frozen=True)
class Rules:
    """What the settings say about the provider's claims (settings.py, MLGATE_OIDC_*)."""

    issuer: str
    client_id: str
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    admin_groups: frozenset[str] = frozenset()
    audience: str | None = None  # machine tokens' audience; None: none accepted
    leeway: int = 60


@dataclass
class SingleSignOn:
    """Single sign-on with this process's adapters bound: the key set, the clock, the
    database, and the machine tokens already checked."""

    rules: Rules
    jwks: tokens.Jwks
    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    server_secret: bytes = field(repr=False)
    discovery: Callable[[], dict[str, Any]] = dict  # the provider's discovery document
    checked: tokens.CheckedTokens = field(default_factory=tokens.CheckedTokens)
    device: DeviceGrant | None = None  # the device flow at the provider (sso/device.py)
    # The public asks (a device sign-in started or polled, a refused sign-in recorded) each
    # client address may make a minute: each one calls the provider or writes an audit line.
    budget: Budget = field(default_factory=lambda: Budget(PUBLIC_ASKS_PER_MINUTE))

    def admit(self, address: str) -> None:
        """TooManyRequests once `address` has spent this minute's public asks."""
        if not self.budget.spend(address):
            wait = self.budget.retry_after(address)
            raise TooManyRequests(
                f"too many sign-in asks from {address}: at most {PUBLIC_ASKS_PER_MINUTE} a "
                f"minute; try again in {wait} s",
                retry_after=wait,
            )

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where the browser goes to end its session at the provider too (RP-initiated
        logout), where the provider's discovery document offers it."""
        try:
            endpoint = self.discovery().get("end_session_endpoint")
        except Exception:  # the provider is away: the session here has ended all the same
            return None
        if not isinstance(endpoint, str) or not endpoint:
            return None
        query = urlencode({"client_id": self.rules.client_id,
                           "post_logout_redirect_uri": post_logout_redirect_uri})  # fmt: skip
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def check_id_token(self, raw: str, nonce: str | None) -> dict[str, Any]:
        """The claims of an ID token the provider sent; `nonce` None where the flow has
        none (the device flow: RFC 8628 has no authorization request to carry one)."""
        return tokens.verify(
            raw, self.jwks, issuer=self.rules.issuer, audience=self.rules.client_id,
            now=int(self.clock().timestamp()), leeway=self.rules.leeway, nonce=nonce,
        )  # fmt: skip

    @audit.records_its_own
    def sign_in(
        self,
        claims: dict[str, Any],
        *,
        address: str,
        ttl: timedelta = SESSION_TTL,
        via: str = "browser",
    ) -> tuple[Session, str, User]:
        return sign_in(self.uow(), self.server_secret, claims, self.rules, now=self.clock(),
                       address=address, ttl=ttl, via=via)  # fmt: skip

    def start_device(self, *, address: str = "unknown") -> Started:
        """A device sign-in started at the provider: the code and address to show the user."""
        device = self._device()
        self.admit(address)
        return device.start()

    @audit.records_its_own
    def finish_device(
        self, device_code: str, *, interval: int, address: str, ttl: timedelta
    ) -> Pending | tuple[Session, str, User]:
        """Pending until the user approved the code at the provider; then a session, its ID
        token checked and the user signed in exactly as a browser sign-in does. Refusals (a
        denial, an expired code, a bad ID token) are audited and raised."""
        device = self._device()
        self.admit(address)
        try:
            answer = device.poll(device_code, interval)
            if isinstance(answer, Pending):
                return answer
            raw = answer.get("id_token")
            if not isinstance(raw, str) or not raw:
                raise Unauthenticated(
                    "the provider sent no ID token: add the openid scope to MLGATE_OIDC_SCOPES",
                    code="no_id_token",
                )
            claims = self.check_id_token(raw, None)
        except Unauthenticated as exc:
            self.refuse_sign_in(exc, address=address, via="device")
            raise
        return self.sign_in(claims, address=address, ttl=ttl, via="device")

    def _device(self) -> DeviceGrant:
        if self.device is None:
            raise NotFound("single sign-on is not set up here (MLGATE_OIDC_ISSUER)")
        return self.device

    def refuse_sign_in(self, reason: MlgateError, *, address: str, via: str = "browser") -> None:
        """Record a sign-in the provider's answer did not allow (a bad ID token, a denial); past
        the address's budget, refuse it instead of writing another line."""
        self.admit(address)
        audit.record(self.uow(), at=self.clock(), actor="anonymous", action="auth.sso_login",
                     target=self.rules.issuer, address=address, result="denied",
                     detail={"error": getattr(reason, "code", type(reason).__name__),
                             "via": via})  # fmt: skip

    def machine_principal(self, raw: str, *, address: str = "api") -> Principal:
        """The service user a provider-issued JWT access token acts as; Unauthenticated (and
        an audit line) when the token does not pass."""
        if self.rules.audience is None:
            raise Unauthenticated(
                "the credential is not shaped like an mlgate key (mlg_<id>_<secret>)",
                code="malformed_credentials",
            )
        now = self.clock()
        try:
            claims = self.checked.get(raw, int(now.timestamp()))
            if claims is None:
                claims = tokens.verify(
                    raw, self.jwks, issuer=self.rules.issuer, audience=self.rules.audience,
                    now=int(now.timestamp()), leeway=self.rules.leeway,
                )  # fmt: skip
                self.checked.put(raw, claims)
            return _service_user(self.uow(), claims)
        except Unauthenticated as exc:
            audit.record(self.uow(), at=now, actor="anonymous", action="auth.bearer_token",
                         target=self.rules.issuer, address=address, result="denied",
                         detail={"error": exc.code})  # fmt: skip
            raise


def _service_user(uow: UnitOfWork, claims: dict[str, Any]) -> Principal:
    name = str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "")
    with uow:
        user = uow.users.get(name) if name else None
        if user is None:
            raise Unauthenticated(
                f"the token's client {name[:64]!r} is no mlgate user; an admin makes one with "
                f"`mlgate users create {name[:64] or 'NAME'}` and grants it what it may do",
                code="unknown_client",
            )
        if user.disabled_at is not None:
            raise Unauthenticated(f"the account {name!r} is disabled", code="account_disabled")
        grants = grants_of(uow, "user", user)
    return Principal(
        kind="user",
        name=name,
        is_admin=user.is_admin,
        scopes=frozenset(SCOPES),
        grants=grants,
        groups=frozenset(user.groups),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


@audit.records_its_own
def sign_in(
    uow: UnitOfWork,
    server_secret: bytes,
    claims: dict[str, Any],
    rules: Rules,
    *,
    now: datetime,
    address: str,
    ttl: timedelta = SESSION_TTL,
    via: str = "browser",
) -> tuple[Session, str, User]:
    """A session for the user a checked ID token names: made at their first sign-in (audited
    as such, the user its actor), their groups and admin standing read again each time."""
    subject = str(claims.get("sub") or "")
    raw_name = claims.get(rules.username_claim)
    name = str(raw_name or "")
    groups = _groups(claims.get(rules.groups_claim))
    actor = f"user:{name[:128]}" if name else "anonymous"

    def record(action: str, result: str, **detail: Any) -> None:
        audit.record(uow, at=now, actor=actor, action=action, target=f"user:{name[:128]}",
                     address=address, result=result, detail=detail)  # fmt: skip

    try:
        if not name:
            raise Unauthenticated(
                f"the provider's ID token has no {rules.username_claim!r} claim; set "
                "MLGATE_OIDC_USERNAME_CLAIM to the claim that names users",
                code="no_username",
            )
        try:
            check_user_name(name)
        except InvalidInput as exc:
            raise Unauthenticated(str(exc), code="bad_username") from exc
        with uow:
            user = uow.users.get(name)
            created = user is None
            if user is None:
                user = User(name=name, is_admin=False, created_at=now, sso_subject=subject)
                uow.users.add(user)
            elif user.sso_subject not in (None, subject) or (
                user.sso_subject is None and user.password_hash is not None
            ):
                raise Unauthenticated(
                    f"the user {name!r} exists here and is not this provider account's; an "
                    "admin renames or removes it first",
                    code="account_taken",
                )
            if user.disabled_at is not None:
                raise Unauthenticated(f"the account {name!r} is disabled",
                                      code="account_disabled")  # fmt: skip
            if rules.groups_claim not in claims:  # no groups claim: SCIM's groups are kept
                groups = user.groups
            is_admin = bool(rules.admin_groups & set(groups)) if rules.admin_groups else (
                user.is_admin
            )  # fmt: skip
            user = replace(user, sso_subject=subject, groups=groups, is_admin=is_admin)
            uow.users.save(user)
            session, token = open_session(uow, server_secret, name, now=now, ttl=ttl)
            uow.commit()
    except Unauthenticated as exc:
        record("auth.sso_login", "denied", error=exc.code, via=via)
        raise
    if created:
        record("access.create_user", "ok", just_in_time=True, sso_subject=subject[:255],
               is_admin=user.is_admin, via=via)  # fmt: skip
    record("auth.sso_login", "ok", groups=list(groups), is_admin=user.is_admin, via=via)
    return session, token, user


def _groups(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return ()
    return tuple(sorted({str(g)[:128] for g in raw if str(g)}))[:200]
