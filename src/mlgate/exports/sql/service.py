"""A version handed out as SQL, checked before it leaves: the query, run on an engine of its
dialect over the version's holdout rows, must give the labels the version serves (rows whose two
likeliest classes are within TOLERANCE counted as ties, either label right) and probabilities
or values within TOLERANCE relative; otherwise the export is refused (Conflict, 409) with the
size of the miss, and no SQL is given.

SQLite and DuckDB are checked in process; PostgreSQL and MySQL/MariaDB in a scratch schema made
and dropped on a server: the source the caller names, or the version's own where it is one.
The query checked is the one handed out, reading the loaded rows' table with a row key.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import Conflict, InvalidInput, NotFound
from mlgate.exports.sql.compile import Template, compile_template, refusal
from mlgate.exports.sql.model import (
    DIALECTS,
    MAX_CHECK_ROWS,
    TOLERANCE,
    Conformance,
    Dialect,
    Scratch,
    SqlExport,
)
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache, Scores
from mlgate.schema import conform
from mlgate.uow import UnitOfWork

OpenScratch = Callable[[str, str | None], Scratch]


def export_sql(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    open_scratch: OpenScratch,
    model_name: str,
    number: int | None,
    alias: str | None = None,
    *,
    dialect: str,
    table: str | None = None,
    key: Sequence[str] = (),
    check_source: str | None = None,
    view: str | None = None,
    function: str | None = None,
) -> SqlExport:
    """The version's SQL for `dialect`, reading `table` (default: the one it was trained on)
    and answering `key` first; checked on an engine of the dialect before it is returned.
    With `view`, the answer also holds `CREATE VIEW view AS` that same query; with
    `function`, the query as a function of that name (exports/sql/functions.py), made and
    called on the engine over the same rows and compared as the query is."""
    if dialect not in DIALECTS:
        raise InvalidInput(f"the dialect is one of {', '.join(DIALECTS)}, not {dialect!r}")
    checked: Dialect = dialect
    for k in key:
        if not k.strip():
            raise InvalidInput("a key column needs a name")
    if len(set(key)) != len(key):
        raise InvalidInput(f"a key column is named twice: {', '.join(key)}")
    version = resolve_version(uow, model_name, number, alias)
    reason = refusal(version)
    if reason is not None:
        raise Conflict(f"{version.ref} ({version.algorithm}) has no SQL export: {reason}")
    # Loaded as serving loads it: the signature and sha256 checked before anything is built.
    predictor = predictors.get(version)
    pipeline = predictor.pipeline
    table = table or version.lineage.table or "rows"
    template = compile_template(version, pipeline, checked)
    sql = template.render(table, key)
    function_sql = None
    if function is not None:
        from mlgate.exports.sql.functions import function_sql as make_function

        named = _schema_and_name(function, "function")
        function_sql = make_function(version, template, named, table, key).create
    url = _check_url(uow, version, checked, check_source)
    frame, dates = _holdout(uow, artifacts, version)
    served = predictor.score(frame)
    from mlgate.exports.sql.trees import float64_reference

    matrix = predictor.features(frame)
    reference = float64_reference(version, pipeline[-1], matrix)
    scratch = open_scratch(checked, url)
    found: dict[str, Conformance] = {}
    conformance = verify(version, template, frame, served, scratch, reference, dates=dates,
                         function=function is not None, found=found)  # fmt: skip
    view_sql = None
    if view is not None:
        view_sql = f"CREATE VIEW {compile_target(_schema_and_name(view, 'view'), checked)} AS {sql}"
    return SqlExport(sql, version, checked, table, tuple(key), template.outputs, conformance,
                     view_sql, function_sql, found.get("function"))  # fmt: skip


def _schema_and_name(name: str, what: str) -> tuple[str | None, str]:
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        raise InvalidInput(f"the {what} is a name or schema.name, not {name!r}")
    return (parts[0] if len(parts) == 2 else None, parts[-1])


def verify(
    version: ModelVersion,
    template: Template,
    frame: pd.DataFrame,
    served: Scores,
    scratch: Scratch,
    reference: np.ndarray | None = None,
    *,
    dates: pd.DataFrame | None = None,
    function: bool = False,
    found: dict[str, Conformance] | None = None,
) -> Conformance:
    """Run the template's SQL on `scratch` over `frame` (conformed rows) and compare it with
    `served`; Conflict, saying by how much, where it misses. Closes `scratch`. `dates`: the
    rows' date-time columns as they came (`frame` holds only their parts), loaded as
    timestamps in UTC."""
    dialect = template.dialect
    names = {c.name for c in version.columns}
    row_key = next(k for k in (f"row{'_' * n}" for n in range(1, 100)) if k not in names)
    kinds = {"string": "text", "text": "text", "datetime": "timestamp"}
    try:
        columns = [(row_key, "integer")] + [
            (c.name, kinds.get(c.type, "double")) for c in version.columns
        ]
        loaded = pd.DataFrame(
            {c.name: _timestamps(dates, c.name) if c.type == "datetime" else frame[c.name]
             for c in version.columns},
            index=frame.index,
        )  # fmt: skip
        data = [
            (k, *(_plain(v) for v in values))
            for k, values in enumerate(loaded.itertuples(index=False, name=None))
        ]  # fmt: skip
        scratch.load(columns, data)
        sql = template.render(scratch.table, (row_key,))
        answered = sorted(scratch.query(sql), key=lambda r: int(r[0]))
        engine = scratch.engine
        called = _call_function(version, template, scratch, row_key) if function else None
    finally:
        scratch.close()
    conformance = _judged(version, served, answered, engine, reference, f"{dialect} SQL")
    if called is not None:
        done = _judged(version, served, called, engine, reference,
                       f"{dialect} SQL function")  # fmt: skip
        if found is not None:
            found["function"] = done
    return conformance


def _call_function(
    version: ModelVersion, template: Template, scratch: Scratch, row_key: str
) -> list[tuple[Any, ...]]:
    """Make the template's function in `scratch` and call it over the loaded rows."""
    from mlgate.exports.sql.functions import function_sql

    schema = getattr(scratch, "schema", None)
    name = (schema, "mlgate_check_score")
    duckdb = template.dialect == "duckdb"
    made = function_sql(version, template, name, scratch.table, (row_key,) if duckdb else (),
                        call_key=(row_key,))  # fmt: skip
    scratch.execute(made.create)
    return sorted(scratch.query(made.call), key=lambda r: int(r[0]))


