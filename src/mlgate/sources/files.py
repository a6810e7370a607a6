"""CSV and Parquet files: one file is one table, named after the file without its suffix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mlgate.errors import InvalidInput, NotFound, SourceError
from mlgate.sources.urls import FILE_SUFFIXES


class FileSource:
    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self._path = Path(path)

    def tables(self) -> list[str]:
        return sorted(self._files())

    def read_table(self, table: str, limit: int | None = None) -> pd.DataFrame:
        files = self._files()
        if table not in files:
            tables = ", ".join(sorted(files))
            raise NotFound(f"source {self.name!r} has no table {table!r}; its tables: {tables}")
        path = files[table]
        try:
            if path.suffix.lower() == ".csv":
                return pd.read_csv(path, nrows=limit)
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise SourceError(f"source {self.name!r} could not read {path.name}: {exc}") from None
        return frame if limit is None else frame.head(limit)

    def iter_table(self, table: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The table in chunks of at most `chunk_rows` rows, never all of it in memory."""
        files = self._files()
        if table not in files:
            tables = ", ".join(sorted(files))
            raise NotFound(f"source {self.name!r} has no table {table!r}; its tables: {tables}")
        path = files[table]
        try:
            if path.suffix.lower() == ".csv":
                yield from pd.read_csv(path, chunksize=chunk_rows)
                return
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise SourceError(f"source {self.name!r} could not read {path.name}: {exc}") from None

    def iter_query(self, query: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        self.read_query(query)
        return iter(())

    def count(self, table: str) -> int | None:
        path = self._files().get(table)
        if path is None or path.suffix.lower() == ".csv":
            return None
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)

    def write_table(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        raise InvalidInput(
            f"source {self.name!r} is a file source; write predictions with --output FILE"
        )

    def read_query(self, query: str) -> pd.DataFrame:
        raise InvalidInput(
            f"source {self.name!r} is a file source and runs no SQL; use --table "
            f"({', '.join(self.tables())}), or load the file into a database"
        )

    def close(self) -> None:
        pass

    def _files(self) -> dict[str, Path]:
        if not self._path.exists():
            raise SourceError(f"source {self.name!r}: {self._path} no longer exists")
        candidates = [self._path] if self._path.is_file() else sorted(self._path.iterdir())
        return {p.stem: p for p in candidates if p.suffix.lower() in FILE_SUFFIXES}
