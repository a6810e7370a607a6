"""Bringing the metadata schema to head with Alembic, and telling whether it is there.

Every process start asks whether the schema is at head. That question is answered without
Alembic (one SELECT, and HEAD below), so a command or a server that finds the schema current
never imports Alembic nor reads the migration scripts; a test keeps HEAD equal to the scripts'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0024"  # the newest script's revision (tests/integration/test_metadata.py checks it)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return HEAD


def scripts_head() -> str:
    """The head as the migration scripts say (reads every script)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return _current(conn)


def _current(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


MIGRATION_LOCK = 0x6D6C6761  # "mlga": one migrating process at a time per database


def upgrade_to_head(engine: sa.Engine) -> None:
    """Migrate to head. Replicas that start together take turns (an advisory lock on
    PostgreSQL, a named lock on MySQL/MariaDB): the first migrates, the others find head."""
    if current_revision(engine) == HEAD:
        return
    from alembic import command

    config = _config()
    with engine.begin() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        elif dialect in ("mysql", "mariadb"):
            conn.execute(sa.text("SELECT GET_LOCK('mlgate_migrate', 600)"))
        if _current(conn) != HEAD:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        if dialect in ("mysql", "mariadb"):
            conn.execute(sa.text("SELECT RELEASE_LOCK('mlgate_migrate')"))
