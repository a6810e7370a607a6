"""Monitoring: per-model settings, the sampled prediction log, ground-truth feedback, and each
model's last check.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_settings",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_monitor_settings"),
    )
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("account", sa.String(160), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("predictions", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_log"),
    )
    op.create_index("ix_prediction_log_model_at", "prediction_log", ["model", "at"])
    op.create_index("ix_prediction_log_request_id", "prediction_log", ["request_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("label", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("request_id", "row", name="uq_feedback_request_row"),
    )
    op.create_table(
        "monitor_checks",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_monitor_checks"),
    )


def downgrade() -> None:
    op.drop_table("monitor_checks")
    op.drop_table("feedback")
    op.drop_index("ix_prediction_log_request_id", "prediction_log")
    op.drop_index("ix_prediction_log_model_at", "prediction_log")
    op.drop_table("prediction_log")
    op.drop_table("monitor_settings")
