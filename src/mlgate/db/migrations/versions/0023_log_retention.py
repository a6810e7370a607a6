"""Log retention (issue 38): the audit log lets a retention purge through, and only that.

The DELETE trigger of 0008 refused every delete. Now a row may be deleted only while a purge is
open for its model in `audit_purges` (opened and closed inside the purge's own transaction, see
retention/service.py), if it is older than the purge's cutoff, names the model, and is not a
purge's own record. UPDATE and TRUNCATE stay refused. MariaDB had no trigger and gets none.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_APPEND_ONLY = "the audit log is append-only"
# An open purge whose model the row names (target = model, model@..., or "model ...") and
# whose cutoff the row is older than; a purge's own record is never let go.
_LET_GO = (
    "EXISTS (SELECT 1 FROM audit_purges p WHERE p.open {true} AND OLD.at < p.cutoff "
    "AND OLD.action <> 'retention.purge' AND (OLD.target = p.model "
    "OR substr(OLD.target, 1, length(p.model) + 1) IN (p.model || '@', p.model || ' ')))"
)


def upgrade() -> None:
    op.create_table(
        "audit_purges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("counts", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_purges_open", "audit_purges", ["open", "model"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            f"WHEN NOT {_LET_GO.format(true='= 1')} "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE FUNCTION audit_events_purge_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF {_LET_GO.format(true='')} THEN RETURN OLD; END IF; "
            f"RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_purge_only BEFORE DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_purge_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER audit_events_purge_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_purge_only()")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    op.drop_index("ix_audit_purges_open", "audit_purges")
    op.drop_table("audit_purges")
