"""API keys as stored: a public prefix and a keyed hash of the secret, never the secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCOPES = ("predict", "train")


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    name: str
    digest: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
