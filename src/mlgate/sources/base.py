"""The data source seam: the protocol every kind of source implements (the configured source,
SourceConfig, is a record in sources/model.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the protocol is about frames; naming them loads nothing
    import pandas as pd


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
