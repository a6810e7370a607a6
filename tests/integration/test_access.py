"""Users, logins, keys, grants, sealing and the audit log, on the real metadata databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mlgate.access import accounts, audit, grants, keys, passwords, service
from mlgate.access.model import AuditQuery, Target
from mlgate.bootstrap import Services
from mlgate.db import tables
from mlgate.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
)
from mlgate.registry.model import RegisteredModel
from mlgate.sources import service as sources
from tests.conftest import make_services
from tests.secrets_watch import remember

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PASSWORD = remember("correct horse battery staple")


def bearer(token: str) -> str:
    return f"Bearer {token}"


def new_user(services: Services, name: str = "ann", *, admin: bool = False) -> None:
    accounts.create_user(
        services.uow(), by=None, name=name, password=PASSWORD, is_admin=admin, now=T0
    )


def test_passwords_are_argon2id_at_owasp_strength_or_above() -> None:
    hashed = passwords.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=2$")
    assert PASSWORD not in hashed
    assert passwords.verify(hashed, PASSWORD) and not passwords.verify(hashed, PASSWORD + "!")
    assert not passwords.verify(None, PASSWORD)
    with pytest.raises(InvalidInput, match="12 to 1024"):
        passwords.check_strength("short", name="ann")
    with pytest.raises(InvalidInput, match="user's name"):
        passwords.check_strength("ann-is-my-password", name="ann")


def test_failed_logins_slow_down_then_lock_and_a_success_resets(services: Services) -> None:
    new_user(services)
    uow, secret = services.uow, services.server_secret
    now = T0
    for _ in range(accounts.FREE_FAILURES):  # free failures
        with pytest.raises(Unauthenticated):
            accounts.login(uow(), secret, "ann", "wrong password!", now=now)
    with pytest.raises(TooManyRequests) as early:  # too soon: not even checked
        accounts.login(uow(), secret, "ann", PASSWORD, now=now)
    assert early.value.retry_after == 1
    delays = []
    failures = accounts.FREE_FAILURES
    while failures < accounts.LOCK_AFTER:
        wait = 2 ** (failures - accounts.FREE_FAILURES)
        delays.append(wait)
        with pytest.raises(TooManyRequests):
            accounts.login(
                uow(), secret, "ann", "wrong password!", now=now + timedelta(seconds=wait - 0.5)
            )
        now += timedelta(seconds=wait)
        with pytest.raises(Unauthenticated):
            accounts.login(uow(), secret, "ann", "wrong password!", now=now)
        failures += 1
    assert delays == [1, 2, 4, 8, 16, 32, 64]
    # The tenth failure locked the account: even the right password waits 15 minutes.
    with pytest.raises(TooManyRequests, match="locked") as locked:
        accounts.login(uow(), secret, "ann", PASSWORD, now=now + timedelta(minutes=14))
    assert 55 <= locked.value.retry_after <= 61
    session, token = accounts.login(uow(), secret, "ann", PASSWORD, now=now + timedelta(minutes=15))
    with uow() as u:
        user = u.users.get("ann")
    assert user is not None and user.failed_logins == 0 and user.locked_until is None
    assert token.startswith("mls_") and session.expires_at == now + timedelta(minutes=75)


def test_unknown_users_get_the_same_answer_as_wrong_passwords(services: Services) -> None:
    new_user(services)
    answers = []
    for name, password in [("nobody", PASSWORD), ("ann", "wrong password!")]:
        with pytest.raises(Unauthenticated) as caught:
            accounts.login(services.uow(), services.server_secret, name, password, now=T0)
        answers.append((str(caught.value), caught.value.code))
    assert answers[0] == answers[1]


def test_sessions_carry_every_scope_and_end_at_logout_expiry_or_password_change(
    services: Services,
) -> None:
    new_user(services)
    login = accounts.login
    _, first = login(services.uow(), services.server_secret, "ann", PASSWORD, now=T0)
    _, second = login(services.uow(), services.server_secret, "ann", PASSWORD, now=T0)
    me = service.authenticate(services.uow(), services.server_secret, bearer(first), now=T0)
    assert me.actor == "user:ann" and me.scopes == frozenset(
        ("predict", "generate", "read", "train", "admin")
    )

    def code(token: str, at: datetime) -> str:
        with pytest.raises(Unauthenticated) as caught:
            service.authenticate(services.uow(), services.server_secret, bearer(token), now=at)
        return caught.value.code

    assert code(first, T0 + timedelta(hours=1)) == "session_expired"
    new = "a brand new passphrase"
    accounts.change_password(services.uow(), me, PASSWORD, new, now=T0)
    assert code(second, T0) == "session_revoked"  # other sessions end, this one lives on
    assert service.authenticate(services.uow(), services.server_secret, bearer(first), now=T0)
    accounts.logout(services.uow(), me, now=T0)
    assert code(first, T0) == "session_revoked"
    with pytest.raises(Unauthenticated):
        login(services.uow(), services.server_secret, "ann", PASSWORD, now=T0 + timedelta(hours=2))
    login(services.uow(), services.server_secret, "ann", new, now=T0 + timedelta(hours=2))


def test_keys_say_why_they_are_refused(services: Services) -> None:
    new_user(services)
    secret = services.server_secret

    def make(**kw: object) -> str:
        _, token = service.create_key(
            services.uow(),
            secret,
            by=None,
            owner_kind="user",
            owner="ann",
            name="k",
            now=T0,
            **kw,  # type: ignore[arg-type]
        )
        return token

    def code(header: str | None, at: datetime = T0) -> str:
        with pytest.raises(Unauthenticated) as caught:
            service.authenticate(services.uow(), secret, header, now=at)
        return caught.value.code

    token = make(expires_at=T0 + timedelta(days=1))
    assert service.authenticate(services.uow(), secret, bearer(token), now=T0).name == "ann"
    assert code(bearer(token), T0 + timedelta(days=1)) == "key_expired"
    assert code(None) == "missing_credentials"
    assert code("Basic abc") == "missing_credentials"
    assert code("Bearer mlg_zz") == "malformed_credentials"
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert code(bearer(typo)) == "bad_checksum"  # refused on its text alone
    assert code(bearer(str(keys.with_new_secret(token[:16])))) == "invalid_credentials"
    assert code(bearer("mlg_0123456789ab_" + "x" * 43)) == "invalid_credentials"
    other = make()
    service.revoke_key(services.uow(), other[:16], by=None, now=T0)
    assert code(bearer(other)) == "key_revoked"
    third = make()
    accounts.set_user_disabled(services.uow(), "ann", disabled=True, by=None, now=T0)
    assert code(bearer(third)) == "account_disabled"


def test_last_used_is_recorded_at_most_once_a_minute(services: Services) -> None:
    new_user(services)
    key, token = service.create_key(
        services.uow(),
        services.server_secret,
        by=None,
        owner_kind="user",
        owner="ann",
        name="k",
        now=T0,
    )
    for seconds in (0, 30, 61):
        service.authenticate(
            services.uow(),
            services.server_secret,
            bearer(token),
            now=T0 + timedelta(seconds=seconds),
        )
    with services.uow() as uow:
        stored = uow.keys.get(key.prefix)
    assert stored is not None and stored.last_used_at == T0 + timedelta(seconds=61)


def test_who_may_make_which_keys(services: Services) -> None:
    new_user(services)
    new_user(services, "bob")
    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=T0)
    secret = services.server_secret
    with pytest.raises(InvalidInput, match="consumer's key may only"):
        service.create_key(
            services.uow(),
            secret,
            by=None,
            owner_kind="consumer",
            owner="acme",
            name="k",
            now=T0,
            scopes=("train",),
        )
    with pytest.raises(InvalidInput, match="unknown scope"):
        service.create_key(
            services.uow(),
            secret,
            by=None,
            owner_kind="user",
            owner="ann",
            name="k",
            now=T0,
            scopes=("root",),
        )
    with pytest.raises(NotFound, match="no user named 'carl'"):
        service.create_key(
            services.uow(), secret, by=None, owner_kind="user", owner="carl", name="k", now=T0
        )
    _, session = accounts.login(services.uow(), secret, "ann", PASSWORD, now=T0)
    ann = service.authenticate(services.uow(), secret, bearer(session), now=T0)
    with pytest.raises(PermissionDenied, match="their own keys"):
        service.create_key(
            services.uow(), secret, by=ann, owner_kind="user", owner="bob", name="k", now=T0
        )
    _, own = service.create_key(
        services.uow(),
        secret,
        by=ann,
        owner_kind="user",
        owner="ann",
        name="k",
        now=T0,
        scopes=("predict",),
    )
    narrow = service.authenticate(services.uow(), secret, bearer(own), now=T0)
    with pytest.raises(PermissionDenied):  # a predict key cannot mint keys, let alone wider ones
        service.create_key(
            services.uow(),
            secret,
            by=narrow,
            owner_kind="user",
            owner="ann",
            name="k2",
            now=T0,
            scopes=("train",),
        )
    assert [k.owner for k in service.list_keys(services.uow(), by=ann)] == ["ann"]
    with pytest.raises(NotFound):  # bob's keys are invisible to ann
        _, bobs = service.create_key(
            services.uow(), secret, by=None, owner_kind="user", owner="bob", name="b", now=T0
        )
        service.revoke_key(services.uow(), bobs[:16], by=ann, now=T0)


def test_the_last_admin_and_the_last_owner_stay(services: Services) -> None:
    new_user(services, "root", admin=True)
    with pytest.raises(Conflict, match="last active admin"):
        accounts.set_user_disabled(services.uow(), "root", disabled=True, by=None, now=T0)
    new_user(services, "ann")
    with services.uow() as uow:
        uow.models.add(
            RegisteredModel(
                name="churn", task="classification", target="y", latest_version=0, created_at=T0
            )
        )
        uow.commit()
    made = grants.add_grant(
        services.uow(),
        by=None,
        subject_kind="user",
        subject="ann",
        target="churn",
        role="owner",
        now=T0,
        actor="test",
    )
    with pytest.raises(PermissionDenied, match="last owner"):
        grants.remove_grant(services.uow(), made.id, by=None)
    with pytest.raises(InvalidInput, match="consumers can only"):
        grants.add_grant(
            services.uow(),
            by=None,
            subject_kind="consumer",
            subject="x",
            target="churn",
            role="viewer",
            now=T0,
            actor="t",
        )
    scoped = grants.add_grant(
        services.uow(),
        by=None,
        subject_kind="user",
        subject="root",
        target="churn@production",
        role="viewer",
        now=T0,
        actor="t",
    )
    assert scoped.target == Target("churn", alias="production")


def test_the_audit_log_is_append_only_in_the_database(any_services: Services) -> None:
    audit.record(
        any_services.uow(), at=T0, actor="user:ann", action="keys.create", target="mlg_x",
        address="127.0.0.1", result="ok", detail={"status": 201},
    )  # fmt: skip
    found = audit.query(any_services.uow(), AuditQuery(action="keys."))
    assert [(e.actor, e.result, e.detail) for e in found] == [("user:ann", "ok", {"status": 201})]
    for statement in (
        tables.audit_events.update().values(result="denied"),
        tables.audit_events.delete(),
    ):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            any_services.engine.begin() as conn,
        ):
            conn.execute(statement)
    assert len(audit.query(any_services.uow(), AuditQuery())) == 1


def test_source_credentials_are_sealed_at_rest(any_services: Services, tmp_path: Path) -> None:
    source_password = remember("s3cret-source-pw")
    url = (
        any_services.settings.database_url
        if any_services.engine.dialect.name == "postgresql"
        else None
    )
    url = url or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    with_password = (
        sa.engine.make_url(url).set(password=source_password).render_as_string(hide_password=False)
    )
    sources.add_source(
        any_services.uow(),
        any_services.open_source,
        name="pg",
        url=with_password,
        cwd=tmp_path,
        now=T0,
    )
    with any_services.engine.connect() as conn:
        stored = conn.execute(sa.select(tables.sources.c.url)).scalar_one()
    assert stored.startswith("fernet:") and source_password not in stored
    assert source_password in sources.get_source(any_services.uow(), "pg").url
    # A row written before sealing existed is sealed at the next start.
    with any_services.engine.begin() as conn:
        conn.execute(tables.sources.update().values(url=with_password))
    home = any_services.settings.home
    db_url = any_services.settings.database_url
    again = make_services(home, db_url if "postgresql" in db_url else None)
    try:
        with again.engine.connect() as conn:
            assert conn.execute(sa.select(tables.sources.c.url)).scalar_one().startswith("fernet:")
        assert sources.get_source(again.uow(), "pg").url == with_password
    finally:
        again.close()


def test_migrations_create_exactly_the_declared_tables(any_services: Services) -> None:
    with any_services.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == []


def test_consumers_log_in_to_their_portal_with_their_own_throttle_and_sessions(
    any_services: Services,
) -> None:
    s = any_services
    accounts.create_consumer(s.uow(), by=None, name="acme", description="", now=T0)
    new_user(s, "acme")  # a user of the same name: its sessions are not the consumer's
    with pytest.raises(Unauthenticated):  # no password yet: no portal login
        accounts.login(s.uow(), s.server_secret, "acme", PASSWORD, now=T0, kind="consumer")
    with pytest.raises(InvalidInput, match="name"):
        accounts.set_consumer_password(s.uow(), "acme", "acme portal 2026", by=None, now=T0)
    accounts.set_consumer_password(s.uow(), "acme", PASSWORD, by=None, now=T0)
    session, token = accounts.login(
        s.uow(), s.server_secret, "acme", PASSWORD, now=T0, kind="consumer"
    )
    assert session.kind == "consumer"
    principal = service.authenticate(s.uow(), s.server_secret, bearer(token), now=T0)
    assert (principal.kind, principal.name, principal.is_admin) == ("consumer", "acme", False)
    assert principal.scopes == frozenset(accounts.CONSUMER_SESSION_SCOPES)
    # Its own keys, yes; anyone else's or an admin's action, no.
    _, key = service.create_key(
        s.uow(), s.server_secret, by=principal, owner_kind="consumer", owner="acme",
        name="mine", now=T0,
    )  # fmt: skip
    assert key.startswith("mlg_")
    with pytest.raises(PermissionDenied):
        service.create_key(
            s.uow(), s.server_secret, by=principal, owner_kind="user", owner="acme",
            name="not mine", now=T0,
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        accounts.list_consumers(s.uow(), by=principal)
    # The user acme's password change ends the user's sessions, not the consumer's.
    user_session, user_token = accounts.login(s.uow(), s.server_secret, "acme", PASSWORD, now=T0)
    accounts.set_password(s.uow(), "acme", "another long password", by=None, now=T0)
    with pytest.raises(Unauthenticated):
        service.authenticate(s.uow(), s.server_secret, bearer(user_token), now=T0)
    assert service.authenticate(s.uow(), s.server_secret, bearer(token), now=T0).kind == "consumer"
    # Disabling the consumer ends its sessions at once.
    accounts.set_consumer_disabled(s.uow(), "acme", disabled=True, by=None, now=T0)
    with pytest.raises(Unauthenticated):
        service.authenticate(s.uow(), s.server_secret, bearer(token), now=T0)
    # Wrong passwords slow consumers down like users.
    accounts.set_consumer_disabled(s.uow(), "acme", disabled=False, by=None, now=T0)
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(Unauthenticated):
            accounts.login(s.uow(), s.server_secret, "acme", "wrong", now=T0, kind="consumer")
    with pytest.raises(TooManyRequests):
        accounts.login(s.uow(), s.server_secret, "acme", "wrong", now=T0, kind="consumer")
    assert user_session.kind == "user"


def test_the_cli_sets_a_consumers_portal_password(services: Services) -> None:
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=T0)
    result = CliRunner().invoke(
        cli, ["consumers", "password", "acme", "--password-stdin"], input=PASSWORD + "\n",
        obj=services,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "/portal" in result.output
    session, _ = accounts.login(
        services.uow(), services.server_secret, "acme", PASSWORD, now=T0, kind="consumer"
    )
    assert (session.kind, session.user) == ("consumer", "acme")
