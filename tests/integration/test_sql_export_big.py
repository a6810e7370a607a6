"""A big ensemble still exports: XGBoost with 1,000 trees of depth 8, written as SQL in
balanced sums (one chain of 1,000 `+` would pass SQLite's limit of 1,000 on an expression's
depth) and verified on SQLite, DuckDB, PostgreSQL and MariaDB against its holdout."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from mlgate.bootstrap import Services
from mlgate.exports.sql.model import Dialect
from mlgate.exports.sql.service import export_sql
from mlgate.registry import formats
from mlgate.registry.service import resolve_version
from mlgate.sources import demo
from mlgate.sources.scratch import open_scratch
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import (
    MARIADB_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    add_source_to,
    make_services,
    throwaway_database,
)

pytestmark = pytest.mark.slow(
    reason="1,000 trees are 6 MB of SQL: written in 2 to 4 s, then read by each engine in "
    "seconds (DuckDB binds it for about 10 s)"
)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str]]:
    root = tmp_path_factory.mktemp("big")
    services = make_services(root / "home")
    rng = np.random.default_rng(0)
    n = 2000
    X = rng.normal(size=(n, 6))
    frame = pd.DataFrame(X, columns=[f"x{k}" for k in range(6)])
    frame.loc[rng.random(n) < 0.05, "x3"] = np.nan
    frame["y"] = np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2] + rng.normal(scale=0.1, size=n)
    demo.write_sqlite(root / "rows.db", frame, table="rows")
    add_source_to(services, "rows", f"sqlite:///{root / 'rows.db'}", cwd=root)
    pg = throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    maria = throwaway_database(MARIADB_ADMIN_URL, "MariaDB")
    add_source_to(services, "pg", next(pg), cwd=root)
    add_source_to(services, "maria", next(maria), cwd=root)
    params = {"n_estimators": 1000, "max_depth": 8, "learning_rate": 0.05}
    spec = TrainSpec("big", "rows", "y", "xgboost", table="rows", params=params, report=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
    yield services, "big"
    services.close()
    for made in (pg, maria):
        next(made, None)  # drops the database


def test_the_model_is_as_big_as_it_says(big: tuple[Services, str]) -> None:
    services, name = big
    version = resolve_version(services.uow(), name, None)
    pipeline = formats.load(services.artifacts.get(version.artifact.key),
                            expected_sha256=version.artifact.sha256, ref=version.ref,
                            fmt=version.artifact.format)  # fmt: skip
    model = json.loads(bytes(pipeline[-1].get_booster().save_raw("json")))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == 1000

    def depth(tree: dict[str, list[int]], node: int = 0) -> int:
        left, right = tree["left_children"][node], tree["right_children"][node]
        return 0 if left == -1 else 1 + max(depth(tree, left), depth(tree, right))

    assert max(depth(t) for t in trees) == 8


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb", "postgresql", "mysql"])
def test_1000_trees_of_depth_8_export_and_answer_as_the_version_does(
    big: tuple[Services, str], dialect: Dialect
) -> None:
    services, name = big
    check = {"postgresql": "pg", "mysql": "maria"}.get(dialect)
    done = export_sql(services.uow(), services.artifacts, services.predictors, open_scratch,
                      name, None, dialect=dialect, check_source=check)  # fmt: skip
    c = done.conformance
    assert c.passed and c.rows_compared == 400
    assert c.max_excess is not None and c.max_excess <= c.tolerance
    assert len(done.sql) > 1_000_000
