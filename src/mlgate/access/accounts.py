"""Users and consumers: create, list, disable; logins, logouts and password changes.

Logins: three failures in a row are free; after that each attempt must wait twice as long as the
one before (1 s, 2 s, 4 s, ...), and the tenth failure locks the account for 15 minutes. An
attempt that comes too early is refused with 429 and Retry-After, without checking the password.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timedelta

from mlgate.access import keys, passwords
from mlgate.access.audit import audited
from mlgate.access.model import (
    SCOPES,
    Consumer,
    Grant,
    OwnerKind,
    Principal,
    Session,
    User,
)
from mlgate.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
)
from mlgate.registry.model import check_name, check_user_name
from mlgate.uow import UnitOfWork

SESSION_TTL = timedelta(hours=1)
# A consumer's own login: call its models, see its schemas, manage its own keys and usage.
CONSUMER_SESSION_SCOPES = ("predict", "generate", "read", "admin")
Account = User | Consumer
FREE_FAILURES = 3
LOCK_AFTER = 10
LOCK_FOR = timedelta(minutes=15)


@audited("access.create_user", "name")
def create_user(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    name: str,
    password: str | None,
    is_admin: bool,
    now: datetime,
) -> User:
    """A new user; without a password the account cannot log in (it can still own keys)."""
    _require_admin(by)
    check_user_name(name)
    if password is not None:
        passwords.check_strength(password, name=name)
    user = User(
        name=name,
        is_admin=is_admin,
        created_at=now,
        password_hash=None if password is None else passwords.hash_password(password),
    )
    with uow:
        uow.users.add(user)
        uow.commit()
    return user


def list_users(uow: UnitOfWork, *, by: Principal | None) -> list[User]:
    _require_admin(by)
    with uow:
        return uow.users.all()


@audited(lambda a: f"access.{'dis' if a['disabled'] else 'en'}able_user", "name")
def set_user_disabled(
    uow: UnitOfWork, name: str, *, disabled: bool, by: Principal | None, now: datetime
) -> User:
    """Disable (or enable again) a user: their keys and sessions stop working at once."""
    _require_admin(by)
    with uow:
        user = _user(uow, name)
        if disabled and user.is_admin and _other_active_admins(uow, name) == 0:
            raise Conflict(f"{name!r} is the last active admin; make another admin first")
        updated = replace(user, disabled_at=now if disabled else None)
        uow.users.save(updated)
        if disabled:
            uow.sessions.revoke_all(name, now)
        uow.commit()
    return updated


@audited("access.set_password", "name")
def set_password(
    uow: UnitOfWork, name: str, new_password: str, *, by: Principal | None, now: datetime
) -> None:
    """An admin (or the local operator) sets someone's password; their sessions end."""
    _require_admin(by)
    passwords.check_strength(new_password, name=name)
    with uow:
        user = _user(uow, name)
        hashed = passwords.hash_password(new_password)
        uow.users.save(replace(user, password_hash=hashed, failed_logins=0, locked_until=None))
        uow.sessions.revoke_all(name, now)
        uow.commit()


@audited("auth.login", "{kind}:{name}")
def login(
    uow: UnitOfWork,
    server_secret: bytes,
    name: str,
    password: str,
    *,
    now: datetime,
    ttl: timedelta = SESSION_TTL,
    kind: OwnerKind = "user",
) -> tuple[Session, str]:
    """A new session and its bearer token, if the password is right and the account (a user,
    or with `kind="consumer"` a consumer logging in to its portal) may log in now."""
    wrong = Unauthenticated("the user name or password is wrong", code="invalid_credentials")
    with uow:
        account = _account(uow, kind, name)
        if account is None:
            passwords.verify(None, password)  # the same work as for a real account
            raise wrong
        _check_throttle(account, now)
        if not passwords.verify(account.password_hash, password):
            _save(uow, _failed(account, now))
            uow.commit()
            raise wrong
        if account.disabled_at is not None:
            raise Unauthenticated(f"the account {name!r} is disabled", code="account_disabled")
        if account.password_hash and passwords.needs_rehash(account.password_hash):
            account = replace(account, password_hash=passwords.hash_password(password))
        _save(uow, replace(account, failed_logins=0, last_failed_at=None, locked_until=None))
        session, token = open_session(uow, server_secret, name, now=now, ttl=ttl, kind=kind)
        uow.commit()
    return session, token


