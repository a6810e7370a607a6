"""Any database SQLAlchemy can reach: PostgreSQL, MySQL/MariaDB, SQLite.

PostgreSQL rows are read through ADBC when its driver is installed: the server's binary COPY
format straight into Arrow columns, several times faster than row-by-row fetching (see
bench/train.py). Anything ADBC cannot read falls back to SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from mlgate.errors import InvalidInput, NotFound, SourceError
from mlgate.sources.urls import scrub


class SqlSource:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url
        try:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise SourceError(f"source {name!r}: {scrub(str(exc), url)}") from None

    def tables(self) -> list[str]:
        with self._connect() as conn:
            inspector = sa.inspect(conn)
            return sorted(inspector.get_table_names() + inspector.get_view_names())

    def read_table(self, table: str, limit: int | None = None) -> pd.DataFrame:
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
            statement = sa.select(selectable)
            if limit is not None:
                statement = statement.limit(limit)
            sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
            fast = self._read_arrow(sql)
            return fast if fast is not None else self._read(conn, statement)

    def read_query(self, query: str) -> pd.DataFrame:
        if not query.strip():
            raise InvalidInput("the query is empty; give a SELECT that returns the training rows")
        fast = self._read_arrow(query)
        if fast is not None:
            return fast
        with self._connect() as conn:
            return self._read(conn, sa.text(query))

    def iter_table(self, table: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The table in chunks of at most `chunk_rows` rows: a server-side cursor, so a table
        larger than memory streams through."""
        with self._connect() as conn:
            yield from self._stream(conn, sa.select(self._reflect(conn, table)), chunk_rows)

    def iter_query(self, query: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
        if not query.strip():
            raise InvalidInput("the query is empty; give a SELECT that returns the rows to score")
        with self._connect() as conn:
            yield from self._stream(conn, sa.text(query), chunk_rows)

    def count(self, table: str) -> int | None:
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(selectable)).scalar_one()
            )

    def key_column(self, table: str) -> str | None:
        """The table's primary key, if it is one integer column (the natural partition key)."""
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
            keys = list(selectable.primary_key.columns)
        if len(keys) == 1 and _is_integer(keys[0].type):
            return str(keys[0].name)
        return None

    def column_kind(self, table: str, column: str) -> str:
        """'integer' or 'other', for a column the caller names; NotFound if it has none."""
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
        if column not in selectable.c:
            raise NotFound(f"source {self.name!r}: {table!r} has no column {column!r}")
        return "integer" if _is_integer(selectable.c[column].type) else "other"

    def key_range(self, table: str, column: str) -> tuple[int, int] | None:
        """The smallest and largest value of an integer column (None for an empty table)."""
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
            key = selectable.c[column]
            low, high = conn.execute(sa.select(sa.func.min(key), sa.func.max(key))).one()
        return None if low is None else (int(low), int(high))

    def part_sql(self, table: str, column: str, part: tuple[str, int, int, int]) -> str:
        """The SELECT of one partition: ("range", low, high, last) reads low <= key < high
        (<= high on the last one); ("hash", i, n, 0) reads the rows whose column hashes to i
        of n, with the database's own hash function."""
        kind, a, b, last = part
        with self._connect() as conn:
            selectable = self._reflect(conn, table)
            key = selectable.c[column]
            if kind == "range":
                condition = sa.and_(key >= a, key <= b if last else key < b)
            else:
                condition = _hash(conn.dialect.name, key, b) == a
            statement = sa.select(selectable).where(condition)
            return str(statement.compile(conn, compile_kwargs={"literal_binds": True}))

    def write_table(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        """Create `table` (refused if it exists) and append every chunk; returns the rows.

        SQLite lets no connection commit a write while another one reads the same file, and
        the chunks are usually read from this very source, through a cursor that stays open
        until the last one: on SQLite they are all read (and held in memory) before the first
        row is written. Elsewhere they stream."""
        written = 0
        with self._connect() as conn:
            if sa.inspect(conn).has_table(table):
                raise InvalidInput(
                    f"source {self.name!r} already has a table {table!r}; choose a new name"
                )
            if conn.dialect.name == "sqlite":
                conn.rollback()  # no transaction of ours stays open while the rows are read
                chunks = iter(list(chunks))
            try:
                for chunk in chunks:
                    chunk.to_sql(table, conn, index=False, if_exists="append")
                    conn.commit()
                    written += len(chunk)
            except sa.exc.SQLAlchemyError as exc:
                raise SourceError(
                    f"source {self.name!r} could not write {table!r}: {self._reason(exc)}"
                ) from None
        return written

    def _stream(
        self, conn: sa.Connection, statement: sa.Executable, chunk_rows: int
    ) -> Iterator[pd.DataFrame]:
        try:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                statement
            )
            columns = list(result.keys())
            for rows in result.partitions(chunk_rows):
                yield _decimals_to_float(pd.DataFrame(rows, columns=columns))
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"source {self.name!r} could not run the query: {self._reason(exc)}"
            ) from None

    def _read_arrow(self, sql: str) -> pd.DataFrame | None:
        """The rows through ADBC, or None where ADBC does not apply or could not read them."""
        if self._engine.dialect.name != "postgresql":
            return None
        try:
            from adbc_driver_postgresql import dbapi
        except ImportError:
            return None
        uri = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with dbapi.connect(uri) as conn, conn.cursor() as cursor:
                cursor.execute(sql)
                table = cursor.fetch_arrow_table()
        except Exception:  # any ADBC failure: SQLAlchemy reads it, or reports it properly
            return None
        frame: pd.DataFrame = table.to_pandas()
        for arrow_field in table.schema:
            if (arrow_field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric":
                frame[arrow_field.name] = pd.to_numeric(frame[arrow_field.name])
        return frame

    def close(self) -> None:
        self._engine.dispose()

    def _connect(self) -> sa.Connection:
        try:
            return self._engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"source {self.name!r} could not be reached: {self._reason(exc)}; "
                "check the URL with `mlgate sources test`"
            ) from None

    def _reflect(self, conn: sa.Connection, table: str) -> sa.Table:
        schema, _, name = table.rpartition(".")
        try:
            return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
        except sa.exc.NoSuchTableError:
            raise NotFound(
                f"source {self.name!r} has no table {table!r}; "
                f"`mlgate sources test {self.name}` lists its tables"
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"source {self.name!r}: {self._reason(exc)}") from None

    def _read(self, conn: sa.Connection, statement: sa.Executable) -> pd.DataFrame:
        try:
            result = conn.execute(statement)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"source {self.name!r} could not run the query: {self._reason(exc)}"
            ) from None
        return _decimals_to_float(frame)

    def _reason(self, exc: sa.exc.SQLAlchemyError) -> str:
        # The driver's own message, first line only, never the URL's password.
        original = getattr(exc, "orig", None) or exc
        text = str(original).strip().splitlines()
        return scrub(text[0] if text else type(exc).__name__, self._url)


def _decimals_to_float(frame: pd.DataFrame) -> pd.DataFrame:
    """NUMERIC/DECIMAL columns arrive as Decimal objects; models want floats."""
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and values.map(lambda v: isinstance(v, Decimal)).all():
            frame[column] = frame[column].astype("float64")
    return frame


def _is_integer(kind: sa.types.TypeEngine[object]) -> bool:
    try:
        return issubclass(kind.python_type, int) and not issubclass(kind.python_type, bool)
    except NotImplementedError:
        return False


def _hash(dialect: str, column: sa.ColumnElement[object], n: int) -> sa.ColumnElement[object]:
    """column -> 0..n-1, spread evenly, computed by the database."""
    text = sa.cast(column, sa.Text if dialect == "postgresql" else sa.String(255))
    # mod(), not %: the compiled text must not depend on the driver's parameter style.
    if dialect == "postgresql":
        return sa.func.abs(sa.func.mod(sa.func.hashtext(text), n))
    if dialect in ("mysql", "mariadb"):
        return sa.func.mod(sa.func.crc32(text), n)
    raise InvalidInput(
        f"{dialect} has no hash function to split a table by; partition by an integer column"
    )
