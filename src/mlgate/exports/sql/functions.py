"""A version's query as a function of the database, where the dialect has one, checked on the
engine by creating it in the scratch place and calling it over the same rows as the query:

    postgresql  CREATE FUNCTION name(row "table") RETURNS TABLE (prediction, probabilities…):
                a SQL function taking a row of the table (its row type), answering one row;
                call it as `SELECT c.id, s.* FROM customers c CROSS JOIN LATERAL name(c) s`
    mysql       CREATE FUNCTION name(col1, col2, …) RETURNS the prediction: a stored function
                answers one value, so it gives the label (classifiers) or the value, and the
                probabilities stay with the query or the view
    duckdb      CREATE MACRO name(tbl) AS TABLE: a table macro over the table named when it is
                called, answering the key columns too: `SELECT * FROM name('customers')`
    sqlite      none: SQLite has no CREATE FUNCTION in SQL (its functions are registered from
                the program that opens the database), so it is refused with that reason

The text checked is the text handed out but for the names of the table and function (the
scratch place's), as for the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from mlgate.errors import Conflict, InvalidInput
from mlgate.exports.sql.compile import Template, _table
from mlgate.exports.sql.model import SQLGLOT_DIALECT, Dialect
from mlgate.registry.model import ModelVersion

NO_FUNCTION = (
    "SQLite has no CREATE FUNCTION in SQL (its functions are registered from the program that "
    "opens the database); use the query or --view"
)
_PG_QUOTE = "$mlgate$"


@dataclass(frozen=True)
class Function:
    """The CREATE statement and how the function is called, for one dialect."""

    create: str
    call: str  # a query calling it over the table it was made for
    answers: str  # "rows" (key, prediction, probabilities…) or "prediction" (key, prediction)


def _identifier(name: str, dialect: Dialect) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=SQLGLOT_DIALECT[dialect])


def _qualified(name: tuple[str | None, str], dialect: Dialect) -> str:
    schema, last = name
    return exp.Table(
        this=exp.to_identifier(last, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    ).sql(dialect=SQLGLOT_DIALECT[dialect])


def _type(kind: str, dialect: Dialect) -> str:
    return exp.DataType.build(kind, dialect=SQLGLOT_DIALECT[dialect]).sql(
        dialect=SQLGLOT_DIALECT[dialect]
    )


def _prediction_type(version: ModelVersion, dialect: Dialect) -> str:
    """The prediction column's type: a value is a double; a label an integer where every class
    is one, a double where every class is a number, else text."""
    if version.task != "classification":
        return _type("double", dialect)
    classes = list(version.classes or ())
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return _type("bigint", dialect)
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return _type("double", dialect)
    if dialect == "mysql":
        return "VARCHAR(255) CHARACTER SET utf8mb4"
    return _type("text", dialect)


def function_sql(
    version: ModelVersion,
    template: Template,
    name: tuple[str | None, str],
    table: str,
    key: Sequence[str],
    call_key: Sequence[str] = (),
) -> Function:
    """`template` as a function `name` of its dialect, for `table` (PostgreSQL's row type;
    DuckDB's macro takes the table when called, and answers `key` first); Conflict where the
    dialect has none. `call` answers `call_key` (DuckDB: `key`) before the function's
    columns."""
    dialect = template.dialect
    if dialect == "sqlite":
        raise Conflict(f"{version.ref} has no SQL function for SQLite: {NO_FUNCTION}")
    fn = _qualified(name, dialect)
    outputs = template.outputs
    if dialect == "duckdb":
        parameter = _identifier("mlgate_table", dialect)
        body = template.render_from(f"query_table({parameter})", key)
        create = f"CREATE MACRO {fn}({parameter}) AS TABLE {body}"
        literal = exp.Literal.string(table).sql(dialect="duckdb")
        return Function(create, f"SELECT * FROM {fn}({literal})", "rows")
    if dialect == "postgresql":
        if key:
            raise InvalidInput(
                "PostgreSQL's function takes a row and answers its scores; the key columns "
                "are the caller's (leave out --key with --function)"
            )
        row = _identifier("mlgate_row", dialect)
        query = template.render_from(f"(SELECT ({row}).*) AS {row}", ())
        if _PG_QUOTE in query:
            raise Conflict(f"{version.ref}: its categories hold {_PG_QUOTE}; use the query")
        double = _type("double", dialect)
        kinds = [_prediction_type(version, dialect)] + [double] * (len(outputs) - 1)
        returns = ", ".join(
            f"{_identifier(o, dialect)} {t}" for o, t in zip(outputs, kinds, strict=True)
        )
        scored = _identifier("mlgate_scored", dialect)
        casts = ", ".join(
            f"CAST({scored}.{_identifier(o, dialect)} AS {t})"
            for o, t in zip(outputs, kinds, strict=True)
        )
        create = (
            f"CREATE FUNCTION {fn}({row} {_table(table).sql(dialect='postgres')}) "
            f"RETURNS TABLE ({returns}) LANGUAGE sql STABLE PARALLEL SAFE AS {_PG_QUOTE}"
            f"SELECT {casts} FROM ({query}) AS {scored}{_PG_QUOTE}"
        )
        t = _table(table).sql(dialect="postgres")
        alias, answered = _identifier("mlgate_input", dialect), _identifier("mlgate_out", dialect)
        keys = "".join(f"{alias}.{_identifier(k, dialect)}, " for k in call_key)
        call = (
            f"SELECT {keys}{answered}.* FROM {t} AS {alias} CROSS JOIN LATERAL {fn}({alias}) "
            f"AS {answered}"
        )
        return Function(create, call, "rows")
    # MySQL/MariaDB: a stored function of the input columns, answering the prediction.
    if key:
        raise InvalidInput(
            "MySQL's function takes a row's input columns and answers its prediction; the key "
            "columns are the caller's (leave out --key with --function)"
        )
    params = {"string": "TEXT CHARACTER SET utf8mb4", "text": "TEXT CHARACTER SET utf8mb4",
             "datetime": "DATETIME(6)"}  # fmt: skip
    parameters = ", ".join(
        f"{_identifier(c.name, dialect)} {params.get(c.type, 'DOUBLE')}" for c in version.columns
    )
    # A stored program's parameter outranks a column of the same name, so the row read here
    # is the parameters themselves.
    row = _identifier("mlgate_row", dialect)
    values = ", ".join(
        f"{_identifier(c.name, dialect)} AS {_identifier(c.name, dialect)}" for c in version.columns
    )
    query = template.render_from(f"(SELECT {values}) AS {row}", ())
    scored = _identifier("mlgate_scored", dialect)
    create = (
        f"CREATE FUNCTION {fn}({parameters}) RETURNS {_prediction_type(version, dialect)} "
        f"DETERMINISTIC RETURN (SELECT {scored}.{_identifier('prediction', dialect)} "
        f"FROM ({query}) AS {scored})"
    )
    arguments = ", ".join(_identifier(c.name, dialect) for c in version.columns)
    keys = "".join(f"{_identifier(k, dialect)}, " for k in call_key)
    call = f"SELECT {keys}{fn}({arguments}) FROM {_table(table).sql(dialect='mysql')}"
    return Function(create, call, "prediction")
