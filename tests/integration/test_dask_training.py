"""Training on a Dask cluster: a local cluster of two worker processes with memory limits trains
from a PostgreSQL table; the model lands within a stated tolerance of single-machine training on
the same rows, serves like any other version, and its snapshot is a partitioned Parquet dataset.

One test measures each worker's peak memory above its own baseline while the cluster trains a
table, against the table's size as one DataFrame (the way a single machine would hold it): the
workers keep only their share of the training matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.schema import conform
from mlgate.training.service import TrainSpec, read_snapshot, train_model
from tests.conftest import add_source_to

distributed = pytest.importorskip("distributed")
ROWS = 150_000
WORKER_MEMORY = 2**30  # a worker imports ~250 MiB of libraries, and ~200 MiB more to score
WIDE_ROWS = 100_000  # 48 features: ~38 MiB as one DataFrame
WIDE_FEATURES = 48


def _customers(url: str, table: str, rows: int) -> None:
    """Churn-like rows made by PostgreSQL itself (seeded): numbers, a category with missing
    values, and a target that depends on them."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(0.42)"))
        conn.execute(sa.text(f"""
            CREATE TABLE {table} AS
            WITH base AS (
                SELECT g AS id, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                       random() AS u,
                       (ARRAY['monthly', 'yearly', 'two-year'])[1 + floor(random() * 3)::int]
                           AS contract
                FROM generate_series(1, {rows}) AS g
            )
            SELECT id, r1 * 72 AS tenure, 20 + r2 * 100 AS charges, r3 AS usage,
                   CASE WHEN r4 < 0.05 THEN NULL ELSE contract END AS contract,
                   (u < 1 / (1 + exp(-(1.0 - 0.05 * r1 * 72 + 0.012 * (20 + r2 * 100)
                       + CASE contract WHEN 'monthly' THEN 0.9 ELSE -0.5 END))))::int AS churned
            FROM base
        """))  # fmt: skip
        conn.execute(sa.text(f"ALTER TABLE {table} ADD PRIMARY KEY (id)"))
    engine.dispose()


def _wide(url: str, table: str, rows: int) -> None:
    """Many numeric features, a few of which matter (seeded, made by PostgreSQL)."""
    engine = sa.create_engine(url)
    features = ", ".join(f"random() AS x{i:02d}" for i in range(WIDE_FEATURES))
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(0.17)"))
        conn.execute(sa.text(f"""
            CREATE TABLE {table} AS
            WITH base AS (SELECT g AS id, random() AS u, {features}
                          FROM generate_series(1, {rows}) AS g)
            SELECT id, {", ".join(f"x{i:02d}" for i in range(WIDE_FEATURES))},
                   (u < 1 / (1 + exp(-(-1.5 + 2.0 * x00 - 1.5 * x01 + 1.0 * x02 * x03
                                       + 0.8 * x04))))::int AS label
            FROM base
        """))  # fmt: skip
        conn.execute(sa.text(f"ALTER TABLE {table} ADD PRIMARY KEY (id)"))
    engine.dispose()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY,
        dashboard_address=":0",
    )  # fmt: skip
    yield local.scheduler_address
    local.close()


@pytest.fixture
def warehouse(services: Services, postgres_url: str, tmp_path: Path) -> str:
    add_source_to(services, "warehouse", postgres_url, cwd=tmp_path)
    return postgres_url


