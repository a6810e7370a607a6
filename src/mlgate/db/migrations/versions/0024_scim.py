"""SCIM 2.0 provisioning (issue 36): each User and Group resource the identity provider sent,
as it sent it; the mlgate user a User resource names is the users row of the same name.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("folded", sa.String(255), nullable=False),  # the name in lower case
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "folded", name="uq_scim_resources_name"),
    )


def downgrade() -> None:
    op.drop_table("scim_resources")
