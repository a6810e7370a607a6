"""A PostgreSQL or MariaDB table read in parallel partitions by a local Dask cluster of two worker
processes: the same rows and dtypes as reading it whole, split by key ranges or by hash."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlgate.errors import InvalidInput
from mlgate.schema import conform
from mlgate.sources import partitions
from mlgate.sources.model import SourceConfig
from mlgate.sources.sql import SqlSource

distributed = pytest.importorskip("distributed")
ROWS = 30_000


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="400MB",
        dashboard_address=":0",
    )  # fmt: skip
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def table(request: pytest.FixtureRequest) -> Iterator[tuple[SqlSource, SourceConfig]]:
    fixture = "postgres_url" if request.param == "postgresql" else "mariadb_url"
    url: str = request.getfixturevalue(fixture)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": np.arange(10, 10 + ROWS) * 3,  # gaps: ranges are of key values, not rows
            "amount": rng.normal(100, 20, ROWS).round(2),
            "plan": rng.choice(["free", "pro", None], ROWS),
            "churned": rng.integers(0, 2, ROWS),
        }
    )
    engine = sa.create_engine(url)
    frame.to_sql("events", engine, index=False)
    text = "text" if request.param == "postgresql" else "char(12)"
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events ADD PRIMARY KEY (id)"))
        conn.execute(sa.text(f"CREATE TABLE logs AS SELECT CAST(id AS {text}) AS code, amount "
                             "FROM events"))  # fmt: skip
    engine.dispose()
    source = SqlSource("warehouse", url)
    yield source, SourceConfig(name="warehouse", url=url, kind=request.param,
                               created_at=pd.Timestamp.now(tz="UTC").to_pydatetime())  # fmt: skip
    source.close()


def whole(source: SqlSource, name: str, plan: partitions.PartitionPlan) -> pd.DataFrame:
    return conform(source.read_table(name), plan.columns)


def test_key_ranges_of_the_primary_key_give_the_same_rows_as_reading_whole(
    client: object, table: tuple[SqlSource, SourceConfig]
) -> None:
    source, config = table
    plan = partitions.plan(source, "events", partitions=6)
    assert (plan.column, plan.method, len(plan.queries)) == ("id", "range", 6)
    frame = partitions.to_dask(config, plan)
    assert frame.npartitions == 6
    sizes = frame.map_partitions(len).compute()
    assert sizes.sum() == ROWS and sizes.min() > 0.8 * ROWS / 6  # even key widths, even parts
    parallel = frame.compute().sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(parallel, whole(source, "events", plan).sort_values("id")
                                  .reset_index(drop=True))  # fmt: skip


def test_a_text_column_is_split_by_the_databases_hash(
    client: object, table: tuple[SqlSource, SourceConfig]
) -> None:
    source, config = table
    with pytest.raises(InvalidInput, match="no integer primary key"):
        partitions.plan(source, "logs", partitions=4)
    plan = partitions.plan(source, "logs", partitions=4, column="code")
    assert plan.method == "hash"
    frame = partitions.to_dask(config, plan)
    parts = [frame.get_partition(i).compute() for i in range(4)]
    codes = [set(p["code"]) for p in parts]
    assert sum(len(c) for c in codes) == ROWS == len(set().union(*codes))  # disjoint, complete
    assert min(len(c) for c in codes) > ROWS / 4 * 0.8
    assert float(frame["amount"].sum().compute()) == pytest.approx(
        float(whole(source, "logs", plan)["amount"].sum())
    )
