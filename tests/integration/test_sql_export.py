"""Export to SQL, checked on the engines themselves: for every covered algorithm, task and
dialect, the query runs on real SQLite, DuckDB, PostgreSQL and MariaDB over the version's
holdout rows (missing values among them) and over rows with unseen categories, categories that
differ only in case or a trailing space, and extreme values; it answers as the served version
does. A corrupted query is refused with the size of its miss; what has no SQL says why."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.errors import Conflict
from mlgate.exports.sql.compile import LINEAR, NO_SQL, TREES, compile_template, refusal
from mlgate.exports.sql.model import DIALECTS, TOLERANCE, Dialect
from mlgate.exports.sql.service import export_sql, verify
from mlgate.registry import formats
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.sources import demo
from mlgate.sources.scratch import SqliteScratch, open_scratch
from mlgate.training.catalogue import CATALOGUE
from tests.conftest import (
    MARIADB_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    add_source_to,
    admin_token,
    make_services,
    throwaway_database,
)
from tests.integration.test_explanations import table, trained

CHECK_SOURCE: dict[Dialect, str | None] = {
    "sqlite": None, "duckdb": None, "postgresql": "pg", "mysql": "maria",
}  # fmt: skip
LINEAR_CASES = [
    ("linear_regression", "value"),
    ("ridge", "value"),
    ("lasso", "value"),
    ("elastic_net", "value"),
    ("logistic_regression", "binary"),
    ("logistic_regression", "three"),
]
TREE_CASES = [
    (algorithm, target)
    for algorithm in ("decision_tree", "random_forest", "xgboost", "lightgbm")
    for target in ("binary", "three", "value")
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Services over the explanation tests' table, with a PostgreSQL and a MariaDB database
    of their own registered as the sources `pg` and `maria` (the check servers)."""
    root = tmp_path_factory.mktemp("sqlx")
    services = make_services(root / "home")
    demo.write_sqlite(root / "rows.db", table(), table="rows")
    add_source_to(services, "rows", f"sqlite:///{root / 'rows.db'}", cwd=root)
    pg = throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    maria = throwaway_database(MARIADB_ADMIN_URL, "MariaDB")
    add_source_to(services, "pg", next(pg), cwd=root)
    add_source_to(services, "maria", next(maria), cwd=root)
    yield services
    services.close()
    for made in (pg, maria):
        next(made, None)  # drops the database


def train(services: Services, algorithm: str, target: str) -> str:
    name = f"{algorithm.replace('_', '-')}-{target}"
    if resolve_version_or_none(services, name) is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trained(services, algorithm, target)
    return name


def resolve_version_or_none(services: Services, name: str) -> object | None:
    try:
        return resolve_version(services.uow(), name, None)
    except Exception:
        return None


