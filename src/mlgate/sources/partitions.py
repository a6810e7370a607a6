"""A large SQL table as a Dask DataFrame, read in parallel partitions by the cluster's workers.

The plan splits the table by ranges of an integer key (its primary key, or a column given) into
parts of equal key width, or, for a column that is not an integer, by the database's hash of
it. Each part is one SELECT that a worker runs over its own connection: no row of the table
passes through the process that asked. Every part is conformed to one schema (inferred from the
table's first rows), so the partitions agree on columns and dtypes with single-machine reading.

Dask is imported here only, when a cluster is used (`pip install 'mlgate[dask]'`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

from mlgate.errors import InvalidInput
from mlgate.schema import Column, conform, infer_columns
from mlgate.sources.model import SourceConfig
from mlgate.sources.sql import SqlSource

if TYPE_CHECKING:
    import dask.dataframe as dd

SAMPLE_ROWS = 1_000  # rows read to infer the schema every partition is conformed to


@dataclass(frozen=True)
class PartitionPlan:
    table: str
    column: str
    method: Literal["range", "hash"]
    queries: tuple[str, ...]  # one SELECT per partition
    columns: tuple[Column, ...]


def plan(
    source: SqlSource, table: str, *, partitions: int, column: str | None = None
) -> PartitionPlan:
    """How to read `table` in `partitions` parts: by its integer primary key unless `column`
    is given (an integer column: key ranges; any other: hash buckets)."""
    if not 1 <= partitions <= 10_000:
        raise InvalidInput(f"partitions: from 1 to 10,000, got {partitions}")
    if column is None:
        column = source.key_column(table)
        if column is None:
            raise InvalidInput(
                f"{table!r} has no integer primary key to split it by; name a column to "
                "partition by (an integer column is split into key ranges, any other is hashed)"
            )
    kind = source.column_kind(table, column)
    queries: list[str] = []
    method: Literal["range", "hash"]
    if kind == "integer":
        method = "range"
        bounds = source.key_range(table, column)
        low, high = bounds if bounds is not None else (0, 0)
        width = max(1, -(-(high - low + 1) // partitions))  # ceiling division
        starts = list(range(low, high + 1, width)) or [low]
        for i, start in enumerate(starts):
            last = i == len(starts) - 1
            end = high if last else start + width
            queries.append(source.part_sql(table, column, ("range", start, end, int(last))))
    else:
        method = "hash"
        queries = [
            source.part_sql(table, column, ("hash", i, partitions, 0)) for i in range(partitions)
        ]
    sample = source.read_table(table, limit=SAMPLE_ROWS)
    return PartitionPlan(table, column, method, tuple(queries), infer_columns(sample))


def read_part(name: str, url: str, query: str, schema: tuple[Column, ...] | None) -> pd.DataFrame:
    """One partition, on a worker: its own connection, the same schema as every other part
    (None: the rows as the database gives them, for scoring). Not `columns`: Dask passes a
    parameter of that name the columns it wants projected."""
    source = SqlSource(name, url)
    try:
        frame = source.read_query(query)
    finally:
        source.close()
    frame = frame if schema is None else conform(frame, schema)
    _release_arrow_memory()  # Arrow's allocator keeps freed pages; a worker has a memory limit
    return frame.reset_index(drop=True)


def _release_arrow_memory() -> None:
    try:
        import pyarrow
    except ImportError:
        return
    pyarrow.default_memory_pool().release_unused()


def to_dask(config: SourceConfig, the_plan: PartitionPlan, *, raw: bool = False) -> dd.DataFrame:
    """The planned partitions as one lazy Dask DataFrame (nothing is read until computed):
    conformed to the plan's schema, or (`raw`) as the database gives them."""
    import dask
    import dask.dataframe as dd

    # Keep text as object columns with NaN, as schema.conform makes them everywhere else (Dask
    # would turn them into pyarrow strings, which the fitted preprocessors do not expect).
    dask.config.set({"dataframe.convert-string": False})
    meta = (
        None
        if raw
        else conform(
            pd.DataFrame({c.name: pd.Series(dtype=object) for c in the_plan.columns}),
            the_plan.columns,
        ).iloc[:0]
    )
    typed = {} if meta is None else {"meta": meta}  # raw: Dask reads the first part for it
    frame: dd.DataFrame = dd.from_map(
        read_part,
        [config.name] * len(the_plan.queries),
        [config.url] * len(the_plan.queries),
        list(the_plan.queries),
        [None if raw else the_plan.columns] * len(the_plan.queries),
        divisions=None,
        enforce_metadata=False,
        label=f"read-{config.name}-{the_plan.table}",
        **typed,
    )
    return frame
