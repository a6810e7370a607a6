"""The registry's storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from mlgate.registry.model import AliasEvent, ModelVersion, RegisteredModel


class ModelRepository(Protocol):
    def get(self, name: str) -> RegisteredModel | None: ...

    def add(self, model: RegisteredModel) -> None: ...

    def all(self) -> list[RegisteredModel]: ...

    def add_version(self, version: ModelVersion) -> None:
        """Insert a version and move the model's latest_version to it."""
        ...

    def get_version(self, name: str, number: int) -> ModelVersion | None: ...

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of `name`, oldest first."""
        ...

    def archive(self, name: str, number: int, at: datetime | None) -> None: ...

    def aliases(self, name: str) -> dict[str, int]: ...

    def all_aliases(self) -> dict[tuple[str, str], int]: ...

    def move_alias(self, event: AliasEvent) -> None:
        """Point the alias at event.to_version and append the event to its history."""
        ...

    def alias_history(self, name: str, alias: str) -> list[AliasEvent]: ...

    def add_comparison(
        self, name: str, a: int, b: int, result: dict[str, Any], at: datetime
    ) -> None: ...

    def comparisons(self, name: str) -> list[dict[str, Any]]: ...

    def annotate(
        self, name: str, number: int | None, *, description: str | None, tags: dict[str, str]
    ) -> None: ...

    def delete_version(self, name: str, number: int) -> None: ...

    def add_pending(self, keys: list[str], owner: str, at: datetime) -> None:
        """Journal files about to be written, so that a crash mid-way can be cleaned up."""
        ...

    def remove_pending(self, keys: list[str]) -> None: ...

    def pending(self) -> list[tuple[str, str, datetime]]:
        """(key, owner, since) of every journaled write."""
        ...