def awkward_rows(n: int = 200) -> pd.DataFrame:
    """Rows the holdout lacks: unseen categories, one differing only in case or a trailing
    space, missing values everywhere, and numbers far outside training's range."""
    frame = table(n, seed=11)
    frame["color"] = frame["color"].astype(object)
    frame["size"] = frame["size"].astype(object)
    frame.loc[0:9, "color"] = ["purple", "Red", "red ", "RED", None, "", "blue", "green", "é", "%"]
    frame.loc[10:14, "size"] = ["xl", "XXL", None, "S ", "a\\b'c"]
    frame.loc[15:19, "x1"] = [1e12, -1e12, 1e300, -1e300, np.nan]
    frame.loc[20:24, "x2"] = [5e8, -5e8, np.nan, 0.0, -0.0]
    return frame


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("algorithm", "target"), LINEAR_CASES + TREE_CASES)
def test_a_version_as_sql_answers_as_it_does_on_each_engine(
    world: Services, algorithm: str, target: str, dialect: Dialect
) -> None:
    name = train(world, algorithm, target)
    done = export_sql(world.uow(), world.artifacts, world.predictors, open_scratch, name, None,
                      dialect=dialect, check_source=CHECK_SOURCE[dialect])  # fmt: skip
    c = done.conformance
    assert c.passed and c.rows_compared == 60 and c.max_difference <= TOLERANCE
    assert c.labels_differ == 0 and c.ties <= 3
    assert c.engine.split()[0] in {"SQLite", "DuckDB", "PostgreSQL", "MariaDB"}
    assert done.sql.upper().startswith("SELECT") and '"rows"' in done.sql.replace("`", '"')
    version = resolve_version(world.uow(), name, None)
    pipeline = formats.load(world.artifacts.get(version.artifact.key),
                            expected_sha256=version.artifact.sha256, ref=version.ref,
                            fmt=version.artifact.format)  # fmt: skip
    frame = conform(awkward_rows(), version.columns)
    with warnings.catch_warnings():  # scikit-learn's trees say 1e300 is past float32
        warnings.simplefilter("ignore", RuntimeWarning)
        served = world.predictors.get(version).score(frame)
    scratch = open_scratch(dialect, _url(world, dialect))
    awkward = verify(version, compile_template(version, pipeline, dialect), frame, served, scratch)
    assert awkward.passed and awkward.rows_compared == 200


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_corrupted_query_is_refused_with_the_size_of_its_miss(
    world: Services, dialect: Dialect
) -> None:
    for algorithm, target in [("logistic_regression", "three"), ("ridge", "value")]:
        name = train(world, algorithm, target)
        version = resolve_version(world.uow(), name, None)
        pipeline = formats.load(world.artifacts.get(version.artifact.key),
                                expected_sha256=version.artifact.sha256, ref=version.ref,
                                fmt=version.artifact.format)  # fmt: skip
        frame = conform(table(60, seed=3), version.columns)
        served = world.predictors.get(version).score(frame)
        corrupted = copy.deepcopy(pipeline)
        corrupted[-1].coef_ = np.asarray(corrupted[-1].coef_) * (1 + 1e-3)
        template = compile_template(version, corrupted, dialect)
        scratch = open_scratch(dialect, _url(world, dialect))
        with pytest.raises(Conflict, match=r"does not answer as the version does .* up to"):
            verify(version, template, frame, served, scratch)


class Tampered(SqliteScratch):
    """SQLite, handed the query with its first split turned round: what a corrupted export
    would run."""

    def query(self, sql: str) -> list[tuple[object, ...]]:
        assert " <= " in sql
        return super().query(sql.replace(" <= ", " > ", 1))


def test_a_tree_query_corrupted_on_its_way_to_the_engine_is_refused(world: Services) -> None:
    name = train(world, "xgboost", "binary")
    version = resolve_version(world.uow(), name, None)
    pipeline = formats.load(world.artifacts.get(version.artifact.key),
                            expected_sha256=version.artifact.sha256, ref=version.ref,
                            fmt=version.artifact.format)  # fmt: skip
    frame = conform(table(200, seed=4), version.columns)
    served = world.predictors.get(version).score(frame)
    with pytest.raises(Conflict, match=r"labels differ|probabilities by up to"):
        verify(version, compile_template(version, pipeline, "sqlite"), frame, served, Tampered())


def _url(world: Services, dialect: Dialect) -> str | None:
    source = CHECK_SOURCE[dialect]
    return None if source is None else world.sources.get(source).url


def test_every_algorithm_of_the_catalogue_is_exported_or_refused_with_a_reason() -> None:
    for name in CATALOGUE:
        assert (name in LINEAR | TREES) != (name in NO_SQL), name