def _judged(
    version: ModelVersion,
    served: Scores,
    answered: list[tuple[Any, ...]],
    engine: str,
    reference: np.ndarray | None,
    kind: str,
) -> Conformance:
    """The comparison, or Conflict with the size of the miss (`kind`: what was checked)."""
    conformance = compare(version, served, answered, engine, reference)
    if not conformance.passed:
        c = conformance
        what = (
            f"{c.labels_differ} labels differ outside {c.ties} ties, probabilities by up to"
            if version.task == "classification"
            else "values by up to"
        )
        raise Conflict(
            f"the {kind} of {version.ref} does not answer as the version does on "
            f"{engine} over its {c.rows_compared:,} holdout rows ({what} "
            f"{c.max_difference:.3g}; the tolerance is {c.tolerance:g} relative"
            + (
                f" beyond XGBoost's own float32 drift, up to {c.library_drift:.3g}"
                if c.library_drift
                else ""
            )
            + "), so it is not exported"
        )
    return conformance


def compare(
    version: ModelVersion,
    served: Scores,
    answered: list[tuple[Any, ...]],
    engine: str,
    reference: np.ndarray | None = None,
) -> Conformance:
    """How the engine's answers (key, prediction, probabilities...) differ from `served`;
    `reference`: the exact sums where the library adds in float32 (trees.float64_reference)."""
    n = len(served.predictions)
    if len(answered) != n:
        return Conformance(engine, n, math.inf, n, 0)
    if version.task != "classification":
        theirs = _floats([r[1] for r in answered])
        ours = np.asarray(served.predictions, dtype="float64")
        gaps, drift = _gaps(theirs, ours, reference)
        return _conformance(engine, n, gaps, drift, 0, 0)
    assert served.probabilities is not None
    ours_p = np.asarray(served.probabilities, dtype="float64")
    if answered and len(answered[0]) == 2:  # a function answering the label alone
        _, drift = _gaps(ours_p, ours_p, reference)
        top = np.sort(ours_p, axis=1)
        tied = (
            top[:, -1] - top[:, -2] <= TOLERANCE + 2 * drift
            if ours_p.shape[1] > 1
            else np.zeros(n, dtype=bool)
        )
        same = np.asarray([_same_label(r[1], p) for r, p in zip(answered, served.predictions,
                                                                   strict=True)])  # fmt: skip
        return Conformance(engine, n, 0.0, int(np.sum(~same & ~tied)), int(tied.sum()))
    theirs_p = np.asarray([_floats(r[2:]) for r in answered], dtype="float64").reshape(ours_p.shape)
    gaps, drift = _gaps(theirs_p, ours_p, reference)
    top = np.sort(ours_p, axis=1)
    if ours_p.shape[1] > 1:
        ties = top[:, -1] - top[:, -2] <= TOLERANCE + 2 * drift
    else:
        ties = np.zeros(n, dtype=bool)
    same = np.asarray(
        [_same_label(r[1], p) for r, p in zip(answered, served.predictions, strict=True)]
    )
    differ = int(np.sum(~same & ~ties))
    return _conformance(engine, n, gaps, drift, differ, int(ties.sum()))


