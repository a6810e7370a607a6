"""Traced calls lead to their traces (issue 39): the prediction log keeps a traced call's trace
id, and `usage_traces` files traced calls' ids beside the ledger's hourly aggregates, a few per
line of a bill.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(32), nullable=True))
    op.create_table(
        "usage_traces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(160), nullable=False),
        sa.Column("key_prefix", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_usage_traces_account_hour", "usage_traces", ["account", "hour"])


def downgrade() -> None:
    op.drop_index("ix_usage_traces_account_hour", table_name="usage_traces")
    op.drop_table("usage_traces")
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("trace_id")
