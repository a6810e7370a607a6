"""Single sign-on (issue 36): a user the provider created carries its subject, and the groups
its last sign-in carried (a grant may name a group: grants.subject_kind "group", no new column).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sso_subject", sa.String(255), nullable=True))
        batch.add_column(sa.Column("groups", sa.Text, nullable=True))
        batch.create_unique_constraint("uq_users_sso_subject", ["sso_subject"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_sso_subject", type_="unique")
        batch.drop_column("groups")
        batch.drop_column("sso_subject")
