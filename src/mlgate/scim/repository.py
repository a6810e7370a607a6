"""SCIM provisioning's storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from typing import Protocol

from mlgate.scim.model import Kind, ScimRecord


class ScimRepository(Protocol):
    def add(self, record: ScimRecord) -> None:
        """Raises AlreadyExists when a record of the kind has the name (any letter case)."""
        ...

    def get(self, kind: Kind, record_id: str) -> ScimRecord | None: ...

    def named(self, kind: Kind, name: str) -> ScimRecord | None:
        """The record of `kind` whose name is `name`, in any letter case."""
        ...

    def all(self, kind: Kind) -> list[ScimRecord]:
        """Oldest first."""
        ...

    def save(self, record: ScimRecord) -> None: ...

    def remove(self, kind: Kind, record_id: str) -> None: ...

    def rename_user(self, old: str, new: str) -> None:
        """The mlgate user `old` is called `new` from now on: its row, its grants, its keys
        and its sessions (the provider changed the userName)."""
        ...
