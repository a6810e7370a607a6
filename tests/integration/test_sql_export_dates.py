"""Date-time parts in the exported SQL: a version trained on a date-time column (served as its
year, month, day, day of the week and hour, in UTC) answers the same in SQL on real SQLite,
DuckDB, PostgreSQL and MariaDB, over its holdout rows and over rows with time-zone offsets,
missing and unparseable dates; PostgreSQL's and DuckDB's timestamptz columns are read in UTC
whatever the session's time zone."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlgate.bootstrap import Services
from mlgate.exports.sql.compile import compile_template
from mlgate.exports.sql.model import DIALECTS, TOLERANCE, Dialect
from mlgate.exports.sql.service import compare, export_sql, verify
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.sources.scratch import open_scratch
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import (
    MARIADB_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    add_source_to,
    make_services,
    throwaway_database,
)

CHECK_SOURCE: dict[Dialect, str | None] = {
    "sqlite": None, "duckdb": None, "postgresql": "pg", "mysql": "maria",
}  # fmt: skip
CASES = [
    ("logistic_regression", "busy"),
    ("ridge", "load"),
    ("decision_tree", "busy"),
    ("xgboost", "busy"),
    ("lightgbm", "load"),
]


def visits(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Visits whose load rises with the hour and falls at weekends and in summer: each part of
    the date-time matters; a tenth of the dates missing."""
    rng = np.random.default_rng(seed)
    at = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24 * 60, n),
                                                      unit="min")  # fmt: skip
    spend = rng.normal(50, 10, n)
    load = (at.hour / 4 - 3 * (at.day_of_week >= 5) - 2 * at.month.isin([6, 7, 8])
            + at.day / 10 + (at.year - 2024) + spend / 20 + rng.normal(0, 0.3, n))  # fmt: skip
    frame = pd.DataFrame({"at": at, "spend": spend, "load": np.asarray(load)})
    frame.loc[rng.random(n) < 0.1, "at"] = pd.NaT
    frame["busy"] = np.where(frame["load"] > np.median(frame["load"]), "yes", "no")
    return frame


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("sqldates")
    services = make_services(root / "home")
    data = root / "data"
    data.mkdir()
    visits().to_parquet(data / "visits.parquet")
    add_source_to(services, "files", str(data), cwd=root)
    pg = throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    maria = throwaway_database(MARIADB_ADMIN_URL, "MariaDB")
    add_source_to(services, "pg", next(pg), cwd=root)
    add_source_to(services, "maria", next(maria), cwd=root)
    yield services
    services.close()
    for made in (pg, maria):
        next(made, None)


def train(services: Services, algorithm: str, target: str) -> str:
    name = f"dates-{algorithm.replace('_', '-')}-{target}"
    try:
        resolve_version(services.uow(), name, None)
        return name
    except Exception:
        pass
    drop = tuple(t for t in ("busy", "load") if t != target)
    params = {"n_estimators": 30} if algorithm in ("xgboost", "lightgbm") else None
    spec = TrainSpec(name, "files", target, algorithm, table="visits", drop=drop, params=params,
                     report=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
    return name


def awkward() -> pd.DataFrame:
    """Dates as a request may bring them: offsets either side of midnight and of a year's
    end, a trailing Z, fractions of a second, missing and unparseable values."""
    frame = visits(12, seed=5)[["at", "spend"]]
    frame["at"] = pd.Series([
        "2024-12-31T23:30:00-02:00",  # 2025-01-01 01:30 UTC: year, month, day and weekday turn
        "2025-03-02T00:15:00+05:30",  # the day before in UTC
        "2024-02-29T12:00:00Z",
        "2024-07-06 08:59:59.999999",
        "2026-06-15T10:00:00+00:00",
        None,
        "not a date",
        "2024-11-03T01:30:00-04:00",
        "2025-08-09T23:59:59+14:00",
        "2024-01-01T00:00:00",
        "2025-10-26T02:30:00+01:00",
        "2024-05-05T05:05:05.5-07:00",
    ], dtype=object)  # fmt: skip
    return frame


def _url(world: Services, dialect: Dialect) -> str | None:
    source = CHECK_SOURCE[dialect]
    return None if source is None else world.sources.get(source).url


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("algorithm", "target"), CASES)
def test_date_time_parts_answer_as_served_on_each_engine(
    world: Services, algorithm: str, target: str, dialect: Dialect
) -> None:
    name = train(world, algorithm, target)
    version = resolve_version(world.uow(), name, None)
    assert {c.name: c.type for c in version.columns}["at"] == "datetime"
    function = None if dialect == "sqlite" else "score"  # the function form too, where one is
    done = export_sql(world.uow(), world.artifacts, world.predictors, open_scratch, name, None,
                      dialect=dialect, check_source=CHECK_SOURCE[dialect],
                      function=function)  # fmt: skip
    c = done.conformance
    assert c.passed and c.rows_compared == 80 and c.max_difference <= TOLERANCE
    assert c.labels_differ == 0
    if function is not None:
        f = done.function_conformance
        assert f is not None and f.passed and f.rows_compared == 80 and f.labels_differ == 0
    predictor = world.predictors.get(version)
    rows = awkward()
    frame = conform(rows, version.columns)
    assert frame["at__year"].isna().sum() == 2  # the missing and the unparseable
    served = predictor.score(frame)
    template = compile_template(version, predictor.pipeline, dialect)
    scratch = open_scratch(dialect, _url(world, dialect))
    checked = verify(version, template, frame, served, scratch, dates=rows[["at"]])
    assert checked.passed and checked.rows_compared == len(rows)


