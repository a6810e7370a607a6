"""Source use cases: add, list, remove, test (connect and list tables), describe a table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.access.audit import audited
from mlgate.columns import Column
from mlgate.errors import NotFound
from mlgate.registry.model import check_name
from mlgate.sources import urls
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.uow import UnitOfWork

Opener = Callable[[SourceConfig], Source]


@dataclass(frozen=True)
class TableSample:
    table: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


@audited("sources.add", "name")
def add_source(
    uow: UnitOfWork, open_source: Opener, *, name: str, url: str, cwd: Path, now: datetime
) -> tuple[SourceConfig, list[str]]:
    """Store a source after connecting to it once; returns it with the tables it has."""
    check_name("source", name)
    kind, normalized = urls.normalize(url, cwd)
    config = SourceConfig(name=name, url=normalized, kind=kind, created_at=now)
    tables = _tables(open_source, config)
    with uow:
        uow.sources.add(config)
        uow.commit()
    return config, tables


def list_sources(uow: UnitOfWork) -> list[SourceConfig]:
    with uow:
        return uow.sources.all()


@audited("sources.remove", "name")
def remove_source(uow: UnitOfWork, name: str) -> None:
    with uow:
        uow.sources.remove(name)
        uow.commit()


def get_source(uow: UnitOfWork, name: str) -> SourceConfig:
    with uow:
        config = uow.sources.get(name)
    if config is None:
        raise NotFound(f"no source named {name!r}; `mlgate sources list` shows them")
    return config


def test_source(uow: UnitOfWork, open_source: Opener, name: str) -> tuple[SourceConfig, list[str]]:
    config = get_source(uow, name)
    return config, _tables(open_source, config)


def describe_table(
    uow: UnitOfWork, open_source: Opener, name: str, *, table: str, n_rows: int = 5
) -> TableSample:
    from mlgate import schema  # pandas: loaded when a table is read, not with the CLI

    config = get_source(uow, name)
    source = open_source(config)
    try:
        frame = source.read_table(table, limit=max(n_rows, 100))
    finally:
        source.close()
    sample = frame.head(n_rows).astype(object)
    rows = sample.where(sample.notna(), None).to_dict(orient="records")
    return TableSample(
        table=table,
        columns=schema.infer_columns(frame),
        rows=[{str(k): _plain(v) for k, v in row.items()} for row in rows],
    )


def _tables(open_source: Opener, config: SourceConfig) -> list[str]:
    source = open_source(config)
    try:
        return source.tables()
    finally:
        source.close()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