@pytest.mark.slow(reason="a local cluster of Dask worker processes starts, then trains")
def test_logistic_regression_on_the_cluster_reaches_the_single_machine_optimum(
    services: Services, warehouse: str, cluster: str
) -> None:
    _customers(warehouse, "customers", ROWS)
    lines: list[str] = []
    spec = TrainSpec("churn", "warehouse", "churned", "logistic_regression", table="customers",
                     report=False, dask=cluster, partitions=12)  # fmt: skip
    on_cluster = train_model(services.uow(), services.artifacts, services.open_source, spec,
                             now=services.clock, progress=lambda s, d: lines.append(d))  # fmt: skip
    alone = train_model(services.uow(), services.artifacts, services.open_source,
                        TrainSpec("churn-alone", "warehouse", "churned", "logistic_regression",
                                  table="customers", report=False), now=services.clock)  # fmt: skip
    whole = read_snapshot(services.uow(), services.artifacts, "churn-alone", 1)
    version = on_cluster.version
    assert version.lineage.n_rows == ROWS == len(whole)
    assert (version.report or {})["distributed"]["partitions"] == 12
    assert any("12 partitions" in line for line in lines)
    assert any(line.startswith("Newton step") for line in lines)
    # Stated tolerance: the holdouts differ (a hash of the key vs a random split), both of
    # ~30,000 rows, so the metrics agree to about twice their sampling error.
    for metric, tolerance in (("roc_auc", 0.012), ("accuracy", 0.0155), ("log_loss", 0.012)):
        assert abs(version.metrics[metric] - alone.version.metrics[metric]) < tolerance, metric
    # The same optimum: the coefficients of the two fits agree closely.
    coefficients = []
    for fitted in (version, alone.version):
        pipeline = services.predictors.get(fitted)._pipeline
        names = pipeline[0].get_feature_names_out()
        coefficients.append(dict(zip(names, pipeline[-1].coef_[0], strict=True)))
    assert coefficients[0].keys() == coefficients[1].keys(), coefficients
    for name, value in coefficients[0].items():
        assert abs(value - coefficients[1][name]) < 0.05, (name, coefficients)
    # The snapshot is one Parquet file per partition, read back whole.
    parts = [n for n in (version.report or {})["attachments"] if n.startswith("snapshot/")]
    assert len(parts) == 12
    snapshot = read_snapshot(services.uow(), services.artifacts, "churn", version.number)
    assert len(snapshot) == ROWS and set(snapshot["id"]) == set(whole["id"])


@pytest.mark.slow(reason="a local cluster of Dask worker processes starts, then trains")
def test_linear_regression_on_the_cluster_solves_the_least_squares_of_one_machine(
    services: Services, warehouse: str, cluster: str
) -> None:
    engine = sa.create_engine(warehouse)
    with engine.begin() as conn:  # y = 3 x1 - 2 x2 + a category's shift + small noise (seeded)
        conn.execute(sa.text("SELECT setseed(0.31)"))
        conn.execute(sa.text("""
            CREATE TABLE lines AS
            WITH base AS (SELECT g AS id, random() AS x1, random() AS x2, random() AS e,
                                 (ARRAY['a', 'b', 'c'])[1 + floor(random() * 3)::int] AS kind
                          FROM generate_series(1, 40000) AS g)
            SELECT id, x1, x2, kind,
                   3 * x1 - 2 * x2 + CASE kind WHEN 'b' THEN 0.5 ELSE 0 END + 0.01 * (e - 0.5)
                       AS y
            FROM base
        """))  # fmt: skip
        conn.execute(sa.text("ALTER TABLE lines ADD PRIMARY KEY (id)"))
    engine.dispose()
    spec = TrainSpec("lines", "warehouse", "y", "linear_regression", table="lines",
                     report=False, dask=cluster, partitions=4)  # fmt: skip
    on_cluster = train_model(services.uow(), services.artifacts, services.open_source, spec,
                             now=services.clock).version  # fmt: skip
    alone_spec = TrainSpec("lines-alone", "warehouse", "y", "linear_regression", table="lines",
                           report=False)  # fmt: skip
    alone = train_model(services.uow(), services.artifacts, services.open_source, alone_spec,
                        now=services.clock).version  # fmt: skip
    assert (on_cluster.report or {})["distributed"]["partitions"] == 4
    assert on_cluster.metrics["r2"] > 0.999 and alone.metrics["r2"] > 0.999
    # Two least-squares fits of an almost exact line on different training rows: the same
    # coefficients (in the pipeline's feature units) to well within the noise's reach. With
    # every category one-hot beside an intercept only their differences are identified.
    fits = []
    for version in (on_cluster, alone):
        pipeline = services.predictors.get(version)._pipeline
        names = pipeline[0].get_feature_names_out()
        fit = dict(zip(names, pipeline[-1].coef_, strict=True))
        base = fit.pop("categorical__kind_a")
        fits.append({n: v - base if n.startswith("categorical__") else v for n, v in fit.items()})
    assert fits[0].keys() == fits[1].keys(), fits
    for name, value in fits[0].items():
        assert abs(value - fits[1][name]) < 0.01, (name, fits)


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_boosting_on_the_cluster_matches_one_machine(
    services: Services, warehouse: str, cluster: str, algorithm: str
) -> None:
    _customers(warehouse, "small", 60_000)
    params = {"n_estimators": 60, "max_depth": 4}
    spec = TrainSpec("boosted", "warehouse", "churned", algorithm, table="small", params=params,
                     report=False, dask=cluster, partitions=6)  # fmt: skip
    on_cluster = train_model(services.uow(), services.artifacts, services.open_source, spec,
                             now=services.clock).version  # fmt: skip
    alone = train_model(services.uow(), services.artifacts, services.open_source,
                        TrainSpec("boosted-alone", "warehouse", "churned", algorithm,
                                  table="small", params=params, report=False),
                        now=services.clock).version  # fmt: skip
    # Stated tolerance: boosting on partitions sees the same rows but builds its histograms
    # per worker, and the holdouts differ (~12,000 rows each): AUC within 0.015.
    assert abs(on_cluster.metrics["roc_auc"] - alone.metrics["roc_auc"]) < 0.015
    predictor = services.predictors.get(on_cluster)
    rows = read_snapshot(services.uow(), services.artifacts, "boosted", 1).head(5)
    answer = predictor.score(conform(rows, on_cluster.columns))
    assert len(answer.predictions) == 5 and set(answer.predictions) <= {0, 1}


