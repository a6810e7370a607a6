"""The data source seam: a configured source, and the protocol every kind implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pandas as pd


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


class Source(Protocol):
    """Where training rows come from. One small class per kind of source."""

    name: str

    def tables(self) -> list[str]: ...

    def read_table(self, table: str, limit: int | None = None) -> pd.DataFrame: ...

    def read_query(self, query: str) -> pd.DataFrame: ...

    def close(self) -> None: ...
