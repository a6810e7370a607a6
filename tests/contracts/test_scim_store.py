"""The SCIM repository under contract: on the fake and on every database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mlgate.access.model import ApiKey, Grant, Session, Target, User
from mlgate.errors import AlreadyExists
from mlgate.scim.model import Kind, ScimRecord
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def a_record(record_id: str, name: str, kind: Kind = "User", **body: object) -> ScimRecord:
    return ScimRecord(id=record_id, kind=kind, name=name, body={"userName": name, **body},
                      created_at=T0, updated_at=T0, external_id=f"ext-{record_id}")  # fmt: skip


def test_records_round_trip_by_id_and_by_name_in_any_case(uow_factory: UowFactory) -> None:
    first = a_record("u1", "Alice", title="Dr", emails=[{"value": "alice@example.com"}])
    group = a_record("g1", "data-science", "Group", members=[{"value": "u1"}])
    with uow_factory() as uow:
        uow.scim.add(first)
        uow.scim.add(replace(a_record("u2", "bob"), created_at=T0 + timedelta(seconds=1)))
        uow.scim.add(group)
        uow.commit()
    with uow_factory() as uow:
        assert uow.scim.get("User", "u1") == first
        assert uow.scim.get("Group", "u1") is None  # another kind's id
        assert uow.scim.named("User", "ALICE") == first
        assert [r.id for r in uow.scim.all("User")] == ["u1", "u2"]
        assert uow.scim.get("Group", "g1") == group and group.members() == ("u1",)
        with pytest.raises(AlreadyExists):
            uow.scim.add(a_record("u3", "alice"))
    with uow_factory() as uow:
        changed = replace(first, name="alicia", body={"userName": "alicia"}, version=2)
        uow.scim.save(changed)
        uow.scim.remove("User", "u2")
        uow.commit()
    with uow_factory() as uow:
        assert uow.scim.get("User", "u1") == changed
        assert uow.scim.named("User", "alice") is None
        assert uow.scim.get("User", "u2") is None


def test_renaming_a_user_moves_its_grants_keys_and_sessions(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.users.add(User(name="frank", is_admin=False, created_at=T0))
        uow.grants.add(Grant(id=0, subject_kind="user", subject="frank", target=Target("churn"),
                             role="viewer", created_at=T0, created_by="test"))  # fmt: skip
        uow.keys.add(ApiKey(prefix="abcdef012345", name="k", digest="d" * 64,
                            scopes=("predict",), created_at=T0, owner="frank"))  # fmt: skip
        uow.sessions.add(Session(prefix="s" * 16, digest="e" * 64, user="frank", created_at=T0,
                                 expires_at=T0 + timedelta(hours=1)))  # fmt: skip
        uow.commit()
    with uow_factory() as uow:
        uow.scim.rename_user("frank", "franklin")
        uow.commit()
    with uow_factory() as uow:
        assert uow.users.get("frank") is None and uow.users.get("franklin") is not None
        assert [g.subject for g in uow.grants.of_subject("user", "franklin")] == ["franklin"]
        assert [k.owner for k in uow.keys.all("user", "franklin")] == ["franklin"]
        session = uow.sessions.get("s" * 16)
        assert session is not None and session.user == "franklin"
