"""The metadata tables, in SQLAlchemy Core. Migrations in db/migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# A float column kept at double precision on every database: MySQL and MariaDB read a bare FLOAT
# as single precision (an alpha of 0.0123456789 came back as 0.0123457); PostgreSQL's FLOAT and
# SQLite's REAL are doubles already (migration 0016).
DOUBLE = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=True),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("algorithm", sa.String(64), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("classes", sa.JSON, nullable=True),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("artifact_key", sa.String(512), nullable=False),
    sa.Column("artifact_format", sa.String(32), nullable=False),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("library_versions", sa.JSON, nullable=False),
    sa.Column("fit_seconds", DOUBLE, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("retire_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("model_id", "number", name="uq_model_versions_model_id_number"),
)

# A version's signature (signing/, issue 38): the bundle, and which key made it when.
version_signatures = sa.Table(
    "version_signatures",
    metadata,
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

# A version's model card (cards/, issue 38): the fields people edit, the slice columns asked
# for and their metrics on the version's holdout.
model_cards = sa.Table(
    "model_cards",
    metadata,
    sa.Column(
        "version_id",
        sa.Integer,
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("intended_use", sa.Text, nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("slices", sa.JSON, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_by", sa.String(255), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("owner_kind", sa.String(16), nullable=False, server_default="user"),
    sa.Column("owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("targets", sa.JSON, nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    # the secret before the last rotation, working until previous_until
    sa.Column("previous_digest", sa.String(64), nullable=True),
    sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    # issue 36: single sign-on; the provider's subject, and the groups of the last sign-in (JSON)
    sa.Column("sso_subject", sa.String(255), nullable=True, unique=True),
    sa.Column("groups", sa.Text, nullable=True),
)

consumers = sa.Table(
    "consumers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("billing_id", sa.String(255), nullable=True),  # issue 36: Stripe's cus_…
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subject_kind", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("alias", sa.String(64), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Index("ix_grants_model", "model"),
    sa.Index("ix_grants_subject", "subject_kind", "subject"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("user", sa.String(128), nullable=False),  # the subject's name
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("subject_kind", sa.String(16), nullable=False, server_default="user"),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_audit_events_at", "at"),
)

audit_purges = sa.Table(  # retention purges: the only way past the audit log's trigger (0023)
    "audit_purges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("counts", sa.JSON, nullable=True),
    sa.Index("ix_audit_purges_open", "open", "model"),  # the trigger looks for open ones
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("progress", DOUBLE, nullable=False),
    sa.Column("log", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("owner", sa.String(160), nullable=False, server_default=""),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_id", "name", name="uq_aliases_model_id_name"),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

comparisons = sa.Table(
    "comparisons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("a", sa.Integer, nullable=False),
    sa.Column("b", sa.Integer, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

pending_writes = sa.Table(
    "pending_writes",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("plan", sa.String(128), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pins", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_subscriptions_consumer", "consumer"),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("batch", sa.String(64), nullable=False),
    sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
    sa.Column("account", sa.String(160), nullable=False),
    sa.Column("key_prefix", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("overage_rows", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.BigInteger, nullable=False),
    sa.Column("explained_rows", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_usage_account_hour", "account", "hour"),
)

usage_traces = sa.Table(  # traced calls' ids beside the ledger's aggregates (issue 39)
    "usage_traces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
    sa.Column("account", sa.String(160), nullable=False),
    sa.Column("key_prefix", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Index("ix_usage_traces_account_hour", "account", "hour"),
)

usage_batches = sa.Table(
    "usage_batches",
    metadata,
    sa.Column("batch", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

threshold_crossings = sa.Table(
    "threshold_crossings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("limit_name", sa.String(64), nullable=False),
    sa.Column("window", sa.String(32), nullable=False),
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("used", sa.BigInteger, nullable=False),
    sa.Column("limit_value", sa.BigInteger, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(
        "consumer", "limit_name", "window", "threshold", name="uq_threshold_crossings_once"
    ),
    sa.Index("ix_threshold_crossings_consumer", "consumer", "at"),
)

consumer_webhooks = sa.Table(
    "consumer_webhooks",
    metadata,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

spend_caps = sa.Table(
    "spend_caps",
    metadata,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("cap", sa.Numeric(18, 6), nullable=False),
    sa.Column("set_by", sa.String(160), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

usage_exports = sa.Table(
    "usage_exports",
    metadata,
    sa.Column("sink", sa.String(64), primary_key=True),
    sa.Column("through_hour", sa.BigInteger, nullable=True),  # hours since 1970, UTC
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
)

usage_dead_letters = sa.Table(
    "usage_dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sink", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("sink", "event_id", name="uq_usage_dead_letters_event"),
)

monitor_settings = sa.Table(
    "monitor_settings",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("account", sa.String(160), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("predictions", sa.JSON, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=True),  # a traced call's (issue 39)
    sa.Index("ix_prediction_log_model_at", "model", "at"),
    sa.Index("ix_prediction_log_request_id", "request_id"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("request_id", "row", name="uq_feedback_request_row"),
    sa.Index("ix_feedback_model_at", "model", "at"),
)

monitor_checks = sa.Table(
    "monitor_checks",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("incumbent", sa.Integer, nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("share", DOUBLE, nullable=False),
    sa.Column("alpha", DOUBLE, nullable=False),
    sa.Column("auto", sa.Boolean, nullable=False),
    sa.Column("max_error_rate", DOUBLE, nullable=False),
    sa.Column("max_latency_ratio", DOUBLE, nullable=False),
    sa.Column("min_agreement", DOUBLE, nullable=False),
    sa.Column("then_canary", DOUBLE, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_by", sa.String(160), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_look", sa.JSON, nullable=False),
    sa.Index("ix_rollouts_model", "model"),
)

rollout_counts = sa.Table(
    "rollout_counts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id"), nullable=False),
    sa.Column("side", sa.String(16), nullable=False),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("failed", sa.BigInteger, nullable=False),
    sa.Column("latency", sa.JSON, nullable=False),
    sa.Column("compared", sa.BigInteger, nullable=False),
    sa.Column("agreed", sa.BigInteger, nullable=False),
    sa.Column("score_diff", DOUBLE, nullable=False),
    sa.Index("ix_rollout_counts_rollout_id", "rollout_id"),
)

rollout_shadow = sa.Table(
    "rollout_shadow",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id"), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("agreed", sa.Integer, nullable=True),
    sa.Column("score_diff", DOUBLE, nullable=True),
    sa.Column("predictions", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_rollout_shadow_rollout_id", "rollout_id"),
    sa.Index("ix_rollout_shadow_request_id", "request_id"),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
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
    sa.Index("ix_schedules_model", "model"),
)

# issue 36: SCIM provisioning; each resource the identity provider sent, as it sent it (JSON)
scim_resources = sa.Table(
    "scim_resources",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # User, Group
    sa.Column("name", sa.String(255), nullable=False),  # userName, displayName
    sa.Column("folded", sa.String(255), nullable=False),  # the name in lower case
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("kind", "folded", name="uq_scim_resources_name"),
)
