"""SQLAlchemy implementation of SCIM provisioning's repository."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mlgate.db.repositories import _aware
from mlgate.db.tables import api_keys, grants, scim_resources, sessions, users
from mlgate.errors import AlreadyExists
from mlgate.scim.model import Kind, ScimRecord


class SqlScimRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, record: ScimRecord) -> None:
        if self.named(record.kind, record.name) is not None:
            raise AlreadyExists(f"a SCIM {record.kind} named {record.name!r} exists")
        self._conn.execute(scim_resources.insert().values(id=record.id, **self._values(record)))

    def get(self, kind: Kind, record_id: str) -> ScimRecord | None:
        row = self._conn.execute(
            scim_resources.select().where(
                scim_resources.c.kind == kind, scim_resources.c.id == record_id
            )
        ).first()
        return None if row is None else self._load(row)

    def named(self, kind: Kind, name: str) -> ScimRecord | None:
        row = self._conn.execute(
            scim_resources.select().where(
                scim_resources.c.kind == kind, scim_resources.c.folded == name.lower()
            )
        ).first()
        return None if row is None else self._load(row)

    def all(self, kind: Kind) -> list[ScimRecord]:
        rows = self._conn.execute(
            scim_resources.select()
            .where(scim_resources.c.kind == kind)
            .order_by(scim_resources.c.created_at, scim_resources.c.id)
        )
        return [self._load(row) for row in rows]

    def save(self, record: ScimRecord) -> None:
        self._conn.execute(
            scim_resources.update()
            .where(scim_resources.c.id == record.id)
            .values(**self._values(record))
        )

    def remove(self, kind: Kind, record_id: str) -> None:
        self._conn.execute(
            scim_resources.delete().where(
                scim_resources.c.kind == kind, scim_resources.c.id == record_id
            )
        )

    def rename_user(self, old: str, new: str) -> None:
        self._conn.execute(users.update().where(users.c.name == old).values(name=new))
        self._conn.execute(
            grants.update()
            .where(grants.c.subject_kind == "user", grants.c.subject == old)
            .values(subject=new)
        )
        self._conn.execute(
            api_keys.update()
            .where(api_keys.c.owner_kind == "user", api_keys.c.owner == old)
            .values(owner=new)
        )
        self._conn.execute(
            sessions.update()
            .where(sessions.c.subject_kind == "user", sessions.c.user == old)
            .values(user=new)
        )

    @staticmethod
    def _values(record: ScimRecord) -> dict[str, Any]:
        return {
            "kind": record.kind,
            "name": record.name,
            "folded": record.name.lower(),
            "external_id": record.external_id,
            "body": json.dumps(record.body),
            "version": record.version,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    @staticmethod
    def _load(row: sa.Row[Any]) -> ScimRecord:
        return ScimRecord(
            id=row.id,
            kind=row.kind,
            name=row.name,
            body=json.loads(row.body),
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            version=int(row.version),
            external_id=row.external_id,
        )
