"""The source storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from typing import Protocol

from mlgate.sources.model import SourceConfig


class SourceRepository(Protocol):
    def add(self, source: SourceConfig) -> None: ...

    def get(self, name: str) -> SourceConfig | None: ...

    def all(self) -> list[SourceConfig]: ...

    def remove(self, name: str) -> None: ...
