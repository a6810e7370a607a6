"""Float columns at double precision on MySQL and MariaDB, which store a bare FLOAT in four bytes
(a rollout's alpha of 0.0123456789 read back as 0.0123457; a shadow pair's score difference of
1234.56789012 as 1234.57). PostgreSQL's FLOAT and SQLite's REAL are doubles already: nothing to
do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DOUBLE = mysql.DOUBLE(asdecimal=False)
COLUMNS = (  # table, column, nullable
    ("model_versions", "fit_seconds", False),
    ("jobs", "progress", False),
    ("rollouts", "share", False),
    ("rollouts", "alpha", False),
    ("rollouts", "max_error_rate", False),
    ("rollouts", "max_latency_ratio", False),
    ("rollouts", "min_agreement", False),
    ("rollouts", "then_canary", True),
    ("rollout_counts", "score_diff", False),
    ("rollout_shadow", "score_diff", True),
)


def _on_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if not _on_mysql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table, column, type_=DOUBLE, existing_type=sa.Float(), existing_nullable=nullable
        )


def downgrade() -> None:
    if not _on_mysql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table, column, type_=sa.Float(), existing_type=DOUBLE, existing_nullable=nullable
        )
