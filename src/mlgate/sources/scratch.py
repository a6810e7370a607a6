"""Scratch places on an engine, where an exported query is run on rows loaded for it and then
dropped: SQLite and DuckDB in memory, in process; on a PostgreSQL or MySQL/MariaDB server a
schema (a database, in MySQL) of its own, made for the one check and dropped after it.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from mlgate.errors import Conflict, SourceError

# "timestamp": a date-time in UTC, handed over as a naive datetime (SQLite holds ISO text).
_SQLITE_TYPES = {"integer": "INTEGER", "double": "REAL", "text": "TEXT", "timestamp": "TEXT"}
_DUCKDB_TYPES = {"integer": "BIGINT", "double": "DOUBLE", "text": "VARCHAR",
                 "timestamp": "TIMESTAMP"}  # fmt: skip


def _quote(name: str, mark: str = '"') -> str:
    return mark + name.replace(mark, mark * 2) + mark


class SqliteScratch:
    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:")
        self.engine = f"SQLite {sqlite3.sqlite_version}"
        self.table = "rows"

    def load(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        spec = ", ".join(f"{_quote(n)} {_SQLITE_TYPES[t]}" for n, t in columns)
        self._db.execute(f"CREATE TABLE {_quote(self.table)} ({spec})")
        marks = ", ".join("?" for _ in columns)
        stamps = [k for k, (_, t) in enumerate(columns) if t == "timestamp"]
        if stamps:  # as ISO text, which SQLite's date functions read
            rows = [
                tuple(v.isoformat(sep=" ") if k in stamps and v is not None else v
                      for k, v in enumerate(r))
                for r in rows
            ]  # fmt: skip
        self._db.executemany(f"INSERT INTO {_quote(self.table)} VALUES ({marks})", rows)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql).fetchall()
        except sqlite3.Error as exc:
            if "parser stack overflow" in str(exc) or "too large" in str(exc):
                # A limit of the engine, not a fault of the server: the export is refused.
                raise Conflict(
                    f"the query is past SQLite's limits ({exc}: SQLite {sqlite3.sqlite_version} "
                    "parses about 23 nested CASEs), so it is not exported; retrain with a "
                    "smaller max_depth, or export for duckdb, postgresql or mysql"
                ) from exc
            raise SourceError(f"SQLite refused the query: {exc}") from exc

    def execute(self, sql: str) -> None:
        self.query(sql)

    def close(self) -> None:
        self._db.close()


class DuckdbScratch:
    def __init__(self) -> None:
        try:
            import duckdb
        except ImportError:
            raise SourceError("checking DuckDB's SQL needs duckdb: pip install duckdb") from None
        self._db = duckdb.connect(":memory:")
        self.engine = f"DuckDB {duckdb.__version__}"
        self.table = "rows"

    def load(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        spec = ", ".join(f"{_quote(n)} {_DUCKDB_TYPES[t]}" for n, t in columns)
        self._db.execute(f"CREATE TABLE {_quote(self.table)} ({spec})")
        marks = ", ".join("?" for _ in columns)
        if rows:
            self._db.executemany(f"INSERT INTO {_quote(self.table)} VALUES ({marks})", rows)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return list(self._db.execute(sql).fetchall())
        except duckdb.Error as exc:
            raise SourceError(f"DuckDB refused the query: {exc}") from exc

    def execute(self, sql: str) -> None:
        self.query(sql)

    def close(self) -> None:
        self._db.close()


class ServerScratch:
    """A schema of its own on a PostgreSQL or MySQL/MariaDB server (`url`, SQLAlchemy's form),
    created here and dropped on close with everything in it."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self._sa = sa
        try:
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            self._mysql = self._engine.dialect.name in ("mysql", "mariadb")
            self._schema = f"mlgate_check_{secrets.token_hex(6)}"
            self._conn = self._engine.connect()
            if self._mysql:
                self._conn.exec_driver_sql(
                    f"CREATE DATABASE `{self._schema}` CHARACTER SET utf8mb4"
                )
                version = self._conn.exec_driver_sql("SELECT VERSION()").scalar()
                self.engine = (
                    f"{'MariaDB' if 'MariaDB' in str(version) else 'MySQL'} "
                    + str(version).split("-")[0]
                )
            else:
                self._conn.exec_driver_sql(f'CREATE SCHEMA "{self._schema}"')
                # The check reads a few hundred rows: PostgreSQL's JIT would compile a big
                # ensemble's expression for longer than the query runs (1,000 trees of depth
                # 8: 30 s of compiling against 1.2 s planned and run, measured here).
                self._conn.exec_driver_sql("SET jit = off")
                version = self._conn.exec_driver_sql("SHOW server_version").scalar()
                self.engine = f"PostgreSQL {str(version).split()[0]}"
            self._conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"could not make a scratch schema to check the SQL on: {exc}"
            ) from exc
        self.table = f"{self._schema}.rows"

    def load(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        sa = self._sa
        from sqlalchemy.dialects import mysql

        kinds = {
            "integer": sa.BigInteger(), "double": sa.Double(), "text": sa.Text(),
            # timestamp without time zone; MySQL's DATETIME keeps microseconds only when asked
            "timestamp": sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
        }  # fmt: skip
        table = sa.Table(
            "rows", sa.MetaData(schema=self._schema),
            *[sa.Column(n, kinds[t]) for n, t in columns],
        )  # fmt: skip
        try:
            table.create(self._conn)
            if rows:
                names = [n for n, _ in columns]
                self._conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in rows])
            self._conn.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"could not load the check rows: {exc}") from exc

    @property
    def schema(self) -> str:
        """The scratch schema (a database, in MySQL), where a function checked is made."""
        return self._schema

    def execute(self, sql: str) -> None:
        """Run a statement answering no rows (CREATE FUNCTION), committed."""
        self._run(sql, fetch=False)
        raw = self._conn.connection.dbapi_connection
        assert raw is not None
        raw.commit()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._run(sql, fetch=True)

    def _run(self, sql: str, *, fetch: bool) -> list[tuple[Any, ...]]:
        # The driver's own cursor, without parameters: a '%' in a category stays a '%'.
        raw = self._conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            return [tuple(r) for r in cursor.fetchall()] if fetch else []
        except Exception as exc:  # the driver's own errors (psycopg, PyMySQL)
            raw.rollback()
            first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else repr(exc)
            raise SourceError(f"{self.engine} refused the query: {first}") from exc
        finally:
            cursor.close()

    def close(self) -> None:
        try:
            self._conn.rollback()
            if self._mysql:
                self._conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self._schema}`")
            else:
                self._conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE')
            self._conn.commit()
        finally:
            self._conn.close()
            self._engine.dispose()


def open_scratch(dialect: str, url: str | None) -> Any:
    """A scratch place for `dialect`: in process for SQLite and DuckDB, else on `url`."""
    if dialect == "sqlite":
        return SqliteScratch()
    if dialect == "duckdb":
        return DuckdbScratch()
    if url is None:
        raise SourceError(f"checking {dialect} SQL needs a {dialect} server")
    return ServerScratch(url)


RECORDS = "mlgate_scored_tables"


def write_in_database(
    url: str, statement: str, into: tuple[str | None, str], record: dict[str, Any]
) -> int:
    """Run `statement` (a CREATE TABLE … AS SELECT) in the database at `url`, then note
    `record` (the version, its sha256, the query's) in its table RECORDS beside the output,
    in one transaction; the output table's row count. No row leaves the database."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    schema, name = into
    records = sa.Table(
        RECORDS, sa.MetaData(schema=schema),
        sa.Column("table_name", sa.String(255)), sa.Column("model", sa.String(128)),
        sa.Column("version", sa.Integer()), sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("sql_sha256", sa.String(64)), sa.Column("n_rows", sa.BigInteger()),
        sa.Column("created_at", sa.String(40)),
    )  # fmt: skip
    try:
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cursor = raw.cursor()
            try:
                if engine.dialect.name == "postgresql":
                    # JIT compiles the query's expression before the first row: for XGBoost of
                    # 100 trees over 200,000 rows, 23.6 s with it and 8.1 s without (measured
                    # here, PostgreSQL 15); for this transaction only.
                    cursor.execute("SET LOCAL jit = off")
                cursor.execute(statement)  # no parameters: a '%' in a category stays a '%'
            finally:
                cursor.close()
            output = sa.table(name, schema=schema)
            n = int(conn.execute(sa.select(sa.func.count()).select_from(output)).scalar_one())
            records.create(conn, checkfirst=True)
            conn.execute(records.insert(), [{**record, "n_rows": n}])
        return n
    except Exception as exc:  # SQLAlchemy's and the driver's own
        first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else repr(exc)
        raise SourceError(f"the database refused to score in place: {first}") from exc
    finally:
        engine.dispose()
