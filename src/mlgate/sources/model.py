"""A data source as stored: its name, its URL and its kind. The repository protocol and the
use cases both speak of it, so it lives here, apart from the Source protocol that reads rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SourceConfig:
    """A named source as stored. `url` may hold a password: show `redacted_url` instead."""

    name: str
    url: str
    kind: str  # "sql" or "file"
    created_at: datetime

    @property
    def redacted_url(self) -> str:
        from mlgate.sources.urls import redact

        return redact(self.url)
