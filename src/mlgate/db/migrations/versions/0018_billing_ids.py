"""A consumer's id in the billing system (issue 36): the Stripe usage export names it instead of
the consumer's mlgate name, which a real Stripe account refuses or misattributes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.add_column(sa.Column("billing_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("billing_id")
