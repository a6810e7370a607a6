"""One transaction over every repository (the unit of work)."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from mlgate.access.repository import KeyRepository
from mlgate.registry.repository import ModelRepository
from mlgate.sources.repository import SourceRepository


class UnitOfWork(Protocol):
    """Use as ``with uow: ...; uow.commit()``; leaving the block without commit rolls back."""

    @property
    def models(self) -> ModelRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def sources(self) -> SourceRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