def open_session(
    uow: UnitOfWork,
    server_secret: bytes,
    name: str,
    *,
    now: datetime,
    ttl: timedelta = SESSION_TTL,
    kind: OwnerKind = "user",
) -> tuple[Session, str]:
    """A new login session for `name` inside `uow`'s transaction (the caller commits), and its
    bearer token: after a password (login) or a single sign-on (sso/service.py)."""
    token = keys.new_token(keys.SESSION_PREFIX)
    session = Session(
        prefix=token.prefix,
        digest=keys.digest(token, server_secret),
        user=name,
        created_at=now,
        expires_at=now + ttl,
        kind=kind,
    )
    uow.sessions.add(session)
    return session, str(token)


@audited("auth.logout", lambda a: a["principal"].actor)
def logout(uow: UnitOfWork, principal: Principal, *, now: datetime) -> None:
    if principal.key_prefix is not None:
        raise InvalidInput("logout ends a login session; to stop a key, revoke it")
    session_prefix = principal.session_prefix
    with uow:
        if session_prefix:
            uow.sessions.revoke(session_prefix, now)
        uow.commit()


@audited("auth.change_password", lambda a: a["principal"].actor)
def change_password(
    uow: UnitOfWork,
    principal: Principal,
    current: str,
    new: str,
    *,
    now: datetime,
) -> None:
    """A user or consumer changes their own password; every other session of theirs ends."""
    if principal.session_prefix is None:
        raise PermissionDenied("log in (not with a key) to change your password", code="forbidden")
    passwords.check_strength(new, name=principal.name)
    with uow:
        account = _account(uow, principal.kind, principal.name)
        if account is None:
            raise NotFound(f"no {principal.kind} named {principal.name!r}")
        _check_throttle(account, now)
        if not passwords.verify(account.password_hash, current):
            _save(uow, _failed(account, now))
            uow.commit()
            raise PermissionDenied("the current password is wrong", code="forbidden")
        _save(uow, replace(account, password_hash=passwords.hash_password(new), failed_logins=0))
        uow.sessions.revoke_all(
            principal.name, now, keep=principal.session_prefix, kind=principal.kind
        )
        uow.commit()


def session_principal(
    uow: UnitOfWork, server_secret: bytes, raw: str, *, now: datetime
) -> Principal:
    token = keys.parse_token(raw, keys.SESSION_PREFIX)
    if token is None:
        raise Unauthenticated("the session token is malformed", code="malformed_credentials")
    with uow:
        session = uow.sessions.get(token.prefix)
        if session is None or not keys.matches(token, session.digest, server_secret):
            raise Unauthenticated(
                "the session token is not valid; log in again", code="invalid_credentials"
            )
        if session.revoked_at is not None:
            raise Unauthenticated("the session has ended; log in again", code="session_revoked")
        if session.expires_at <= now:
            raise Unauthenticated("the session has expired; log in again", code="session_expired")
        account = _account(uow, session.kind, session.user)
        if account is None or account.disabled_at is not None:
            raise Unauthenticated(
                f"the account {session.user!r} is disabled", code="account_disabled"
            )
        return Principal(
            kind=session.kind,
            name=account.name,
            is_admin=isinstance(account, User) and account.is_admin,
            scopes=frozenset(SCOPES if session.kind == "user" else CONSUMER_SESSION_SCOPES),
            grants=grants_of(uow, session.kind, account),
            session_prefix=session.prefix,
            expires_at=session.expires_at,
            groups=frozenset(account.groups) if isinstance(account, User) else frozenset(),
        )


def grants_of(uow: UnitOfWork, kind: OwnerKind, account: Account) -> tuple[Grant, ...]:
    """The account's own grants, and a user's groups' (from their last sign-on or the SCIM
    provider): what every credential of the account carries, a session, an API key or a machine
    token alike."""
    found = list(uow.grants.of_subject(kind, account.name))
    if isinstance(account, User):
        for group in account.groups:
            found.extend(uow.grants.of_subject("group", group))
    return tuple(found)


@audited("access.create_consumer", "name")
def create_consumer(
    uow: UnitOfWork, *, by: Principal | None, name: str, description: str, now: datetime
) -> Consumer:
    _require_admin(by)
    check_name("consumer", name)
    consumer = Consumer(name=name, created_at=now, description=description.strip()[:1000])
    with uow:
        uow.consumers.add(consumer)
        uow.commit()
    return consumer


def list_consumers(uow: UnitOfWork, *, by: Principal | None) -> list[Consumer]:
    _require_admin(by)
    with uow:
        return uow.consumers.all()


