"""Users, consumers, keys, grants, sessions and the audit log: the same behaviour from the
in-memory fake and from SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mlgate.access.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    Session,
    Target,
    User,
)
from mlgate.errors import AlreadyExists, ConcurrentWrite, NotFound
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_api_keys_round_trip_filter_and_revoke(uow_factory: UowFactory) -> None:
    key = ApiKey("mlg_0123456789ab", "billing", "ef" * 32, ("predict",), T0)
    theirs = ApiKey(
        "mlg_ba9876543210", "app", "12" * 32, ("predict", "read"), T0 - HOUR,
        owner_kind="consumer", owner="acme", expires_at=T0 + 24 * HOUR,
        targets=(Target("churn", alias="production"), Target("spend", version=3)),
    )  # fmt: skip
    with uow_factory() as uow:
        uow.keys.add(key)
        uow.keys.add(theirs)
        uow.commit()
    with uow_factory() as uow:
        assert uow.keys.get(key.prefix) == key
        assert uow.keys.get(theirs.prefix) == theirs
        assert [k.prefix for k in uow.keys.all()] == [theirs.prefix, key.prefix]  # oldest first
        assert uow.keys.all(owner_kind="consumer", owner="acme") == [theirs]
        assert uow.keys.all(owner_kind="user", owner="acme") == []
        uow.keys.revoke(key.prefix, T0 + HOUR)
        uow.keys.touch(theirs.prefix, T0 + 2 * HOUR)
        uow.commit()
    with uow_factory() as uow:
        revoked, used = uow.keys.get(key.prefix), uow.keys.get(theirs.prefix)
        assert revoked is not None and revoked.revoked_at == T0 + HOUR and not revoked.active
        assert used is not None and used.last_used_at == T0 + 2 * HOUR
        with pytest.raises(NotFound):
            uow.keys.revoke("mlg_ffffffffffff", T0)


def test_a_key_rotates_once_per_digest_and_keeps_its_old_secret_for_the_overlap(
    uow_factory: UowFactory,
) -> None:
    key = ApiKey("mlg_0123456789ab", "billing", "ef" * 32, ("predict",), T0)
    with uow_factory() as uow:
        uow.keys.add(key)
        uow.commit()
    with uow_factory() as uow:
        uow.keys.rotate(key.prefix, current="ef" * 32, new="12" * 32,
                        previous_until=T0 + 2 * HOUR, at=T0 + HOUR)  # fmt: skip
        uow.commit()
    with uow_factory() as uow:
        rotated = uow.keys.get(key.prefix)
        assert rotated == replace(key, digest="12" * 32, previous_digest="ef" * 32,
                                  previous_until=T0 + 2 * HOUR, rotated_at=T0 + HOUR)  # fmt: skip
        assert rotated.state(T0 + HOUR) == "rotating" and rotated.state(T0 + 2 * HOUR) == "active"
        with pytest.raises(ConcurrentWrite):  # another rotation came first
            uow.keys.rotate(key.prefix, current="ef" * 32, new="34" * 32,
                            previous_until=None, at=T0 + HOUR)  # fmt: skip
    with uow_factory() as uow:
        uow.keys.rotate(key.prefix, current="12" * 32, new="56" * 32, previous_until=None,
                        at=T0 + 3 * HOUR)  # fmt: skip
        uow.commit()
    with uow_factory() as uow:
        again = uow.keys.get(key.prefix)
        assert again is not None and again.digest == "56" * 32
        assert (again.previous_digest, again.previous_until) == (None, None)


@pytest.mark.parametrize("kind", ["users", "consumers"])
def test_accounts_are_unique_by_name_and_saved_whole(uow_factory: UowFactory, kind: str) -> None:
    def make(name: str) -> User | Consumer:
        if kind == "users":
            return User(name, is_admin=name == "root", created_at=T0, password_hash="$argon2$x")
        return Consumer(name, T0, description=f"{name} inc.",
                        billing_id=f"cus_{name}" if name != "zed" else None)  # fmt: skip

    with uow_factory() as uow:
        repo = getattr(uow, kind)
        for name in ("zed", "ann", "root"):
            repo.add(make(name))
        uow.commit()
    with uow_factory() as uow:
        repo = getattr(uow, kind)
        assert [a.name for a in repo.all()] == ["ann", "root", "zed"]
        assert repo.get("ann") == make("ann")
        with pytest.raises(AlreadyExists):
            repo.add(make("ann"))
        locked = replace(make("ann"), failed_logins=3, last_failed_at=T0, locked_until=T0 + HOUR)
        repo.save(replace(locked, disabled_at=T0))
        uow.commit()
    with uow_factory() as uow:
        repo = getattr(uow, kind)
        assert repo.get("ann") == replace(locked, disabled_at=T0)
        assert repo.get("nobody") is None
        with pytest.raises(NotFound):
            repo.save(make("nobody"))


def test_grants_get_ids_and_are_found_by_subject_and_model(uow_factory: UowFactory) -> None:
    def grant(kind: str, subject: str, target: Target, role: str) -> Grant:
        return Grant(0, kind, subject, target, role, T0, "user:root")  # type: ignore[arg-type]

    with uow_factory() as uow:
        a = uow.grants.add(grant("user", "ann", Target("churn"), "owner"))
        b = uow.grants.add(
            grant("consumer", "acme", Target("churn", alias="production"), "consumer")
        )
        c = uow.grants.add(grant("user", "ann", Target("spend", version=2), "viewer"))
        uow.commit()
    assert len({a.id, b.id, c.id}) == 3 and a.id < b.id < c.id
    with uow_factory() as uow:
        assert uow.grants.get(b.id) == b
        assert uow.grants.of_subject("user", "ann") == [a, c]
        assert uow.grants.of_subject("consumer", "ann") == []
        assert uow.grants.of_model("churn") == [a, b]
        assert uow.grants.all() == [a, b, c]
        uow.grants.remove(a.id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.grants.get(a.id) is None
        with pytest.raises(NotFound):
            uow.grants.remove(a.id)


def test_sessions_are_revoked_one_or_all_but_the_kept(uow_factory: UowFactory) -> None:
    def session(prefix: str, user: str = "ann", kind: str = "user") -> Session:
        return Session(prefix, "ab" * 32, user, T0, T0 + 8 * HOUR, kind=kind)  # type: ignore[arg-type]

    with uow_factory() as uow:
        for s in (session("s1"), session("s2"), session("s3"), session("s4", kind="consumer")):
            uow.sessions.add(s)
        uow.sessions.add(session("s5", user="bo"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.sessions.get("s1") == session("s1")
        uow.sessions.revoke("s1", T0 + HOUR)
        uow.sessions.revoke("s1", T0 + 2 * HOUR)  # already revoked: the first time stays
        uow.sessions.revoke_all("ann", T0 + 3 * HOUR, keep="s2")
        uow.commit()
    with uow_factory() as uow:
        revoked = {p: getattr(uow.sessions.get(p), "revoked_at", "?") for p in
                   ("s1", "s2", "s3", "s4", "s5")}  # fmt: skip
    assert revoked == {"s1": T0 + HOUR, "s2": None, "s3": T0 + 3 * HOUR, "s4": None, "s5": None}


def test_the_audit_log_is_queried_newest_first(uow_factory: UowFactory) -> None:
    events = [
        AuditEvent(T0, "user:ann", "keys.create", "mlg_1", "127.0.0.1", "ok", {"scopes": ["read"]}),
        AuditEvent(T0 + HOUR, "user:ann", "keys.revoke", "mlg_1", "127.0.0.1", "ok"),
        AuditEvent(T0 + 2 * HOUR, "consumer:acme", "models.promote", "churn", "::1", "denied"),
        AuditEvent(T0 + 3 * HOUR, "x" * 200, "auth.login", "t" * 400, "10.0.0.1", "failed"),
    ]
    with uow_factory() as uow:
        for event in events:
            uow.audit.add(event)
        uow.commit()
    with uow_factory() as uow:
        every = uow.audit.query(AuditQuery())
        assert [e.action for e in every] == ["auth.login", "models.promote", "keys.revoke",
                                             "keys.create"]  # fmt: skip
        assert len({e.id for e in every}) == 4 and every[-1].detail == {"scopes": ["read"]}
        assert (len(every[0].actor), len(every[0].target)) == (160, 300)  # cut to the columns
        assert [e.action for e in uow.audit.query(AuditQuery(action="keys."))] == [
            "keys.revoke",
            "keys.create",
        ]
        assert uow.audit.query(AuditQuery(action="keys")) == []  # exact unless it ends in "."
        assert [e.result for e in uow.audit.query(AuditQuery(actor="user:ann", limit=1))] == ["ok"]
        window = AuditQuery(since=T0 + HOUR, until=T0 + 2 * HOUR)
        assert [e.action for e in uow.audit.query(window)] == ["keys.revoke"]
        assert [e.actor for e in uow.audit.query(AuditQuery(result="denied"))] == ["consumer:acme"]
        assert len(uow.audit.query(AuditQuery(target="mlg_1"))) == 2


def test_a_signed_on_user_keeps_its_subject_and_groups_and_a_grant_may_name_a_group(
    uow_factory: UowFactory,
) -> None:
    user = User("alice", False, T0, sso_subject="s-alice", groups=("data-science", "ml"))
    with uow_factory() as uow:
        uow.users.add(user)
        made = uow.grants.add(Grant(0, "group", "data-science", Target("churn"), "viewer", T0, "x"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.users.get("alice") == user
        uow.users.save(replace(user, groups=()))
        uow.commit()
    with uow_factory() as uow:
        assert uow.users.get("alice") == replace(user, groups=())
        assert uow.grants.of_subject("group", "data-science") == [made]
        assert uow.grants.of_subject("user", "data-science") == []
