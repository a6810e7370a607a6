"""Settings, read once at an edge and passed down.

Every setting comes from an ``MLGATE_*`` environment variable or, failing that, from the optional
TOML config file (``MLGATE_CONFIG``, default ``$MLGATE_HOME/config.toml``), else its default::

    MLGATE_HOME           ~/.mlgate         home folder: metadata DB, artifacts, secret key
    MLGATE_DATABASE_URL   sqlite:///$MLGATE_HOME/mlgate.db  (postgresql+psycopg://... in production)
    MLGATE_ARTIFACT_DIR   $MLGATE_HOME/artifacts
    MLGATE_ARTIFACT_URL   unset: artifacts in MLGATE_ARTIFACT_DIR; s3://bucket/prefix: in S3
    MLGATE_S3_ENDPOINT_URL unset for AWS; the URL of MinIO or another S3-compatible store
    MLGATE_SECRET_KEY     read from (or created in) $MLGATE_HOME/secret.key when unset
    MLGATE_SIGNING_KEY    a PEM EC private key file that signs every version; unset:
                          $MLGATE_HOME/signing.key, created on first use (mlgate/signing)
    MLGATE_TRUSTED_KEYS   PEM public key files or folders of them (comma-separated) whose
                          signatures verify besides the signing key's own: the previous key
                          while rotating, other mlgates' keys for their bundles
    MLGATE_REQUIRE_SIGNATURES false         true: an unsigned version (registered before
                          signing) is refused at load and at import, not loaded with a warning
    MLGATE_MAX_ROWS       10000             rows accepted in one prediction request
    MLGATE_MAX_BODY_BYTES 10485760          bytes accepted in one request body
    MLGATE_REDIS_URL      unset: plan limits counted in this process (one worker); redis://...:
                          counted in Redis, shared by every worker and replica
    MLGATE_REDIS_PREFIX   mlgate            prefix of every Redis key (several mlgates, one Redis)
    MLGATE_LIMITS_FAIL_OPEN  false          with Redis unreachable: refuse (503) or serve uncounted
    MLGATE_DASK_ADDRESS   unset: train on this machine; tcp://scheduler:8786 (or local): train the
                          algorithms that have a Dask path on that cluster (mlgate train --dask)
    MLGATE_OUTBOUND_ALLOW unset: webhooks and usage sinks reach public addresses only; host names,
                          addresses and CIDR networks (comma-separated) of receivers you run
                          inside, each for one port or every port, e.g. ``hooks.internal:8443,
                          10.0.8.0/24:9000`` (mlgate/outbound)
    MLGATE_ARCHIVE_MAX_BYTES 1073741824     bytes an uploaded zip (bundle, MLflow directory, skops
                          file) may unpack to; ..._MAX_ENTRIES 10000 files in it;
                          ..._MAX_ENTRY_BYTES 536870912 one file; ..._MAX_RATIO 200 one file's
                          expansion (files that unpack past 1 MiB); see mlgate/archives.py
    MLGATE_SECURE_COOKIES auto              the dashboard's cookies carry Secure: auto = when the
                          request came over HTTPS (or a proxy said so); true behind a TLS proxy
    MLGATE_PORTAL_EXAMPLE typical           the portal's example rows: each column's median or most
                          frequent value in training; row = a real training row (shows data)
    MLGATE_CURRENCY       USD               the currency of every plan's prices: amounts on the
                          dashboard and the portal read "USD 12.50"
    MLGATE_MONITOR_INTERVAL 300, MLGATE_ROLLOUT_INTERVAL 10, MLGATE_SCHEDULE_INTERVAL 30,
    MLGATE_USAGE_EXPORT_INTERVAL 60         seconds between those rounds in `mlgate serve`; 0: none
    MLGATE_ROLLOUT_LOG_PER_SECOND 20        a rollout's calls logged beyond the sample rate
    MLGATE_MAX_BATCH_BYTES 1073741824       the largest batch upload (a plan may allow less)
    MLGATE_BATCH_RETENTION_HOURS 168        a batch's result is kept this long after it ends
    MLGATE_USAGE_EXPORT_URL, _FORMAT (cloudevents or stripe), _TOKEN: the billing sink
    MLGATE_OPERATOR_WEBHOOK_URL, MLGATE_OPERATOR_WEBHOOK_SECRET: told of every threshold crossed
    MLGATE_OIDC_ISSUER    unset: no single sign-on; an OpenID Connect provider's issuer URL
                          (its /.well-known/openid-configuration is read): "Sign in with ..."
    MLGATE_OIDC_CLIENT_ID, MLGATE_OIDC_CLIENT_SECRET: mlgate's client at that provider
    MLGATE_OIDC_SCOPES    openid profile email groups
    MLGATE_OIDC_USERNAME_CLAIM preferred_username; MLGATE_OIDC_GROUPS_CLAIM groups
    MLGATE_OIDC_ADMIN_GROUPS  groups (comma-separated) whose members are admins
    MLGATE_OIDC_PROVIDER_NAME the login button's name for the provider (default: its host)
    MLGATE_OIDC_AUDIENCE  unset: no machine tokens; set: provider-issued JWT access tokens with
                          this audience are accepted as bearers on the API (mlgate/sso)
    MLGATE_OIDC_LEEWAY    60                seconds of clock skew allowed on exp, nbf and iat
    MLGATE_PASSWORD_LOGIN true              false: the dashboard offers single sign-on only
                          (the `mlgate users` CLI on the machine stays the way back in)

docs/reference/settings.md explains each one (tests/docs/test_reference.py keeps it complete).

In the config file the same names go lower-case, without the prefix: ``max_rows = 5000``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgate.errors import ConfigError


class Secret:
    """A string that does not show itself in reprs, logs or tracebacks."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    artifact_dir: Path
    secret_key: Secret | None = None
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    artifact_url: str | None = None
    s3_endpoint_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "mlgate"
    limits_fail_open: bool = False
    secure_cookies: bool | None = None  # None: when the request is HTTPS
    currency: str = "USD"  # of every plan's prices; shown with each amount on the pages
    dask_address: str | None = None
    monitor_interval: int = 300  # seconds between monitoring checks in `mlgate serve`; 0: none
    rollout_interval: int = 10  # seconds between the looks at running rollouts; 0: none
    schedule_interval: int = 30  # seconds between the looks at retraining schedules; 0: none
    rollout_log_per_second: int = 20  # a rollout's calls logged beyond the sample rate
    usage_export_url: str | None = None  # a CloudEvents endpoint, or Stripe's (plans/sinks.py)
    usage_export_format: str = "cloudevents"  # or "stripe"
    usage_export_token: Secret | None = None  # its bearer token (Stripe: the secret key)
    usage_export_interval: int = 60  # seconds between export passes in `mlgate serve`; 0: none
    retention_interval: int = 3600  # seconds between log retention purges in `mlgate serve`
    batch_retention_hours: int = 168  # a batch's result is kept this long after it ends
    max_batch_bytes: int = 1 << 30  # the largest batch upload (a plan may allow less)
    operator_webhook_url: str | None = None  # told of every quota threshold crossed
    operator_webhook_secret: Secret | None = None  # signs those deliveries
    outbound_allow: str = ""  # receivers inside that webhooks and sinks may call (outbound/)
    archive_max_bytes: int = 1 << 30  # an uploaded zip's entries together, uncompressed
    archive_max_entries: int = 10_000
    archive_max_entry_bytes: int = 512 << 20
    archive_max_ratio: int = 200  # uncompressed / compressed, per entry
    portal_example: str = "typical"  # or "row": a real training row in the portal's examples
    signing_key: Path | None = None  # None: $MLGATE_HOME/signing.key, made on first use
    trusted_keys: tuple[Path, ...] = ()  # public keys trusted besides the signing key's own
    require_signatures: bool = False  # unsigned versions refused at load and import
    oidc_issuer: str | None = None  # single sign-on (mlgate/sso); None: none
    oidc_client_id: str | None = None
    oidc_client_secret: Secret | None = None
    oidc_scopes: str = "openid profile email groups"
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    oidc_admin_groups: tuple[str, ...] = ()
    oidc_provider_name: str = ""  # "" : the issuer's host
    oidc_audience: str | None = None  # machine tokens' audience; None: none accepted
    oidc_leeway: int = 60  # seconds of clock skew on exp, nbf, iat
    password_login: bool = True  # false: the dashboard's users sign in through the provider
    scim_token: Secret | None = None  # the provider's SCIM bearer (/scim/v2); None: SCIM off

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def signing_key_file(self) -> Path:
        return self.signing_key or self.home / "signing.key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read MLGATE_* variables and the config file. Tests pass a plain dict."""
        env = os.environ if environ is None else environ
        home = Path(env.get("MLGATE_HOME") or Path.home() / ".mlgate").expanduser().resolve()
        config_path = Path(env.get("MLGATE_CONFIG") or home / "config.toml").expanduser()
        file_values = _read_config_file(config_path, explicit="MLGATE_CONFIG" in env)

        def get(name: str, default: str | None) -> str | None:
            value = env.get(f"MLGATE_{name.upper()}")
            if value is None and name in file_values:
                value = str(file_values[name])
            return default if value in (None, "") else value

        secret = get("secret_key", None)
        return _single_sign_on(cls(
            home=home,
            database_url=get("database_url", f"sqlite:///{home / 'mlgate.db'}") or "",
            artifact_dir=Path(get("artifact_dir", str(home / "artifacts")) or "").expanduser(),
            secret_key=Secret(secret) if secret else None,
            max_rows=_positive_int("max_rows", get("max_rows", "10000")),
            max_body_bytes=_positive_int("max_body_bytes", get("max_body_bytes", str(10 << 20))),
            artifact_url=get("artifact_url", None),
            s3_endpoint_url=get("s3_endpoint_url", None),
            redis_url=get("redis_url", None),
            redis_prefix=get("redis_prefix", "mlgate") or "mlgate",
            limits_fail_open=_flag("limits_fail_open", get("limits_fail_open", "false")),
            secure_cookies=_auto_flag("secure_cookies", get("secure_cookies", "auto")),
            currency=_currency(get("currency", "USD") or "USD"),
            dask_address=get("dask_address", None),
            monitor_interval=_whole("monitor_interval", get("monitor_interval", "300")),
            rollout_interval=_whole("rollout_interval", get("rollout_interval", "10")),
            schedule_interval=_whole("schedule_interval", get("schedule_interval", "30")),
            rollout_log_per_second=_whole(
                "rollout_log_per_second", get("rollout_log_per_second", "20")
            ),
            usage_export_url=get("usage_export_url", None),
            usage_export_format=_choice(
                "usage_export_format",
                get("usage_export_format", "cloudevents"),
                ("cloudevents", "stripe"),
            ),  # fmt: skip
            usage_export_token=Secret(token)
            if (token := get("usage_export_token", None))
            else None,
            usage_export_interval=_whole(
                "usage_export_interval", get("usage_export_interval", "60")
            ),
            retention_interval=_whole("retention_interval", get("retention_interval", "3600")),
            batch_retention_hours=_positive_int(
                "batch_retention_hours", get("batch_retention_hours", "168")
            ),
            max_batch_bytes=_positive_int("max_batch_bytes", get("max_batch_bytes", str(1 << 30))),
            operator_webhook_url=get("operator_webhook_url", None),
            operator_webhook_secret=(
                Secret(hook) if (hook := get("operator_webhook_secret", None)) else None
            ),
            outbound_allow=get("outbound_allow", "") or "",
            archive_max_bytes=_positive_int(
                "archive_max_bytes", get("archive_max_bytes", str(1 << 30))
            ),
            archive_max_entries=_positive_int(
                "archive_max_entries", get("archive_max_entries", "10000")
            ),
            archive_max_entry_bytes=_positive_int(
                "archive_max_entry_bytes", get("archive_max_entry_bytes", str(512 << 20))
            ),
            archive_max_ratio=_positive_int("archive_max_ratio", get("archive_max_ratio", "200")),
            portal_example=_choice(
                "portal_example", get("portal_example", "typical"), ("typical", "row")
            ),
            signing_key=Path(key).expanduser() if (key := get("signing_key", None)) else None,
            trusted_keys=tuple(
                Path(p.strip()).expanduser()
                for p in (get("trusted_keys", "") or "").split(",")
                if p.strip()
            ),
            require_signatures=_flag("require_signatures", get("require_signatures", "false")),
            oidc_issuer=(get("oidc_issuer", None) or "").rstrip("/") or None,
            oidc_client_id=get("oidc_client_id", None),
            oidc_client_secret=Secret(cs) if (cs := get("oidc_client_secret", None)) else None,
            oidc_scopes=get("oidc_scopes", "openid profile email groups") or "",
            oidc_username_claim=get("oidc_username_claim", "preferred_username") or "",
            oidc_groups_claim=get("oidc_groups_claim", "groups") or "",
            oidc_admin_groups=_listed(get("oidc_admin_groups", "")),
            oidc_provider_name=get("oidc_provider_name", "") or "",
            oidc_audience=get("oidc_audience", None),
            oidc_leeway=_whole("oidc_leeway", get("oidc_leeway", "60")),
            password_login=_flag("password_login", get("password_login", "true")),
            scim_token=Secret(st) if (st := get("scim_token", None)) else None,
        ))  # fmt: skip

    def check_sign_in(self) -> None:
        """ConfigError where the dashboard would offer no way to sign in (checked by `serve`:
        the CLI on the machine stays the way back in whatever the settings say)."""
        if not self.password_login and not (self.oidc_issuer and self.oidc_client_id):
            raise ConfigError(
                "MLGATE_PASSWORD_LOGIN=false leaves the dashboard without a way to sign in: set "
                "MLGATE_OIDC_ISSUER and MLGATE_OIDC_CLIENT_ID (operating/sso.md), or unset it"
            )


