"""Consumers log in to their portal: a password (Argon2id) with the same throttling as users,
and sessions that say whose they are (a user's or a consumer's).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.add_column(sa.Column("password_hash", sa.Text, nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("subject_kind", sa.String(16), nullable=False, server_default="user")
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("subject_kind")
    with op.batch_alter_table("consumers") as batch:
        for column in ("locked_until", "last_failed_at", "failed_logins", "password_hash"):
            batch.drop_column(column)
