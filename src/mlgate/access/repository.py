"""The API key storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mlgate.access.model import ApiKey


class KeyRepository(Protocol):
    def add(self, key: ApiKey) -> None: ...

    def get(self, prefix: str) -> ApiKey | None: ...

    def all(self) -> list[ApiKey]: ...

    def revoke(self, prefix: str, at: datetime) -> None: ...
