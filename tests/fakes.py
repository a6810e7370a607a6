"""Test doubles: real classes that hold their state in memory."""

from __future__ import annotations

import pandas as pd


class InMemorySource:
    """A source whose only table, and answer to every query, is one frame."""

    def __init__(self, name: str, frame: pd.DataFrame, table: str = "rows") -> None:
        self.name = name
        self._frame = frame
        self._table = table
        self.closed = False

    def tables(self) -> list[str]:
        return [self._table]

    def read_table(self, table: str, limit: int | None = None) -> pd.DataFrame:
        frame = self._frame.copy()
        return frame if limit is None else frame.head(limit)

    def read_query(self, query: str) -> pd.DataFrame:
        return self._frame.copy()

    def close(self) -> None:
        self.closed = True
