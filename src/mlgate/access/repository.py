"""The access storage seams; db/ implements them over SQLAlchemy."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mlgate.access.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    OwnerKind,
    Session,
    SubjectKind,
    User,
)


class KeyRepository(Protocol):
    def add(self, key: ApiKey) -> None: ...

    def get(self, prefix: str) -> ApiKey | None: ...

    def all(
        self, owner_kind: OwnerKind | None = None, owner: str | None = None
    ) -> list[ApiKey]: ...

    def revoke(self, prefix: str, at: datetime) -> None: ...

    def touch(self, prefix: str, at: datetime) -> None: ...

    def rotate(
        self, prefix: str, *, current: str, new: str, previous_until: datetime | None, at: datetime
    ) -> None:
        """Give the key the secret digested as `new`; the `current` one keeps working until
        `previous_until` (None: not at all). Raises ConcurrentWrite if the key's digest is no
        longer `current` (another rotation came first)."""
        ...


class UserRepository(Protocol):
    def add(self, user: User) -> None: ...

    def get(self, name: str) -> User | None: ...

    def all(self) -> list[User]: ...

    def save(self, user: User) -> None: ...


class ConsumerRepository(Protocol):
    def add(self, consumer: Consumer) -> None: ...

    def get(self, name: str) -> Consumer | None: ...

    def all(self) -> list[Consumer]: ...

    def save(self, consumer: Consumer) -> None: ...


class GrantRepository(Protocol):
    def add(self, grant: Grant) -> Grant: ...

    def get(self, grant_id: int) -> Grant | None: ...

    def of_subject(self, kind: SubjectKind, name: str) -> list[Grant]: ...

    def of_model(self, model: str) -> list[Grant]: ...

    def all(self) -> list[Grant]: ...

    def remove(self, grant_id: int) -> None: ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...

    def get(self, prefix: str) -> Session | None: ...

    def revoke(self, prefix: str, at: datetime) -> None: ...

    def revoke_all(
        self, user: str, at: datetime, *, keep: str | None = None, kind: OwnerKind = "user"
    ) -> None: ...


class AuditRepository(Protocol):
    def add(self, event: AuditEvent) -> None: ...

    def query(self, query: AuditQuery) -> list[AuditEvent]: ...
