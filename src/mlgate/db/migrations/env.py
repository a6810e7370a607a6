"""Alembic environment: always handed an open connection by mlgate.db.migrate."""

from __future__ import annotations

from alembic import context

from mlgate.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
