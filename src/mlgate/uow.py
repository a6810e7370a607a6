"""One transaction over every repository (the unit of work)."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from mlgate.access.repository import (
    AuditRepository,
    ConsumerRepository,
    GrantRepository,
    KeyRepository,
    SessionRepository,
    UserRepository,
)
from mlgate.cards.repository import CardRepository
from mlgate.jobs.repository import JobRepository
from mlgate.monitoring.repository import MonitoringRepository
from mlgate.plans.repository import PlanRepository, UsageExportRepository, UsageRepository
from mlgate.registry.repository import ModelRepository
from mlgate.retention.repository import RetentionRepository
from mlgate.rollouts.repository import RolloutRepository
from mlgate.scim.repository import ScimRepository
from mlgate.signing.repository import SignatureRepository
from mlgate.sources.repository import SourceRepository


class UnitOfWork(Protocol):
    """Use as ``with uow: ...; uow.commit()``; leaving the block without commit rolls back."""

    @property
    def models(self) -> ModelRepository: ...

    @property
    def keys(self) -> KeyRepository: ...

    @property
    def sources(self) -> SourceRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def consumers(self) -> ConsumerRepository: ...

    @property
    def grants(self) -> GrantRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def plans(self) -> PlanRepository: ...

    @property
    def usage(self) -> UsageRepository: ...

    @property
    def usage_exports(self) -> UsageExportRepository: ...

    @property
    def jobs(self) -> JobRepository: ...

    @property
    def monitoring(self) -> MonitoringRepository: ...

    @property
    def rollouts(self) -> RolloutRepository: ...

    @property
    def signatures(self) -> SignatureRepository: ...

    @property
    def cards(self) -> CardRepository: ...

    @property
    def scim(self) -> ScimRepository: ...

    @property
    def retention(self) -> RetentionRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
