"""Spend caps, quota thresholds, and usage pushed to billing: each consumer's monthly cap and
webhook, the thresholds crossed (once each per window), how far each sink has been sent, and the
events a sink refused.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threshold_crossings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("limit_name", sa.String(64), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("used", sa.BigInteger, nullable=False),
        sa.Column("limit_value", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_threshold_crossings"),
        sa.UniqueConstraint(
            "consumer", "limit_name", "window", "threshold", name="uq_threshold_crossings_once"
        ),
    )
    op.create_index("ix_threshold_crossings_consumer", "threshold_crossings", ["consumer", "at"])
    op.create_table(
        "consumer_webhooks",
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name="pk_consumer_webhooks"),
    )
    op.create_table(
        "spend_caps",
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("cap", sa.Numeric(18, 6), nullable=False),
        sa.Column("set_by", sa.String(160), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name="pk_spend_caps"),
    )
    op.create_table(
        "usage_exports",
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("through_hour", sa.BigInteger, nullable=True),  # hours since 1970, UTC
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sink", name="pk_usage_exports"),
    )
    op.create_table(
        "usage_dead_letters",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_dead_letters"),
        sa.UniqueConstraint("sink", "event_id", name="uq_usage_dead_letters_event"),
    )


def downgrade() -> None:
    op.drop_table("usage_dead_letters")
    op.drop_table("usage_exports")
    op.drop_table("spend_caps")
    op.drop_table("consumer_webhooks")
    op.drop_index("ix_threshold_crossings_consumer", "threshold_crossings")
    op.drop_table("threshold_crossings")
