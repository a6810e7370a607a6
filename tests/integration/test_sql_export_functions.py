"""The query as a function of the database: made and called on real DuckDB (a table macro),
PostgreSQL (a SQL function of a table's row) and MariaDB (a stored function answering the
prediction) over the holdout rows, compared as the query is; SQLite, which has none, is
refused with the reason before anything is checked; a function that misses is refused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.errors import Conflict, InvalidInput
from mlgate.exports.sql.compile import compile_template
from mlgate.exports.sql.model import TOLERANCE, Dialect
from mlgate.exports.sql.service import export_sql, verify
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.sources.scratch import ServerScratch, open_scratch
from tests.conftest import admin_token
from tests.integration.test_explanations import table
from tests.integration.test_sql_export import CHECK_SOURCE, awkward_rows, train, world

__all__ = ["world"]  # the module fixture: Services with sources rows, pg and maria

CASES = [("logistic_regression", "three"), ("ridge", "value"), ("xgboost", "binary"),
         ("random_forest", "three")]  # fmt: skip


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql", "mysql"])
@pytest.mark.parametrize(("algorithm", "target"), CASES)
def test_the_function_is_made_and_called_on_the_engine_and_answers_as_served(
    world: Services, algorithm: str, target: str, dialect: Dialect
) -> None:
    name = train(world, algorithm, target)
    done = export_sql(world.uow(), world.artifacts, world.predictors, open_scratch, name, None,
                      dialect=dialect, check_source=CHECK_SOURCE[dialect],
                      function="shop.score")  # fmt: skip
    f = done.function_conformance
    assert f is not None and f.passed and f.rows_compared == 60 and f.labels_differ == 0
    assert f.max_difference <= TOLERANCE
    assert done.function_sql is not None
    opening = {"duckdb": 'CREATE MACRO "shop"."score"("mlgate_table") AS TABLE SELECT',
               "postgresql": 'CREATE FUNCTION "shop"."score"("mlgate_row" "rows") RETURNS TABLE',
               "mysql": "CREATE FUNCTION `shop`.`score`(`x1` DOUBLE, `x2` DOUBLE",
               }[dialect]  # fmt: skip
    assert done.function_sql.startswith(opening), done.function_sql[:120]
    body = done.to_json()
    assert body["function_conformance"]["passed"] is True and body["function_sql"]


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql", "mysql"])
def test_the_function_answers_rows_it_never_saw_as_served(
    world: Services, dialect: Dialect
) -> None:
    """Unseen categories, case and trailing spaces, missing values and extremes, through the
    function as through the query."""
    name = train(world, "logistic_regression", "three")
    version = resolve_version(world.uow(), name, None)
    predictor = world.predictors.get(version)
    frame = conform(awkward_rows(), version.columns)
    served = predictor.score(frame)
    template = compile_template(version, predictor.pipeline, dialect)
    source = CHECK_SOURCE[dialect]
    url = None if source is None else world.sources.get(source).url
    found: dict[str, object] = {}
    verify(version, template, frame, served, open_scratch(dialect, url), function=True,
           found=found)  # type: ignore[arg-type]  # fmt: skip
    checked = found["function"]
    assert checked.passed and checked.rows_compared == 200  # type: ignore[attr-defined]


def test_sqlite_has_no_function_and_says_so_before_checking(world: Services) -> None:
    name = train(world, "ridge", "value")
    with pytest.raises(Conflict, match="SQLite has no CREATE FUNCTION"):
        export_sql(world.uow(), world.artifacts, world.predictors, _no_scratch, name, None,
                   dialect="sqlite", function="score")  # fmt: skip


def _no_scratch(dialect: str, url: str | None) -> object:
    raise AssertionError("nothing is checked for a function the dialect cannot have")


def test_postgresql_and_mysql_functions_take_no_key(world: Services) -> None:
    name = train(world, "ridge", "value")
    for dialect in ("postgresql", "mysql"):
        with pytest.raises(InvalidInput, match="key columns are the caller's"):
            export_sql(world.uow(), world.artifacts, world.predictors, _no_scratch, name, None,
                       dialect=dialect, key=("id",), check_source=CHECK_SOURCE[dialect],
                       function="score")  # fmt: skip


class Shifted(ServerScratch):
    """PostgreSQL, handed the function with its intercept moved: what a corrupted function
    would answer. The query itself is left alone."""

    def execute(self, sql: str) -> None:
        assert sql.startswith("CREATE FUNCTION")
        super().execute(sql.replace("AS DOUBLE PRECISION) AS", "AS DOUBLE PRECISION) + 1e-3 AS", 1))


def test_a_function_that_misses_is_refused(world: Services) -> None:
    name = train(world, "ridge", "value")
    version = resolve_version(world.uow(), name, None)
    predictor = world.predictors.get(version)
    frame = conform(table(60, seed=3), version.columns)
    served = predictor.score(frame)
    template = compile_template(version, predictor.pipeline, "postgresql")
    scratch = Shifted(world.sources.get("pg").url)
    with pytest.raises(Conflict, match="postgresql SQL function of .* does not answer"):
        verify(version, template, frame, served, scratch, function=True, found={})


def test_the_function_handed_out_runs_where_it_was_made_for(
    world: Services, tmp_path: Path
) -> None:
    """The CLI writes the macro; created in a DuckDB database holding the table, it answers
    each key as the query does. And the API route hands out PostgreSQL's function."""
    from mlgate.cli.main import app as cli

    name = train(world, "logistic_regression", "binary")
    out = tmp_path / "score.sql"
    result = CliRunner().invoke(
        cli,
        ["models", "export", f"{name}@1", "--format", "sql", "--dialect", "duckdb", "--key", "id",
         "--table", "rows", "--function", "score", "-o", str(out)],
        obj=world,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "-- the function: checked on DuckDB" in text
    rows = table(50, seed=9)
    rows.insert(0, "id", range(50))
    db = duckdb.connect(":memory:")
    db.register("incoming", rows)
    db.execute("CREATE TABLE rows AS SELECT * FROM incoming")
    db.execute("".join(line for line in text.splitlines(keepends=True)
                       if not line.startswith("--")).rstrip().rstrip(";"))  # fmt: skip
    by_macro = db.execute("SELECT * FROM score('rows') ORDER BY id").df()
    version = resolve_version(world.uow(), name, None)
    served = world.predictors.get(version).score(conform(rows, version.columns))
    assert by_macro["prediction"].tolist() == [str(p) for p in served.predictions]
    assert (by_macro["probability_yes"] - pd.Series(served.probabilities)  # type: ignore[arg-type]
            .map(lambda p: p[1])).abs().max() < 1e-9  # fmt: skip

    headers = {"Authorization": f"Bearer {admin_token(world, 'read', 'train')}"}
    with TestClient(create_app(world)) as client:
        answer = client.get(f"/v1/models/{name}/versions/1/export",
                            params={"format": "sql", "dialect": "postgresql", "function": "score",
                                    "check_source": "pg"}, headers=headers)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["function_sql"].startswith('CREATE FUNCTION "score"(')
        refused = client.get(f"/v1/models/{name}/versions/1/export",
                             params={"format": "sql", "dialect": "sqlite", "function": "score"},
                             headers=headers)  # fmt: skip
        assert refused.status_code == 409 and "SQLite has no CREATE FUNCTION" in refused.text
