"""Data sources as the edges call them: bound once at the composition root
(bootstrap.Services.sources) with the unit of work, the clock and the opener of sources, so an
edge passes only the request's data.

Each method delegates to the use case in service.py, which records its own audit event;
nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlgate.sources import service
from mlgate.sources.base import Source
from mlgate.sources.model import SourceConfig
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class Sources:
    """Where training rows come from, with this process's adapters bound."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    open_source: Callable[[SourceConfig], Source]

    def add(self, *, name: str, url: str, cwd: Path) -> tuple[SourceConfig, list[str]]:
        """Add a source after checking that it can be reached; its tables."""
        return service.add_source(self.uow(), self.open_source, name=name, url=url, cwd=cwd,
                                  now=self.clock())  # fmt: skip

    def all(self) -> list[SourceConfig]:
        return service.list_sources(self.uow())

    def get(self, name: str) -> SourceConfig:
        return service.get_source(self.uow(), name)

    def open(self, name: str) -> Source:
        """The named source, opened (the caller closes it)."""
        return self.open_source(self.get(name))

    def test(self, name: str) -> tuple[SourceConfig, list[str]]:
        return service.test_source(self.uow(), self.open_source, name)

    def describe_table(self, name: str, *, table: str, n_rows: int = 5) -> service.TableSample:
        return service.describe_table(self.uow(), self.open_source, name, table=table,
                                      n_rows=n_rows)  # fmt: skip

    def remove(self, name: str) -> None:
        service.remove_source(self.uow(), name)
