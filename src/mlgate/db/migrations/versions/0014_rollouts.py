"""Rollouts: a candidate version tried on a share of an alias's traffic, the calls each side
answered as the serving processes counted them, the shadow's scores of copied calls, and
retraining schedules.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("incumbent", sa.Integer, nullable=False),
        sa.Column("candidate", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("auto", sa.Boolean, nullable=False),
        sa.Column("max_error_rate", sa.Float, nullable=False),
        sa.Column("max_latency_ratio", sa.Float, nullable=False),
        sa.Column("min_agreement", sa.Float, nullable=False),
        sa.Column("then_canary", sa.Float, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(160), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_look", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
    )
    op.create_index("ix_rollouts_model", "rollouts", ["model"])
    op.create_table(
        "rollout_counts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("rollout_id", sa.Integer, nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("latency", sa.JSON, nullable=False),
        sa.Column("compared", sa.BigInteger, nullable=False),
        sa.Column("agreed", sa.BigInteger, nullable=False),
        sa.Column("score_diff", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_counts"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_rollout_counts_rollout_id_rollouts"
        ),
    )
    op.create_index("ix_rollout_counts_rollout_id", "rollout_counts", ["rollout_id"])
    op.create_table(
        "rollout_shadow",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("rollout_id", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("agreed", sa.Integer, nullable=True),
        sa.Column("score_diff", sa.Float, nullable=True),
        sa.Column("predictions", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_shadow"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_rollout_shadow_rollout_id_rollouts"
        ),
    )
    op.create_index("ix_rollout_shadow_rollout_id", "rollout_shadow", ["rollout_id"])
    op.create_index("ix_rollout_shadow_request_id", "rollout_shadow", ["request_id"])
    op.create_index("ix_feedback_model_at", "feedback", ["model", "at"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(128), nullable=True),
        sa.Column("on_drift", sa.Boolean, nullable=False),
        sa.Column("new_rows", sa.BigInteger, nullable=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_job", sa.String(64), nullable=True),
        sa.Column("last_outcome", sa.Text, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
    )
    op.create_index("ix_schedules_model", "schedules", ["model"])


def downgrade() -> None:
    op.drop_index("ix_schedules_model", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_feedback_model_at", table_name="feedback")
    op.drop_index("ix_rollout_shadow_request_id", table_name="rollout_shadow")
    op.drop_index("ix_rollout_shadow_rollout_id", table_name="rollout_shadow")
    op.drop_table("rollout_shadow")
    op.drop_index("ix_rollout_counts_rollout_id", table_name="rollout_counts")
    op.drop_table("rollout_counts")
    op.drop_index("ix_rollouts_model", table_name="rollouts")
    op.drop_table("rollouts")
