"""Signed versions (issue 38): each version's signature, an OpenSSF Model Signing bundle, with
the key that made it and when. Versions registered before have none (they load with a warning;
`mlgate models sign` signs them).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_signatures",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_by", sa.String(255), nullable=False),
        sa.Column("bundle", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("version_signatures")
