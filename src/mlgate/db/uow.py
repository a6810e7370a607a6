"""The unit of work over SQLAlchemy: one connection, one transaction, every repository."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import sqlalchemy as sa

from mlgate.db.access import (
    SqlAuditRepository,
    SqlConsumerRepository,
    SqlGrantRepository,
    SqlKeyRepository,
    SqlSessionRepository,
    SqlUserRepository,
)
from mlgate.db.cards import SqlCardRepository
from mlgate.db.monitoring import SqlMonitoringRepository
from mlgate.db.plans import SqlPlanRepository, SqlUsageExportRepository, SqlUsageRepository
from mlgate.db.repositories import SqlJobRepository, SqlModelRepository, SqlSourceRepository
from mlgate.db.retention import SqlRetentionRepository
from mlgate.db.rollouts import SqlRolloutRepository
from mlgate.db.scim import SqlScimRepository
from mlgate.db.signing import SqlSignatureRepository
from mlgate.errors import ConcurrentWrite, NotReady
from mlgate.sources.sealing import Sealer


class SqlUnitOfWork:
    def __init__(self, engine: sa.Engine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    def __enter__(self) -> Self:
        try:
            self._conn = self._engine.connect()
        except sa.exc.OperationalError as exc:
            raise NotReady(
                f"the metadata database could not be reached ({type(exc.orig).__name__}); "
                "check MLGATE_DATABASE_URL"
            ) from None
        self._tx = self._conn.begin()
        self.sources = SqlSourceRepository(self._conn, self._sealer)
        self.models = SqlModelRepository(self._conn)
        self.keys = SqlKeyRepository(self._conn)
        self.jobs = SqlJobRepository(self._conn)
        self.users = SqlUserRepository(self._conn)
        self.consumers = SqlConsumerRepository(self._conn)
        self.grants = SqlGrantRepository(self._conn)
        self.sessions = SqlSessionRepository(self._conn)
        self.audit = SqlAuditRepository(self._conn)
        self.plans = SqlPlanRepository(self._conn)
        self.usage = SqlUsageRepository(self._conn)
        self.usage_exports = SqlUsageExportRepository(self._conn)
        self.monitoring = SqlMonitoringRepository(self._conn)
        self.rollouts = SqlRolloutRepository(self._conn)
        self.signatures = SqlSignatureRepository(self._conn)
        self.cards = SqlCardRepository(self._conn)
        self.scim = SqlScimRepository(self._conn)
        self.retention = SqlRetentionRepository(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = self._tx = None
        if isinstance(exc, sa.exc.IntegrityError):
            raise _clash(exc) from exc

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("commit() outside `with uow:`")
        try:
            self._tx.commit()
        except sa.exc.IntegrityError as exc:
            raise _clash(exc) from exc


def _clash(exc: sa.exc.IntegrityError) -> ConcurrentWrite:
    """The database's refusal of a clashing write, in the domain's words (the rows named in
    the driver's message stay in the log, not in the answer)."""
    return ConcurrentWrite(
        f"another write changed the same record first ({type(exc.orig).__name__}); try again"
    )