def test_the_api_and_cli_export_sql_and_refuse_with_the_reason(
    world: Services, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    name = train(world, "logistic_regression", "binary")
    knn = train(world, "k_nearest_neighbors", "binary")
    token = admin_token(world, "read", "train")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(world)) as client:
        answer = client.get(
            f"/v1/models/{name}/versions/1/export",
            params={"format": "sql", "dialect": "duckdb", "table": "shop.customers",
                    "key": ["id"]},
            headers=headers,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["conformance"]["passed"] and body["conformance"]["rows_compared"] == 60
        assert body["conformance"]["engine"].startswith("DuckDB")
        assert body["outputs"] == ["prediction", "probability_no", "probability_yes"]
        assert '"shop"."customers"' in body["sql"] and answer.headers["x-mlgate-sql-ties"] == "0"
        url = "/v1/models/{}/versions/1/export"
        refused = client.get(url.format(knn), params={"format": "sql", "dialect": "sqlite"},
                             headers=headers)  # fmt: skip
        assert refused.status_code == 409
        assert "searches the training rows" in refused.json()["detail"]
        no_server = client.get(url.format(name), params={"format": "sql", "dialect": "mysql"},
                               headers=headers)  # fmt: skip
        assert no_server.status_code == 409 and "needs a mysql server" in no_server.json()["detail"]
        # a maintainer may export, but not make a scratch schema on a source's server it names
        from mlgate.access import accounts, grants
        from mlgate.access.service import create_key

        accounts.create_user(world.uow(), by=None, name="mia", password=None, is_admin=False,
                             now=world.clock())  # fmt: skip
        grants.add_grant(world.uow(), by=None, subject_kind="user", subject="mia", target=name,
                         role="maintainer", now=world.clock(), actor="test")  # fmt: skip
        _, mia = create_key(world.uow(), world.server_secret, by=None, owner_kind="user",
                            owner="mia", name="mia", now=world.clock(),
                            scopes=("read", "train"))  # fmt: skip
        as_mia = {"Authorization": f"Bearer {mia}"}
        mine = client.get(url.format(name), params={"format": "sql", "dialect": "sqlite"},
                          headers=as_mia)  # fmt: skip
        assert mine.status_code == 200, mine.text
        named = client.get(url.format(name), headers=as_mia, params={
            "format": "sql", "dialect": "postgresql", "check_source": "anything"})  # fmt: skip
        assert named.status_code == 403 and named.json()["code"] == "admin_only"
    path = tmp_path / "churn.sql"
    result = CliRunner().invoke(
        cli, ["models", "export", f"{name}@1", "--format", "sql", "--dialect", "sqlite",
              "--key", "id", "-o", str(path)], obj=world,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "labels identical" in result.output
    import sqlite3

    db = sqlite3.connect(":memory:")
    frame = table(20, seed=5)
    frame.insert(0, "id", range(20))
    frame.to_sql("rows", db, index=False)
    answered = db.execute(path.read_text()).fetchall()
    version = resolve_version(world.uow(), name, None)
    served = world.predictors.get(version).score(conform(frame, version.columns))
    assert [r[1] for r in sorted(answered)] == served.predictions
    view = tmp_path / "view.sql"
    result = CliRunner().invoke(
        cli, ["models", "export", f"{name}@1", "--format", "sql", "--dialect", "sqlite",
              "--key", "id", "--view", "main.churn_scores", "-o", str(view)], obj=world,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 'CREATE VIEW "main"."churn_scores" AS SELECT' in view.read_text()
    db.execute(view.read_text())
    in_view = db.execute("SELECT * FROM churn_scores ORDER BY id").fetchall()
    assert in_view == sorted(answered)
    assert refusal(resolve_version(world.uow(), knn, None)) is not None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_predict_in_database_scores_a_table_where_it_lies_and_notes_the_version(
    world: Services, dialect: Dialect, tmp_path: Path
) -> None:
    import sqlalchemy as sa
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli
    from mlgate.sources.scratch import RECORDS

    name = train(world, "xgboost", "three")
    source = {"sqlite": "rows", "postgresql": "pg", "mysql": "maria"}[dialect]
    url = world.sources.get(source).url
    engine = sa.create_engine(url)
    frame = awkward_rows(120)
    frame.insert(0, "id", range(120))
    frame.drop(columns=["binary", "three", "value"]).to_sql(
        f"customers_{dialect}", engine, index=False, if_exists="replace"
    )
    out = f"scores_{dialect}"
    result = CliRunner().invoke(
        cli, ["predict", f"{name}@1", "--source", source, "--table", f"customers_{dialect}",
              "--in-database", "--into-table", out, "--key", "id"], obj=world,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 120 rows" in result.output
    version = resolve_version(world.uow(), name, None)
    with engine.connect() as conn:
        scored = pd.read_sql(sa.text(f"SELECT * FROM {out} ORDER BY id"), conn)
        noted = conn.execute(
            sa.text(f"SELECT model, version, artifact_sha256, n_rows FROM {RECORDS}"
                    " WHERE table_name = :t"), {"t": out}
        ).one()  # fmt: skip
    engine.dispose()
    served = world.predictors.get(version).score(conform(frame, version.columns))
    assert scored["prediction"].astype(str).tolist() == [str(p) for p in served.predictions]
    probabilities = scored[[f"probability_{c}" for c in version.classes or ()]].to_numpy()
    np.testing.assert_allclose(probabilities, served.probabilities, atol=1e-6)  # type: ignore[arg-type]
    assert tuple(noted) == (name, 1, version.artifact.sha256, 120)
    from mlgate.access.model import AuditQuery

    events = world.access.audit_log(AuditQuery(action="models.score_in_database"))
    assert any(e.target == version.ref and e.detail["into_table"] == out for e in events)


def test_a_latin1_mysql_table_scored_in_database_answers_as_served(world: Services) -> None:
    # Found by review 37: categories were compared as the column's own bytes, so a latin1
    # column's `rød` never matched the query's UTF-8 'rød': 81 of 600 labels wrong, with the
    # check (on a utf8mb4 scratch table) passed. The column is read as UTF-8 bytes now.
    import sqlalchemy as sa
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    frame = table(300, seed=3)
    frame["color"] = frame["color"].map({"red": "rød", "green": "grøn", "blue": "blå"})
    frame.insert(0, "id", range(300))
    url = world.sources.get("maria").url
    engine = sa.create_engine(url)
    frame.to_sql("latin_rows", engine, index=False, if_exists="replace")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE latin_rows CONVERT TO CHARACTER SET latin1"))
    run = CliRunner().invoke
    trained_ = run(cli, ["train", "latin-logit", "--source", "maria", "--table", "latin_rows",
                         "--target", "three", "--drop", "id", "--drop", "binary", "--drop",
                         "value", "--no-report"], obj=world)  # fmt: skip
    assert trained_.exit_code == 0, trained_.output
    result = run(cli, ["predict", "latin-logit@1", "--source", "maria", "--table", "latin_rows",
                       "--in-database", "--into-table", "latin_scores", "--key", "id"],
                 obj=world)  # fmt: skip
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        scored = pd.read_sql(sa.text("SELECT * FROM latin_scores ORDER BY id"), conn)
    engine.dispose()
    version = resolve_version(world.uow(), "latin-logit", None)
    served = world.predictors.get(version).score(conform(frame, version.columns))
    assert scored["prediction"].astype(str).tolist() == [str(p) for p in served.predictions]
    probabilities = scored[[f"probability_{c}" for c in version.classes or ()]].to_numpy()
    np.testing.assert_allclose(probabilities, served.probabilities, atol=1e-6)  # type: ignore[arg-type]


def test_an_empty_or_repeated_key_column_is_refused_as_invalid(world: Services) -> None:
    # Found by review 37: `key=` answered `SELECT "", …` and `key=a&key=a` a query whose
    # output table PostgreSQL refuses; both are a 422 before anything is built.
    name = train(world, "logistic_regression", "binary")
    url = f"/v1/models/{name}/versions/1/export"
    with TestClient(create_app(world)) as client:
        headers = {"Authorization": f"Bearer {admin_token(world, 'read', 'train')}"}
        for keys in ([""], [" "], ["x1", "x1"]):
            answer = client.get(url, params={"format": "sql", "dialect": "sqlite", "key": keys},
                                headers=headers)  # fmt: skip
            assert answer.status_code == 422, answer.text
            assert "key column" in answer.json()["detail"]


def test_an_export_to_a_folder_that_is_not_there_is_an_error_not_a_traceback(
    world: Services, tmp_path: Path
) -> None:
    # Found by review 37: `models export … -o missing/dir/churn.sql` ended in a
    # FileNotFoundError traceback.
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    name = train(world, "logistic_regression", "binary")
    target = tmp_path / "missing" / "churn.sql"
    words = ["models", "export", f"{name}@1", "--format", "sql", "--dialect", "sqlite", "-o"]
    result = CliRunner().invoke(cli, [*words, str(target)], obj=world)
    assert result.exit_code == 1
    assert f"Error: {target}: No such file or directory" in result.output
    assert not isinstance(result.exception, OSError)
