"""The data source seam: a configured source, and the protocol every kind implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the protocol is about frames; naming them loads nothing
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

    def iter_table(self, table: str, chunk_rows: int) -> Iterator[pd.DataFrame]: ...

    def iter_query(self, query: str, chunk_rows: int) -> Iterator[pd.DataFrame]: ...

    def count(self, table: str) -> int | None:
        """The table's row count where it is cheap to know, else None."""
        ...

    def write_table(self, table: str, chunks: Iterator[pd.DataFrame]) -> int: ...

    def close(self) -> None: ...
