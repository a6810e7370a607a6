"""SQLAlchemy implementations of the access repositories (users, consumers, keys, grants,
sessions, audit), all on one open connection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mlgate.access.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    OwnerKind,
    Session,
    SubjectKind,
    Target,
    User,
)
from mlgate.db.repositories import _aware, _utc
from mlgate.db.tables import api_keys, audit_events, consumers, grants, sessions, users
from mlgate.errors import AlreadyExists, ConcurrentWrite, NotFound


class SqlKeyRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, key: ApiKey) -> None:
        self._conn.execute(
            api_keys.insert().values(
                prefix=key.prefix,
                name=key.name,
                digest=key.digest,
                scopes=list(key.scopes),
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                owner_kind=key.owner_kind,
                owner=key.owner,
                expires_at=key.expires_at,
                targets=[str(t) for t in key.targets] or None,
                previous_digest=key.previous_digest,
                previous_until=key.previous_until,
                rotated_at=key.rotated_at,
            )
        )

    def get(self, prefix: str) -> ApiKey | None:
        row = self._conn.execute(api_keys.select().where(api_keys.c.prefix == prefix)).first()
        return None if row is None else self._load(row)

    def all(self, owner_kind: OwnerKind | None = None, owner: str | None = None) -> list[ApiKey]:
        query = api_keys.select().order_by(api_keys.c.created_at, api_keys.c.id)
        if owner_kind is not None:
            query = query.where(api_keys.c.owner_kind == owner_kind)
        if owner is not None:
            query = query.where(api_keys.c.owner == owner)
        return [self._load(row) for row in self._conn.execute(query)]

    def revoke(self, prefix: str, at: datetime) -> None:
        result = self._conn.execute(
            api_keys.update().where(api_keys.c.prefix == prefix).values(revoked_at=at)
        )
        if result.rowcount == 0:
            raise NotFound(f"no API key with prefix {prefix!r}")

    def touch(self, prefix: str, at: datetime) -> None:
        self._conn.execute(
            api_keys.update().where(api_keys.c.prefix == prefix).values(last_used_at=at)
        )

    def rotate(
        self, prefix: str, *, current: str, new: str, previous_until: datetime | None, at: datetime
    ) -> None:
        result = self._conn.execute(
            api_keys.update()
            .where(api_keys.c.prefix == prefix, api_keys.c.digest == current)
            .values(
                digest=new,
                previous_digest=None if previous_until is None else current,
                previous_until=previous_until,
                rotated_at=at,
            )
        )
        if result.rowcount == 0:
            raise ConcurrentWrite("another write changed the same record first; try again")

    @staticmethod
    def _load(row: sa.Row[Any]) -> ApiKey:
        return ApiKey(
            prefix=row.prefix,
            name=row.name,
            digest=row.digest,
            scopes=tuple(row.scopes),
            created_at=_aware(row.created_at),
            owner_kind=row.owner_kind,
            owner=row.owner,
            expires_at=_utc(row.expires_at),
            targets=tuple(Target.parse(t) for t in row.targets or ()),
            revoked_at=_utc(row.revoked_at),
            last_used_at=_utc(row.last_used_at),
            previous_digest=row.previous_digest,
            previous_until=_utc(row.previous_until),
            rotated_at=_utc(row.rotated_at),
        )


class SqlUserRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, user: User) -> None:
        if self.get(user.name) is not None:
            raise AlreadyExists(f"a user named {user.name!r} exists")
        self._conn.execute(users.insert().values(**self._values(user)))

    def get(self, name: str) -> User | None:
        row = self._conn.execute(users.select().where(users.c.name == name)).first()
        return None if row is None else self._load(row)

    def all(self) -> list[User]:
        rows = self._conn.execute(users.select().order_by(users.c.name))
        return [self._load(row) for row in rows]

    def save(self, user: User) -> None:
        result = self._conn.execute(
            users.update().where(users.c.name == user.name).values(**self._values(user))
        )
        if result.rowcount == 0:
            raise NotFound(f"no user named {user.name!r}")

    @staticmethod
    def _values(user: User) -> dict[str, Any]:
        return {
            "name": user.name,
            "is_admin": user.is_admin,
            "password_hash": user.password_hash,
            "created_at": user.created_at,
            "disabled_at": user.disabled_at,
            "failed_logins": user.failed_logins,
            "last_failed_at": user.last_failed_at,
            "locked_until": user.locked_until,
            "sso_subject": user.sso_subject,
            "groups": json.dumps(list(user.groups)) if user.groups else None,
        }

    @staticmethod
    def _load(row: sa.Row[Any]) -> User:
        return User(
            name=row.name,
            is_admin=bool(row.is_admin),
            created_at=_aware(row.created_at),
            password_hash=row.password_hash,
            disabled_at=_utc(row.disabled_at),
            failed_logins=row.failed_logins,
            last_failed_at=_utc(row.last_failed_at),
            locked_until=_utc(row.locked_until),
            sso_subject=row.sso_subject,
            groups=tuple(json.loads(row.groups)) if row.groups else (),
        )


class SqlConsumerRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, consumer: Consumer) -> None:
        if self.get(consumer.name) is not None:
            raise AlreadyExists(f"a consumer named {consumer.name!r} exists")
        self._conn.execute(consumers.insert().values(**self._values(consumer)))

    def get(self, name: str) -> Consumer | None:
        row = self._conn.execute(consumers.select().where(consumers.c.name == name)).first()
        return None if row is None else self._load(row)

    def all(self) -> list[Consumer]:
        rows = self._conn.execute(consumers.select().order_by(consumers.c.name))
        return [self._load(row) for row in rows]

    def save(self, consumer: Consumer) -> None:
        result = self._conn.execute(
            consumers.update()
            .where(consumers.c.name == consumer.name)
            .values(**self._values(consumer))
        )
        if result.rowcount == 0:
            raise NotFound(f"no consumer named {consumer.name!r}")

    @staticmethod
    def _values(consumer: Consumer) -> dict[str, Any]:
        return {
            "name": consumer.name,
            "description": consumer.description,
            "created_at": consumer.created_at,
            "disabled_at": consumer.disabled_at,
            "password_hash": consumer.password_hash,
            "failed_logins": consumer.failed_logins,
            "last_failed_at": consumer.last_failed_at,
            "locked_until": consumer.locked_until,
            "billing_id": consumer.billing_id,
        }

    @staticmethod
    def _load(row: sa.Row[Any]) -> Consumer:
        return Consumer(
            name=row.name,
            created_at=_aware(row.created_at),
            description=row.description or "",
            disabled_at=_utc(row.disabled_at),
            password_hash=row.password_hash,
            failed_logins=row.failed_logins or 0,
            last_failed_at=_utc(row.last_failed_at),
            locked_until=_utc(row.locked_until),
            billing_id=row.billing_id,
        )


class SqlGrantRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, grant: Grant) -> Grant:
        result = self._conn.execute(
            grants.insert().values(
                subject_kind=grant.subject_kind,
                subject=grant.subject,
                model=grant.target.model,
                alias=grant.target.alias,
                version=grant.target.version,
                role=grant.role,
                created_at=grant.created_at,
                created_by=grant.created_by,
            )
        )
        (grant_id,) = result.inserted_primary_key or (None,)
        assert grant_id is not None
        return self.get(int(grant_id)) or grant

    def get(self, grant_id: int) -> Grant | None:
        row = self._conn.execute(grants.select().where(grants.c.id == grant_id)).first()
        return None if row is None else self._load(row)

    def of_subject(self, kind: SubjectKind, name: str) -> list[Grant]:
        return self._where((grants.c.subject_kind == kind) & (grants.c.subject == name))

    def of_model(self, model: str) -> list[Grant]:
        return self._where(grants.c.model == model)

    def all(self) -> list[Grant]:
        return self._where(sa.true())

    def remove(self, grant_id: int) -> None:
        result = self._conn.execute(grants.delete().where(grants.c.id == grant_id))
        if result.rowcount == 0:
            raise NotFound(f"no grant with id {grant_id}")

    def _where(self, condition: sa.ColumnElement[bool]) -> list[Grant]:
        rows = self._conn.execute(grants.select().where(condition).order_by(grants.c.id))
        return [self._load(row) for row in rows]

    @staticmethod
    def _load(row: sa.Row[Any]) -> Grant:
        return Grant(
            id=row.id,
            subject_kind=row.subject_kind,
            subject=row.subject,
            target=Target(row.model, row.alias, row.version),
            role=row.role,
            created_at=_aware(row.created_at),
            created_by=row.created_by,
        )


class SqlSessionRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, session: Session) -> None:
        self._conn.execute(
            sessions.insert().values(
                prefix=session.prefix,
                digest=session.digest,
                user=session.user,
                subject_kind=session.kind,
                created_at=session.created_at,
                expires_at=session.expires_at,
                revoked_at=session.revoked_at,
            )
        )

    def get(self, prefix: str) -> Session | None:
        row = self._conn.execute(sessions.select().where(sessions.c.prefix == prefix)).first()
        if row is None:
            return None
        return Session(
            prefix=row.prefix,
            digest=row.digest,
            user=row.user,
            created_at=_aware(row.created_at),
            expires_at=_aware(row.expires_at),
            revoked_at=_utc(row.revoked_at),
            kind=row.subject_kind,
        )

    def revoke(self, prefix: str, at: datetime) -> None:
        self._conn.execute(
            sessions.update()
            .where(sessions.c.prefix == prefix, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    def revoke_all(
        self, user: str, at: datetime, *, keep: str | None = None, kind: OwnerKind = "user"
    ) -> None:
        query = sessions.update().where(
            sessions.c.user == user,
            sessions.c.subject_kind == kind,
            sessions.c.revoked_at.is_(None),
        )
        if keep is not None:
            query = query.where(sessions.c.prefix != keep)
        self._conn.execute(query.values(revoked_at=at))


class SqlAuditRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, event: AuditEvent) -> None:
        self._conn.execute(
            audit_events.insert().values(
                at=event.at,
                actor=event.actor[:160],
                action=event.action[:64],
                target=event.target[:300],
                address=event.address[:64],
                result=event.result[:16],
                detail=event.detail,
            )
        )

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        c = audit_events.c
        select = audit_events.select().order_by(c.at.desc(), c.id.desc()).limit(query.limit)
        if query.actor:
            select = select.where(c.actor == query.actor)
        if query.action:
            if query.action.endswith("."):
                select = select.where(c.action.startswith(query.action, autoescape=True))
            else:
                select = select.where(c.action == query.action)
        if query.target:
            select = select.where(c.target == query.target)
        if query.result:
            select = select.where(c.result == query.result)
        if query.since:
            select = select.where(c.at >= query.since)
        if query.until:
            select = select.where(c.at < query.until)
        return [
            AuditEvent(
                id=row.id,
                at=_aware(row.at),
                actor=row.actor,
                action=row.action,
                target=row.target,
                address=row.address,
                result=row.result,
                detail=dict(row.detail or {}),
            )
            for row in self._conn.execute(select)
        ]
