"""Descriptions and tags on models and versions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("models", "model_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
            batch.add_column(sa.Column("tags", sa.JSON, nullable=True))


def downgrade() -> None:
    for table in ("models", "model_versions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tags")
            batch.drop_column("description")