def test_what_the_cluster_does_not_train_is_refused_with_the_reason(
    services: Services, warehouse: str, cluster: str
) -> None:
    _customers(warehouse, "tiny", 2_000)
    for algorithm, query, message in (
        ("random_forest", None, "trains logistic_regression"),
        ("logistic_regression", "SELECT * FROM tiny", "a query is not split"),
    ):
        spec = TrainSpec("x", "warehouse", "churned", algorithm, table=None if query else "tiny",
                         query=query, report=False, dask=cluster)  # fmt: skip
        with pytest.raises(InvalidInput, match=message):
            train_model(services.uow(), services.artifacts, services.open_source, spec,
                        now=services.clock)  # fmt: skip


def test_the_cli_trains_on_the_cluster_named_by_the_setting(
    services: Services, warehouse: str, cluster: str
) -> None:
    from dataclasses import replace

    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    _customers(warehouse, "cli_rows", 20_000)
    configured = replace(services, settings=replace(services.settings, dask_address=cluster))
    args = ["train", "cli-model", "--source", "warehouse", "--table", "cli_rows",
            "--target", "churned", "--algorithm", "logistic_regression", "--no-report"]  # fmt: skip
    result = CliRunner().invoke(cli, args, obj=configured)
    assert result.exit_code == 0, result.output
    version = read_snapshot(services.uow(), services.artifacts, "cli-model", 1)
    assert len(version) == 20_000
    from mlgate.registry.service import resolve_version

    trained = resolve_version(services.uow(), "cli-model", 1)
    assert (trained.report or {})["distributed"]["workers"] == 2
    # An algorithm without a Dask path trains here, though the setting names a cluster...
    tree = ["train", "cli-tree", *args[2:8], "--algorithm", "decision_tree", "--no-report"]
    here = CliRunner().invoke(cli, tree, obj=configured)
    assert here.exit_code == 0, here.output
    assert "distributed" not in (resolve_version(services.uow(), "cli-tree", 1).report or {})
    # ...but asked for by name, the cluster says why it will not.
    refused = CliRunner().invoke(cli, [*tree, "--dask", cluster], obj=configured)
    assert refused.exit_code != 0 and "trains logistic_regression" in refused.output