def _gaps(
    theirs: np.ndarray, ours: np.ndarray, reference: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the largest relative difference from the served answer, and the served
    answer's own drift from `reference` (zeros without one)."""

    def per_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        g = np.abs(a - b) / np.maximum(1.0, np.abs(b))
        g = np.where(np.isnan(g), np.inf, g)
        return np.asarray(g.max(axis=1) if g.ndim == 2 else g)

    gaps = per_row(theirs, ours)
    if reference is None:
        return gaps, np.zeros_like(gaps)
    return gaps, per_row(np.asarray(reference, dtype="float64").reshape(ours.shape), ours)


def _conformance(
    engine: str, n: int, gaps: np.ndarray, drift: np.ndarray, differ: int, ties: int
) -> Conformance:
    if gaps.size == 0:
        return Conformance(engine, n, 0.0, differ, ties)
    return Conformance(
        engine, n, float(gaps.max()), differ, ties,
        library_drift=float(drift.max()), max_excess=float((gaps - drift).max()),
    )  # fmt: skip


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype="float64")


def _same_label(theirs: Any, ours: Any) -> bool:
    if isinstance(theirs, bytes):
        theirs = theirs.decode()
    if isinstance(ours, int | float) and not isinstance(ours, bool):
        try:
            return float(theirs) == float(ours)
        except (TypeError, ValueError):
            return False
    return str(theirs) == str(ours)


def _timestamps(dates: pd.DataFrame | None, name: str) -> pd.Series:
    """Date-time column `name` of `dates` as naive datetimes in UTC (None where missing or
    not a date), as serving reads it (schema._datetime_parts)."""
    if dates is None or name not in dates.columns:
        raise InvalidInput(f"checking the SQL needs date-time column {name!r} as it came")
    stamps = pd.to_datetime(dates[name], errors="coerce", utc=True, format="ISO8601")
    naive = stamps.dt.tz_convert(None)
    return pd.Series(
        [None if pd.isna(v) else v.to_pydatetime() for v in naive], index=dates.index, dtype=object
    )