def get_consumer(uow: UnitOfWork, name: str, *, by: Principal | None) -> Consumer:
    if by is not None and not by.is_admin and (by.kind, by.name) != ("consumer", name):
        raise PermissionDenied("only admins see other consumers", code="admin_only")
    with uow:
        consumer = uow.consumers.get(name)
    if consumer is None:
        raise NotFound(f"no consumer named {name!r}")
    return consumer


@audited(lambda a: f"access.{'dis' if a['disabled'] else 'en'}able_consumer", "name")
def set_consumer_disabled(
    uow: UnitOfWork, name: str, *, disabled: bool, by: Principal | None, now: datetime
) -> Consumer:
    """Disable (or enable again) a consumer: all of its keys stop working at once."""
    _require_admin(by)
    with uow:
        consumer = uow.consumers.get(name)
        if consumer is None:
            raise NotFound(f"no consumer named {name!r}")
        updated = replace(consumer, disabled_at=now if disabled else None)
        uow.consumers.save(updated)
        if disabled:
            uow.sessions.revoke_all(name, now, kind="consumer")
        uow.commit()
    return updated


BILLING_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


@audited("access.set_consumer_billing_id", "name")
def set_consumer_billing_id(
    uow: UnitOfWork, name: str, billing_id: str | None, *, by: Principal | None
) -> Consumer:
    """The consumer's id in the billing system (Stripe's `cus_…`), or None to clear it: the
    usage export names it; a consumer without one is not exported to Stripe."""
    _require_admin(by)
    if billing_id is not None and not BILLING_ID.match(billing_id):
        raise InvalidInput(
            "a billing id is 1 to 255 letters, digits and _ . : - (Stripe's look like "
            "cus_NffrFeUfNV2Hib)",
            errors=[FieldError("billing_id", "letters, digits and _ . : - only")],
        )
    with uow:
        consumer = uow.consumers.get(name)
        if consumer is None:
            raise NotFound(f"no consumer named {name!r}")
        updated = replace(consumer, billing_id=billing_id)
        uow.consumers.save(updated)
        uow.commit()
    return updated


@audited("access.set_consumer_password", "name")
def set_consumer_password(
    uow: UnitOfWork, name: str, new_password: str, *, by: Principal | None, now: datetime
) -> None:
    """An admin sets a consumer's portal password (none before: the consumer cannot log in);
    the consumer's sessions end."""
    _require_admin(by)
    passwords.check_strength(new_password, name=name)
    with uow:
        consumer = uow.consumers.get(name)
        if consumer is None:
            raise NotFound(f"no consumer named {name!r}")
        hashed = passwords.hash_password(new_password)
        uow.consumers.save(
            replace(consumer, password_hash=hashed, failed_logins=0, locked_until=None)
        )
        uow.sessions.revoke_all(name, now, kind="consumer")
        uow.commit()


def _account(uow: UnitOfWork, kind: OwnerKind, name: str) -> Account | None:
    return uow.users.get(name) if kind == "user" else uow.consumers.get(name)


def _save(uow: UnitOfWork, account: Account) -> None:
    if isinstance(account, User):
        uow.users.save(account)
    else:
        uow.consumers.save(account)


def _check_throttle(user: Account, now: datetime) -> None:
    if user.locked_until is not None and user.locked_until > now:
        wait = math.ceil((user.locked_until - now).total_seconds())
        raise TooManyRequests(
            f"too many failed logins: the account is locked for {wait} s more", retry_after=wait
        )
    if user.failed_logins >= FREE_FAILURES and user.last_failed_at is not None:
        allowed = user.last_failed_at + timedelta(seconds=2 ** (user.failed_logins - FREE_FAILURES))
        if now < allowed:
            wait = math.ceil((allowed - now).total_seconds())
            raise TooManyRequests(
                f"too many failed logins: wait {wait} s before trying again", retry_after=wait
            )


def _failed(user: Account, now: datetime) -> Account:
    failures = user.failed_logins + 1
    if failures >= LOCK_AFTER:
        return replace(user, failed_logins=0, last_failed_at=now, locked_until=now + LOCK_FOR)
    return replace(user, failed_logins=failures, last_failed_at=now)


def _user(uow: UnitOfWork, name: str) -> User:
    user = uow.users.get(name)
    if user is None:
        raise NotFound(f"no user named {name!r}; `mlgate users list` shows them")
    return user


def _other_active_admins(uow: UnitOfWork, name: str) -> int:
    return sum(
        1 for u in uow.users.all() if u.is_admin and u.disabled_at is None and u.name != name
    )


def _require_admin(by: Principal | None) -> None:
    if by is None:
        return
    from mlgate.access.policy import authorize_global

    authorize_global(by, "admin")
