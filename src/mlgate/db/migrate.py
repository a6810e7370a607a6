"""Bringing the metadata schema to head with Alembic, and telling whether it is there."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


MIGRATION_LOCK = 0x6D6C6761  # "mlga": one migrating process at a time per database


def upgrade_to_head(engine: sa.Engine) -> None:
    """Migrate to head. Replicas that start together take turns (an advisory lock on
    PostgreSQL, a named lock on MySQL/MariaDB): the first migrates, the others find head."""
    if current_revision(engine) == head_revision():
        return
    config = _config()
    with engine.begin() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        elif dialect in ("mysql", "mariadb"):
            conn.execute(sa.text("SELECT GET_LOCK('mlgate_migrate', 600)"))
        if MigrationContext.configure(conn).get_current_revision() != head_revision():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        if dialect in ("mysql", "mariadb"):
            conn.execute(sa.text("SELECT RELEASE_LOCK('mlgate_migrate')"))