def _plain(value: Any) -> Any:
    """A conformed value as a driver takes it: NaN and None as NULL, numpy as Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def _holdout(
    uow: UnitOfWork, artifacts: ArtifactStore, version: ModelVersion
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout rows conformed, and their date-time columns as they came."""
    from mlgate.training.compare import holdout_rows

    try:
        rows = holdout_rows(uow, artifacts, version)
    except NotFound:
        raise Conflict(
            f"{version.ref} has no stored rows to check its SQL on; retrain it"
        ) from None
    rows = rows.head(MAX_CHECK_ROWS)
    dates = [c.name for c in version.columns if c.type == "datetime"]
    return conform(rows, version.columns), rows[dates]


def _check_url(
    uow: UnitOfWork, version: ModelVersion, dialect: Dialect, check_source: str | None
) -> str | None:
    """The server to check `dialect` SQL on: the named source, else the version's own."""
    if dialect in ("sqlite", "duckdb"):
        return None
    from mlgate.sources.service import get_source

    name = check_source or version.lineage.source_name
    try:
        url = get_source(uow, name).url
    except NotFound:
        if check_source:
            raise
        url = ""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    kinds = {"postgresql": ("postgresql", "postgres"), "mysql": ("mysql", "mariadb")}[dialect]
    if scheme not in kinds:
        raise Conflict(
            f"checking {dialect} SQL needs a {dialect} server, and source {name!r} is not one: "
            f"name one with check_source (the CLI's --check-source)"
        )
    return url


WriteInDatabase = Callable[[str, str, tuple[str | None, str], dict[str, Any]], int]


@dataclass(frozen=True)
class InDatabaseRun:
    """A table scored where it lies: the output table, its rows, and the check it passed."""

    export: SqlExport
    source: str
    into_table: str
    n_rows: int
    sql_sha256: str


def score_in_database(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    open_scratch: OpenScratch,
    write: WriteInDatabase,
    model_name: str,
    number: int | None,
    alias: str | None = None,
    *,
    source: str,
    table: str,
    into_table: str,
    key: Sequence[str] = (),
    actor: str,
    now: datetime,
) -> InDatabaseRun:
    """Score `table` of `source` into a new table `into_table` of the same database, with the
    version's SQL checked on that database first: no row leaves it. The version and the
    sha256 of its artifact and of the query are noted beside the output (sources/scratch.py
    RECORDS); the run is audited."""
    from mlgate.access import audit
    from mlgate.sources.service import get_source

    url = get_source(uow, source).url
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    dialect = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql",
               "mysql": "mysql", "mariadb": "mysql"}.get(scheme)  # fmt: skip
    if dialect is None:
        raise Conflict(
            f"source {source!r} is not a SQLite, PostgreSQL or MySQL database; score it with "
            "mlgate predict without --in-database"
        )
    done = export_sql(uow, artifacts, predictors, open_scratch, model_name, number, alias,
                      dialect=dialect, table=table, key=key, check_source=source)  # fmt: skip
    into = _schema_and_name(into_table, "output table")
    target = compile_target(into, done.dialect)
    statement = f"CREATE TABLE {target} AS {done.sql}"
    digest = hashlib.sha256(done.sql.encode()).hexdigest()
    version = done.version
    record = {
        "table_name": into_table, "model": version.model_name, "version": version.number,
        "artifact_sha256": version.artifact.sha256, "sql_sha256": digest,
        "created_at": now.isoformat(),
    }  # fmt: skip
    n = write(url, statement, into, record)
    audit.record(
        uow, at=now, actor=actor, action="models.score_in_database", target=version.ref,
        address="local", result="ok",
        detail={"source": source, "table": table, "into_table": into_table, "rows": n,
                "sql_sha256": digest, "engine": done.conformance.engine},
    )  # fmt: skip
    return InDatabaseRun(done, source, into_table, n, digest)


def compile_target(into: tuple[str | None, str], dialect: Dialect) -> str:
    from sqlglot import exp

    from mlgate.exports.sql.model import SQLGLOT_DIALECT

    schema, name = into
    table = exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )
    return table.sql(dialect=SQLGLOT_DIALECT[dialect])