def test_offline_scoring_on_the_cluster_matches_scoring_here(
    services: Services, warehouse: str, cluster: str, tmp_path: Path
) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    _customers(warehouse, "to_score", 30_000)
    spec = TrainSpec("scorer", "warehouse", "churned", "logistic_regression", table="to_score",
                     drop=("id",), report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec,
                now=services.clock)  # fmt: skip
    outputs = {}
    for where, extra in (("cluster", ["--dask", cluster]), ("here", ["--dask", "none"])):
        path = tmp_path / f"{where}.parquet"
        result = CliRunner().invoke(
            cli, ["predict", "scorer", "--source", "warehouse", "--table", "to_score",
                  "--output", str(path), *extra], obj=services,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "Scored 30,000 rows" in result.output
        outputs[where] = pd.read_parquet(path).sort_values("id").reset_index(drop=True)
    cluster_rows, here_rows = outputs["cluster"], outputs["here"]
    assert cluster_rows["id"].tolist() == here_rows["id"].tolist()
    assert (cluster_rows["prediction"] == here_rows["prediction"]).all()
    assert np.allclose(cluster_rows["probability_1"], here_rows["probability_1"], atol=1e-12)
    assert cluster_rows["id"].dtype.kind == "i"  # the rows as the database has them


def _memory_of_this_process(reset: bool) -> dict[str, int]:
    """Run on a worker: its resident memory now and its peak since the last reset (Linux's
    VmRSS and VmHWM, bytes); `reset` first frees what can be freed and sets the peak to now."""
    import ctypes
    import gc

    if reset:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory back to the system: a true base
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here
    status = Path("/proc/self/status").read_text()
    kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status.splitlines())
           if k in ("VmRSS", "VmHWM")}  # fmt: skip
    return {"rss": kib["VmRSS"] * 1024, "peak": kib["VmHWM"] * 1024}


@pytest.mark.slow(
    reason="a fresh cluster of two Dask workers trains a 100,000-row PostgreSQL table while each "
    "worker's peak memory is measured, then one machine trains it for the comparison"
)
def test_no_worker_holds_the_table_the_cluster_trains_from_postgresql(
    services: Services, warehouse: str
) -> None:
    """Each worker's peak memory above its own baseline, while the cluster trains on the whole
    table, stays below the table's size in memory (as one DataFrame, the way one machine
    holds it): the workers keep only their share of the training matrix, never the table. The
    model lands within a stated tolerance of one machine's."""
    from distributed import Client

    from mlgate.sources.sql import SqlSource

    _customers(warehouse, "warm", 2_000)
    _wide(warehouse, "wide", WIDE_ROWS)
    source = SqlSource("warehouse", warehouse)
    try:
        head = source.read_query("SELECT * FROM wide ORDER BY id LIMIT 20000")
    finally:
        source.close()
    table_bytes = head.memory_usage(deep=True).sum() / len(head) * WIDE_ROWS
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY,
        dashboard_address=":0",
    )  # fmt: skip
    lines: list[str] = []
    with local, Client(local) as client:
        # A first, tiny training loads the libraries a worker needs, so the baseline has them.
        warm = TrainSpec("warm", "warehouse", "churned", "logistic_regression", table="warm",
                         report=False, dask=local.scheduler_address)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, warm,
                    now=services.clock)  # fmt: skip
        baseline = client.run(_memory_of_this_process, True)
        spec = TrainSpec("wide", "warehouse", "label", "logistic_regression", table="wide",
                         report=False, dask=local.scheduler_address, partitions=40)  # fmt: skip
        on_cluster = train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock,
            progress=lambda stage, detail: lines.append(detail),
        ).version  # fmt: skip
        after = client.run(_memory_of_this_process, False)
    grown = {w: after[w]["peak"] - baseline[w]["rss"] for w in baseline}
    assert len(grown) == 2, grown
    # Each worker held its share (half the training matrix as float32 and half the holdout
    # rows: ~0.3 of the table) and a few parts in flight (~0.6 in all here), never the table.
    for worker, extra in grown.items():
        assert 0.15 * table_bytes < extra < table_bytes, (worker, extra, table_bytes)
    assert on_cluster.lineage.n_rows == WIDE_ROWS
    assert any(line.startswith("Newton step") for line in lines), lines
    parts = [n for n in (on_cluster.report or {})["attachments"] if n.startswith("snapshot/")]
    assert len(parts) == 40
    alone = train_model(services.uow(), services.artifacts, services.open_source,
                        TrainSpec("wide-alone", "warehouse", "label", "logistic_regression",
                                  table="wide", drop=("id",), report=False),
                        now=services.clock).version  # fmt: skip
    # Stated tolerance: holdouts of ~20,000 rows each, split differently (a hash of the key vs
    # a random split), so the metrics differ by their sampling error (~0.007): within 0.012.
    for metric, tolerance in (("roc_auc", 0.012), ("accuracy", 0.012), ("log_loss", 0.012)):
        assert abs(on_cluster.metrics[metric] - alone.metrics[metric]) < tolerance, metric
