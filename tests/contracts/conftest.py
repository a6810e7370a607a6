"""The unit of work under contract: the in-memory fake and the SQL one on every database the
metadata may live in. Each test gets an empty store; the SQL schemas are migrated once per run
and emptied between tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from mlgate.bootstrap import Services
from mlgate.db.tables import metadata
from mlgate.uow import UnitOfWork
from tests.conftest import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, make_services, throwaway_database
from tests.fakes import in_memory_uow_factory

UowFactory = Callable[[], UnitOfWork]
BACKENDS = ["memory", "sqlite", "postgresql", "mariadb"]


@pytest.fixture(scope="session")
def _sql_services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Services]]:
    built: dict[str, Services] = {}
    dropping: list[Iterator[str]] = []

    def get(kind: str) -> Services:
        if kind not in built:
            url = None
            if kind != "sqlite":
                admin = POSTGRES_ADMIN_URL if kind == "postgresql" else MARIADB_ADMIN_URL
                what = "PostgreSQL" if kind == "postgresql" else "MariaDB"
                database = throwaway_database(admin, what)
                url = next(database)
                dropping.append(database)
            built[kind] = make_services(tmp_path_factory.mktemp(f"contract-{kind}"), url)
        return built[kind]

    yield get
    for services in built.values():
        services.close()
    for database in dropping:
        next(database, None)


@pytest.fixture(params=BACKENDS)
def uow_factory(
    request: pytest.FixtureRequest, _sql_services: Callable[[str], Services]
) -> Iterator[UowFactory]:
    """A factory of units of work over an empty store of this kind."""
    if request.param == "memory":
        yield in_memory_uow_factory()
        return
    services = _sql_services(request.param)
    assert services.engine is not None
    _empty(services.engine)
    yield services.uow
    _empty(services.engine)


def _empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # the audit log's guard stays asleep meanwhile
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        triggers = _triggers(conn)  # the audit log's guards: off while emptying, then back
        for name in triggers:
            conn.execute(sa.text(f"DROP TRIGGER {name}"))
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for create in triggers.values():
            conn.execute(sa.text(create))


def _triggers(conn: sa.Connection) -> dict[str, str]:
    """name -> the statement that creates it, for every trigger of the database."""
    if conn.dialect.name == "sqlite":
        rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        return {row[0]: row[1] for row in rows}
    names = conn.execute(
        sa.text("SELECT trigger_name FROM information_schema.triggers "
                "WHERE trigger_schema = DATABASE()")
    ).scalars()  # fmt: skip
    return {name: conn.execute(sa.text(f"SHOW CREATE TRIGGER {name}")).one()[2] for name in names}