MIN_SCIM_TOKEN = 32  # characters: a guessable bearer would create admins' peers
MAX_OIDC_LEEWAY = 600  # seconds: more, and an expired token would pass for a long while


def _single_sign_on(settings: Settings) -> Settings:
    """ConfigError for single sign-on settings that would be ignored or fail only at sign-in."""
    issuer, client = settings.oidc_issuer, settings.oidc_client_id
    if issuer and not issuer.startswith(("https://", "http://")):
        raise ConfigError(
            f"MLGATE_OIDC_ISSUER is the provider's issuer URL (https://...), not {issuer!r}"
        )
    if bool(issuer) != bool(client):
        missing = "MLGATE_OIDC_CLIENT_ID" if issuer else "MLGATE_OIDC_ISSUER"
        raise ConfigError(
            f"single sign-on needs both MLGATE_OIDC_ISSUER and MLGATE_OIDC_CLIENT_ID; set {missing}"
        )
    if settings.oidc_audience and not issuer:
        raise ConfigError("MLGATE_OIDC_AUDIENCE needs MLGATE_OIDC_ISSUER and MLGATE_OIDC_CLIENT_ID")
    if settings.scim_token is not None and len(settings.scim_token.reveal()) < MIN_SCIM_TOKEN:
        raise ConfigError(
            f"MLGATE_SCIM_TOKEN is at least {MIN_SCIM_TOKEN} characters; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if settings.oidc_leeway > MAX_OIDC_LEEWAY:
        raise ConfigError(
            f"MLGATE_OIDC_LEEWAY is at most {MAX_OIDC_LEEWAY} seconds of clock difference, "
            f"not {settings.oidc_leeway}"
        )
    return settings


def _listed(raw: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (raw or "").split(",") if p.strip())


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"MLGATE_{name.upper()} is one of {', '.join(allowed)}, not {value!r}")
    return value


def _currency(raw: str) -> str:
    code = raw.strip().upper()
    if not (3 <= len(code) <= 4 and code.isascii() and code.isalpha()):
        raise ConfigError(f"MLGATE_CURRENCY is a currency code such as USD or EUR, not {raw!r}")
    return code


def _read_config_file(path: Path, *, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"MLGATE_CONFIG names {path}, which does not exist")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} could not be read: {exc}") from exc


def _flag(name: str, raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"MLGATE_{name.upper()} must be true or false, got {raw!r}")


def _auto_flag(name: str, raw: str | None) -> bool | None:
    return None if (raw or "").strip().lower() == "auto" else _flag(name, raw)


def _whole(name: str, raw: str | None) -> int:
    """A whole number, 0 included (0 switches the thing off)."""
    return 0 if (raw or "").strip() == "0" else _positive_int(name, raw)


def _positive_int(name: str, raw: str | None) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        raise ConfigError(f"MLGATE_{name.upper()} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"MLGATE_{name.upper()} must be positive, got {value}")
    return value