def test_a_part_read_wrongly_is_refused(world: Services) -> None:
    """The check sees the parts: a query reading the hour off by one is not handed out."""
    name = train(world, "ridge", "load")
    version = resolve_version(world.uow(), name, None)
    predictor = world.predictors.get(version)
    rows = awkward()
    frame = conform(rows, version.columns)
    served = predictor.score(frame)
    template = compile_template(version, predictor.pipeline, "sqlite")
    shifted = type(template)(template.text.replace("'%H'", "'%M'"), template.dialect,
                             template.outputs, template.n_stages)  # fmt: skip
    from mlgate.errors import Conflict

    with pytest.raises(Conflict, match="does not answer as the version does"):
        verify(version, shifted, frame, served, open_scratch("sqlite", None), dates=rows[["at"]])


@pytest.mark.parametrize("dialect", ["postgresql", "duckdb"])
def test_timestamptz_columns_are_read_in_utc_whatever_the_session_zone(
    world: Services, dialect: Dialect
) -> None:
    """A real table with a `timestamp with time zone` column, read by a session in
    Pacific/Kiritimati (UTC+14): the parts are the UTC instant's, as served."""
    name = train(world, "ridge", "load")
    version = resolve_version(world.uow(), name, None)
    predictor = world.predictors.get(version)
    rows = awkward()
    frame = conform(rows, version.columns)
    served = predictor.score(frame)
    sql = compile_template(version, predictor.pipeline, dialect).render("visits", ("k",))
    stamps = pd.to_datetime(rows["at"], errors="coerce", utc=True, format="ISO8601")
    data = [
        (k, None if pd.isna(t) else t.to_pydatetime(), float(s))
        for k, (t, s) in enumerate(zip(stamps, rows["spend"], strict=True))
    ]
    if dialect == "duckdb":
        import duckdb

        db = duckdb.connect(":memory:")
        db.execute("SET TimeZone = 'Pacific/Kiritimati'")
        db.execute('CREATE TABLE visits (k INTEGER, "at" TIMESTAMPTZ, spend DOUBLE)')
        db.executemany("INSERT INTO visits VALUES (?, ?, ?)", data)
        answered = db.execute(sql).fetchall()
        engine = f"DuckDB {duckdb.__version__}"
    else:
        engine_ = sa.create_engine(world.sources.get("pg").url, poolclass=sa.pool.NullPool)
        try:
            with engine_.begin() as conn:
                conn.exec_driver_sql("SET TIME ZONE 'Pacific/Kiritimati'")
                conn.exec_driver_sql(
                    'CREATE TABLE visits (k integer, "at" timestamptz, spend double precision)'
                )
                conn.execute(sa.text("INSERT INTO visits VALUES (:k, :at, :spend)"),
                             [{"k": k, "at": t, "spend": s} for k, t, s in data])  # fmt: skip
                answered = [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]
                conn.exec_driver_sql("DROP TABLE visits")
        finally:
            engine_.dispose()
        engine = "PostgreSQL"
    checked = compare(version, served, sorted(answered, key=lambda r: int(r[0])), engine)
    assert checked.passed and checked.rows_compared == len(rows), checked
