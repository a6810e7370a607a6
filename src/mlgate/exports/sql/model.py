"""The records of an export to SQL: the dialects, the verdict of the check and the export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mlgate.registry.model import ModelVersion

Dialect = Literal["sqlite", "duckdb", "postgresql", "mysql"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "duckdb", "postgresql", "mysql")
# sqlglot's name for each dialect (MariaDB speaks MySQL's).
SQLGLOT_DIALECT: dict[Dialect, str] = {
    "sqlite": "sqlite", "duckdb": "duckdb", "postgresql": "postgres", "mysql": "mysql",
}  # fmt: skip
# Probabilities and values within 1e-6 relative to the larger of 1 and the served number: so
# a probability is within 1e-6, and a value of 2,000 within 0.002.
TOLERANCE = 1e-6
MAX_CHECK_ROWS = 20_000


@dataclass(frozen=True)
class Conformance:
    """What the SQL answered on the engine, against what the served version answers."""

    engine: str  # e.g. "sqlite 3.40.1", "PostgreSQL 15.20"
    rows_compared: int
    max_difference: float  # of probabilities (classifiers) or values (regressors), relative
    labels_differ: int  # outside ties (classifiers; 0 for regressors)
    ties: int  # rows whose two likeliest classes are within TOLERANCE: either label is right
    tolerance: float = TOLERANCE
    # XGBoost adds its trees in float32: how far its own answer lies from the exact sum of
    # the leaves it picks (relative, as max_difference), which the SQL adds in double
    # precision; a row may differ from the served answer by that much more. 0 elsewhere.
    library_drift: float = 0.0
    max_excess: float | None = None  # the largest difference less its row's drift

    @property
    def passed(self) -> bool:
        excess = self.max_difference if self.max_excess is None else self.max_excess
        return self.labels_differ == 0 and excess <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "rows_compared": self.rows_compared,
            "max_difference": self.max_difference,
            "labels_differ": self.labels_differ,
            "ties": self.ties,
            "tolerance": self.tolerance,
            "library_drift": self.library_drift,
            "max_excess": self.max_difference if self.max_excess is None else self.max_excess,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class SqlExport:
    """One SELECT that scores a version where the rows are, checked on its engine first."""

    sql: str
    version: ModelVersion
    dialect: Dialect
    table: str
    key: tuple[str, ...]
    outputs: tuple[str, ...]  # the columns the query answers after the key
    conformance: Conformance
    view_sql: str | None = None  # on request: CREATE VIEW name AS the same SELECT
    # on request: the query as a function of the database (exports/sql/functions.py), made
    # and called on the engine over the same rows; its own report
    function_sql: str | None = None
    function_conformance: Conformance | None = None

    @property
    def note(self) -> str:
        c = self.conformance
        what = (
            f"labels identical ({c.ties} tied rows counted either way), probabilities"
            if self.version.task == "classification"
            else "values"
        )
        drift = (
            f"; XGBoost's own float32 sums drift up to {c.library_drift:.2g} from the exact "
            "sum of its leaves, which the SQL adds in double precision"
            if c.library_drift > 0
            else ""
        )
        return (
            f"checked on {c.engine} against {c.rows_compared:,} holdout rows: {what} within "
            f"{c.tolerance:g} (largest difference {c.max_difference:.2g}){drift}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.version.model_name,
            "version": self.version.number,
            "dialect": self.dialect,
            "table": self.table,
            "key": list(self.key),
            "outputs": list(self.outputs),
            "sql": self.sql,
            "view_sql": self.view_sql,
            "function_sql": self.function_sql,
            "function_conformance": (
                None if self.function_conformance is None else self.function_conformance.to_json()
            ),
            "conformance": self.conformance.to_json(),
            "note": self.note,
        }

    def headers(self) -> dict[str, str]:
        c = self.conformance
        return {
            "X-Mlgate-Sql-Engine": c.engine,
            "X-Mlgate-Sql-Rows-Checked": str(c.rows_compared),
            "X-Mlgate-Sql-Max-Difference": f"{c.max_difference:.3g}",
            "X-Mlgate-Sql-Ties": str(c.ties),
        }


class Scratch(Protocol):
    """A place on an engine of the dialect to load rows into and run a query on, dropped when
    closed (sources/scratch.py: SQLite and DuckDB in process, a scratch schema on a server)."""

    engine: str  # the engine and its version, as the conformance report names it
    table: str  # where `load` puts the rows, as a query names it

    def load(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        """Create `table` with `columns` (name, "integer" | "double" | "text" | "timestamp")
        and the rows (a timestamp as a naive datetime in UTC, or None)."""

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str) -> None:
        """Run a statement that answers no rows (a CREATE FUNCTION or MACRO)."""

    def close(self) -> None: ...
