"""Services, built from Settings: the one place that picks adapters and touches the disk."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mlgate.access.model import Principal
from mlgate.access.usecases import Access
from mlgate.archives import ArchiveLimits
from mlgate.caching import TtlCache
from mlgate.db import migrate
from mlgate.db.engine import create_engine
from mlgate.db.uow import SqlUnitOfWork
from mlgate.errors import ConfigError, NotReady
from mlgate.outbound.addresses import AllowList
from mlgate.outbound.client import Outbound
from mlgate.outcomes import Outcome
from mlgate.periodic import Loops
from mlgate.plans.enforce import Gate
from mlgate.plans.flusher import UsageFlusher
from mlgate.plans.limiter import Counters, MemoryCounters
from mlgate.plans.metering import UsageTraces
from mlgate.plans.thresholds import Notifier
from mlgate.plans.usecases import Plans
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import recover_writes, resolve_version
from mlgate.registry.store import ArtifactStore, LocalArtifactStore
from mlgate.registry.usecases import Registry
from mlgate.runtime.predictors import PredictorCache
from mlgate.runtime.watcher import AliasWatcher
from mlgate.settings import Settings
from mlgate.sources.base import Source
from mlgate.sources.factory import open_source
from mlgate.sources.model import SourceConfig
from mlgate.sources.scratch import open_scratch, write_in_database
from mlgate.sources.sealing import Sealer
from mlgate.sources.usecases import Sources
from mlgate.sso.device import DeviceGrant
from mlgate.sso.discovery import Discovery
from mlgate.sso.service import Rules, SingleSignOn
from mlgate.sso.tokens import Jwks
from mlgate.tracing import setup as tracing
from mlgate.training.jobs import TrainingRunner
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:  # monitoring (and pandas) load when the server starts it, not with the CLI
    from mlgate.cards.usecases import Cards
    from mlgate.explainers.explain import Explainer
    from mlgate.monitoring.recorder import PredictionRecorder
    from mlgate.monitoring.service import Monitor
    from mlgate.retention.service import Retention
    from mlgate.rollouts.model import Rollout
    from mlgate.rollouts.tally import RolloutTally
    from mlgate.rollouts.usecases import Rollouts
    from mlgate.serving.batches import BatchRunner
    from mlgate.serving.service import Serving
    from mlgate.serving.shadow import ShadowScorer
    from mlgate.serving.usecases import Batches
    from mlgate.signing.keys import SigningKey
    from mlgate.signing.usecases import Signing
    from mlgate.training.profiles import Profiles

log = logging.getLogger("mlgate")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    engine: sa.Engine | None  # None: the metadata lives elsewhere (`unit_of_work`, tests' fakes)
    artifacts: ArtifactStore
    predictors: PredictorCache
    server_secret: bytes = field(repr=False)
    clock: Callable[[], datetime] = utc_now
    unit_of_work: Callable[[], UnitOfWork] | None = field(default=None, repr=False)
    draining: bool = False  # set on SIGTERM: /readyz says no while in-flight requests finish
    # The prediction path's reads of the database, kept a second (see caching.py).
    principals: TtlCache[str, Principal] = field(default_factory=TtlCache, repr=False)
    versions: TtlCache[tuple[str, int | None, str | None], ModelVersion] = field(
        default_factory=TtlCache, repr=False
    )
    _jobs: TrainingRunner | None = field(default=None, repr=False)
    _gate: Gate | None = field(default=None, repr=False)
    _flusher: UsageFlusher | None = field(default=None, repr=False)
    _watcher: AliasWatcher | None = field(default=None, repr=False)
    _recorder: PredictionRecorder | None = field(default=None, repr=False)
    _monitor: Monitor | None = field(default=None, repr=False)
    _tally: RolloutTally | None = field(default=None, repr=False)
    _loops: Loops = field(default_factory=Loops, repr=False)
    _shadow: ShadowScorer | None = field(default=None, repr=False)
    _notifier: Notifier | None = field(default=None, repr=False)
    _batches: BatchRunner | None = field(default=None, repr=False)
    _outbound: Outbound | None = field(default=None, repr=False)
    running_rollouts: TtlCache[str, dict[str, tuple[Rollout, ...]]] = field(
        default_factory=TtlCache, repr=False
    )
    # Hears what became of every prediction (model, version, outcome, rows): the API's metrics
    # (create_app binds api/observe.py's); nothing by default.
    observe_prediction: Callable[[str, int, Outcome, int], None] = field(
        default=lambda model, version, outcome, rows: None, repr=False
    )

    @property
    def aliases(self) -> AliasWatcher:
        """Where this process's aliases point (see runtime/watcher.py), made on first use."""
        if self._watcher is None:
            self._watcher = AliasWatcher(self.uow, self.predictors)
        return self._watcher

    @property
    def gate(self) -> Gate:
        """Plans on the prediction path, with counters in this process or in Redis."""
        if self._gate is None:
            counters: Counters
            if self.settings.redis_url:
                from mlgate.plans.redis_counters import RedisCounters

                counters = RedisCounters(self.settings.redis_url, prefix=self.settings.redis_prefix)
            else:
                counters = MemoryCounters()
            self._gate = Gate(
                counters, self.uow, self.clock, fail_open=self.settings.limits_fail_open,
                on_crossings=self.notifier.offer, traces=UsageTraces(),
            )  # fmt: skip
        return self._gate

    @property
    def outbound(self) -> Outbound:
        """The one client of webhooks and usage sinks: public addresses and MLGATE_OUTBOUND_ALLOW
        only (outbound/client.py)."""
        if self._outbound is None:
            self._outbound = Outbound(AllowList.parse(self.settings.outbound_allow))
        return self._outbound

    @property
    def notifier(self) -> Notifier:
        """Announces quota thresholds crossed (plans/thresholds.py)."""
        if self._notifier is None:
            secret = self.settings.operator_webhook_secret
            self._notifier = Notifier(
                self.uow,
                operator_url=self.settings.operator_webhook_url,
                operator_secret=secret.reveal() if secret else "",
                outbound=self.outbound,
            )
        return self._notifier

    @property
    def flusher(self) -> UsageFlusher:
        """Moves metered usage to the database every second (see plans/flusher.py)."""
        if self._flusher is None:
            self._flusher = UsageFlusher(
                self.gate.counters, self.uow, self.clock, traces=self.gate.traces
            )
        return self._flusher

    @property
    def recorder(self) -> PredictionRecorder:
        """The sampled prediction log (see monitoring/recorder.py), written every second."""
        if self._recorder is None:
            from mlgate.monitoring.recorder import PredictionRecorder

            self._recorder = PredictionRecorder(
                self.uow, self.clock, rollout_per_second=self.settings.rollout_log_per_second
            )
        return self._recorder

    @property
    def monitor(self) -> Monitor:
        """Drift, live accuracy and alerts (see monitoring/service.py)."""
        if self._monitor is None:
            from mlgate.monitoring.service import Monitor

            self._monitor = Monitor(
                self.uow, self.artifacts, self.predictors, self.clock, self.recorder,
                retrain=self.rollouts.retrain_on_alert, outbound=self.outbound,
            )  # fmt: skip
        return self._monitor

    def explainer(self, version: ModelVersion) -> Explainer:
        """What explains `version`'s predictions, against its training snapshot's rows."""
        from mlgate.explainers.explain import explainer_of, training_background
        from mlgate.training.service import read_snapshot

        def rows() -> Any:
            return read_snapshot(self.uow(), self.artifacts, version.model_name, version.number)

        return explainer_of(
            self.predictors.get(version), lambda: training_background(rows, version)
        )

    @property
    def tally(self) -> RolloutTally:
        """The calls each side of a rollout answered in this process (rollouts/tally.py)."""
        if self._tally is None:
            from mlgate.rollouts.tally import RolloutTally

            self._tally = RolloutTally(self.uow)
        return self._tally

    @property
    def shadow(self) -> ShadowScorer:
        """A shadow rollout's copies of calls, scored by its candidate (serving/shadow.py)."""
        if self._shadow is None:
            from mlgate.serving.shadow import ShadowScorer

            self._shadow = ShadowScorer(
                self.uow, self.predictors, self.resolve_version, self.tally, self.clock
            )
        return self._shadow

    def rollouts_of(self, model: str) -> tuple[Rollout, ...]:
        """The model's running rollouts, every running one read at most once a second."""

        def load() -> dict[str, tuple[Rollout, ...]]:
            from mlgate.rollouts.service import running_by_model

            return running_by_model(self.uow())

        return self.running_rollouts.get("all", load).get(model, ())

    def start_monitoring(self) -> None:
        """The prediction log's writer, the checks every MLGATE_MONITOR_INTERVAL seconds, and
        the rollouts' counts and looks (every MLGATE_ROLLOUT_INTERVAL seconds)."""
        self.recorder.start()
        self.tally.start()
        self.shadow.start()
        settings, loops = self.settings, self._loops
        loops.start("mlgate-monitor", lambda: self.monitor.check_all(), settings.monitor_interval)
        loops.start("mlgate-referee", lambda: self.rollouts.decide_all(), settings.rollout_interval)
        loops.start("mlgate-schedules", lambda: self.rollouts.run_schedules(),
                    settings.schedule_interval)  # fmt: skip
        loops.start("mlgate-batch-expiry", lambda: self.batches.expire(), 600)
        loops.start("mlgate-retention", lambda: self.retention.enforce(),
                    settings.retention_interval)  # fmt: skip
        if settings.usage_export_url:
            loops.start("mlgate-usage-export", lambda: self.plans.export_usage(),
                        settings.usage_export_interval)  # fmt: skip

    def usage_sink(self) -> Any:
        """The billing sink MLGATE_USAGE_EXPORT_URL names (plans/sinks.py), or None."""
        from mlgate.plans.sinks import CloudEventsSink, StripeSink

        url = self.settings.usage_export_url
        if not url:
            return None
        token = self.settings.usage_export_token
        secret = token.reveal() if token else None
        if self.settings.usage_export_format == "stripe":
            if not secret:
                raise ConfigError("a Stripe usage sink needs MLGATE_USAGE_EXPORT_TOKEN")
            with self.uow() as uow:  # read for each pass: an id set since counts at once
                customers = {c.name: c.billing_id for c in uow.consumers.all() if c.billing_id}
            return StripeSink(secret, url=url, customers=customers, outbound=self.outbound)
        return CloudEventsSink(url, token=secret, name="cloudevents", outbound=self.outbound)

    def stop_monitoring(self) -> None:
        self._loops.stop()
        if self._recorder is not None:
            self._recorder.stop()
        if self._shadow is not None:
            self._shadow.stop()
        if self._tally is not None:
            self._tally.stop()

    @cached_property
    def retention(self) -> Retention:
        """Each model's log retention, enforced every MLGATE_RETENTION_INTERVAL seconds by the
        server (retention/service.py)."""
        from mlgate.retention.service import Retention

        return Retention(self.uow, lambda: self.clock())

    @cached_property
    def serving(self) -> Serving:
        """The prediction use cases' view of this process (serving/service.py), bound once:
        every protocol's route and the dashboard's explain page call predict with it."""
        from mlgate.serving.service import Serving

        def observe(model: str, version: int, outcome: Outcome, rows: int) -> None:
            self.observe_prediction(model, version, outcome, rows)

        return Serving(
            gate=self.gate, predictors=self.predictors, resolve=self.resolve_version,
            recorder=self.recorder, observe=observe, explainer=self.explainer,
            rollouts=self.rollouts_of, tally=self.tally, shadow=self.shadow,
            seen=self.profiles.seen,
        )  # fmt: skip

    @cached_property
    def rollouts(self) -> Rollouts:
        """Rollouts and retraining schedules, their adapters bound (rollouts/usecases.py)."""
        from mlgate.rollouts.usecases import Rollouts

        def job_state(job_id: str) -> tuple[str, dict[str, Any], str | None]:
            job = self.jobs.get(job_id)
            return job.state, job.result, job.error

        return Rollouts(
            uow=self.uow, clock=self.now, predictors=self.predictors,
            outbound=lambda: self.outbound,
            submit_training=lambda spec, body: self.jobs.submit(spec, body).id,
            job_state=job_state, open_source=self.open_source, changed=self.forget_cached,
            flush_tally=self.flush_tally,
        )  # fmt: skip

    @cached_property
    def access(self) -> Access:
        """Accounts, keys, grants and the audit log, their adapters bound (access/usecases.py)."""
        return Access(
            uow=self.uow, clock=self.now, server_secret=self.server_secret,
            machine=self._machine_principal if self.settings.oidc_audience else None,
        )  # fmt: skip

    def _machine_principal(self, raw: str) -> Principal:
        sso = self.sso
        if sso is None:
            raise ConfigError("MLGATE_OIDC_AUDIENCE needs MLGATE_OIDC_ISSUER and _CLIENT_ID")
        return sso.machine_principal(raw)

    @cached_property
    def sso(self) -> SingleSignOn | None:
        """Single sign-on with the provider MLGATE_OIDC_ISSUER names; None without one. Tests
        may set their own (one whose key set is read in process)."""
        s = self.settings
        if not s.oidc_issuer or not s.oidc_client_id:
            return None
        discovery = Discovery(s.oidc_issuer)
        rules = Rules(
            issuer=s.oidc_issuer, client_id=s.oidc_client_id,
            username_claim=s.oidc_username_claim, groups_claim=s.oidc_groups_claim,
            admin_groups=frozenset(s.oidc_admin_groups), audience=s.oidc_audience,
            leeway=s.oidc_leeway,
        )  # fmt: skip
        secret = s.oidc_client_secret
        device = DeviceGrant(discovery.document, client_id=s.oidc_client_id,
                             client_secret=secret.reveal() if secret else None,
                             scope=s.oidc_scopes)  # fmt: skip
        return SingleSignOn(rules=rules, jwks=Jwks(discovery.jwks), uow=self.uow,
                            clock=self.now, server_secret=self.server_secret,
                            discovery=discovery.document, device=device)  # fmt: skip

    @cached_property
    def plans(self) -> Plans:
        """Plans, subscriptions, usage and billing, their adapters bound (plans/usecases.py)."""
        return Plans(
            uow=self.uow, clock=self.now, outbound=lambda: self.outbound,
            usage_sink=self.usage_sink,
        )  # fmt: skip

    @cached_property
    def sources(self) -> Sources:
        """Data sources, their adapters bound (sources/usecases.py)."""
        return Sources(uow=self.uow, clock=self.now, open_source=self.open_source)

    @cached_property
    def registry(self) -> Registry:
        """Models, versions and aliases, their adapters bound (registry/usecases.py)."""
        return Registry(
            uow=self.uow, clock=self.now, artifacts=self.artifacts, predictors=self.predictors,
            limits=ArchiveLimits.of(self.settings), open_scratch=open_scratch,
            write_in_database=write_in_database, sign=self.signing.sign_new,
            keyring=self.signing.keyring, require_signatures=self.signing.require,
        )  # fmt: skip

    @cached_property
    def signing(self) -> Signing:
        """Versions' signatures (signing/usecases.py): the key MLGATE_SIGNING_KEY names (or the
        home's signing.key, made on first use) signs, and it and MLGATE_TRUSTED_KEYS verify."""
        from mlgate.signing.keys import Keyring, read_public_keys
        from mlgate.signing.usecases import Signing

        key = _signing_key(self.settings)
        trusted = Keyring.of(key.public, *read_public_keys(list(self.settings.trusted_keys)))
        return Signing(
            uow=self.uow, clock=self.now, artifacts=self.artifacts, key=key, keyring=trusted,
            require=self.settings.require_signatures,
        )  # fmt: skip

    @cached_property
    def cards(self) -> Cards:
        """Model cards, their slices and ML-BOMs (cards/usecases.py)."""
        from mlgate.cards.usecases import Cards

        def verify(version: ModelVersion) -> dict[str, Any]:
            return self.signing.verify(version.model_name, version.number).to_json()

        return Cards(
            uow=self.uow, clock=self.now, artifacts=self.artifacts, predictors=self.predictors,
            verify=verify,
        )  # fmt: skip

    def flush_tally(self) -> None:
        """Write this process's counts of rollout calls now (where it counts any)."""
        if self._tally is not None:
            self._tally.flush()

    def now(self) -> datetime:
        """The clock, read through: a test may swap `clock` after the use cases are bound."""
        return self.clock()

    @property
    def jobs(self) -> TrainingRunner:
        """The background runner of training jobs, made on first use."""
        if self._jobs is None:
            self._jobs = TrainingRunner(
                self.uow, self.artifacts, self.open_source, self.clock,
                sign=self.signing.sign_new, slice_card=self.slice_card,
            )  # fmt: skip
        return self._jobs

    def slice_card(self, version: ModelVersion, columns: tuple[str, ...]) -> None:
        """A new version's card sliced by `columns` (training's --slices), by who trained it."""
        actor = version.lineage.trained_by or "mlgate"
        self.cards.slice(version.model_name, version.number, columns, actor=actor)

    @property
    def batches(self) -> BatchRunner:
        """The runner of consumers' batch jobs (serving/batches.py), made on first use."""
        if self._batches is None:
            from mlgate.serving.batches import BatchRunner

            self._batches = BatchRunner(
                self.uow, self.artifacts, self.predictors, lambda: self.gate, self.clock,
                retention=timedelta(hours=self.settings.batch_retention_hours),
                dask_address=self.settings.dask_address, seen=self.profiles.seen,
            )  # fmt: skip
        return self._batches

    @cached_property
    def batch_jobs(self) -> Batches:
        """Consumers' batch jobs as the edges call them (serving/usecases.py); the runner
        above does their work."""
        from mlgate.serving.usecases import Batches

        return Batches(
            uow=self.uow, clock=self.now, artifacts=self.artifacts, runner=lambda: self.batches
        )

    def stop_batches(self) -> None:
        """Stop taking chunks (a running batch resumes in the next process)."""
        if self._batches is not None:
            self._batches.shutdown()

    @cached_property
    def sealer(self) -> Sealer:
        return Sealer(self.server_secret)

    @cached_property
    def profiles(self) -> Profiles:
        """Each version's columns as training saw them, and the portal's example row (read from
        the version's snapshot once, then kept)."""
        from mlgate.training.profiles import Profiles

        row = self.settings.portal_example == "row"
        return Profiles(self.uow, self.artifacts, example="row" if row else "typical")

    def resolve_version(self, name: str, number: int | None, alias: str | None) -> ModelVersion:
        """registry.service.resolve_version, through the one-second cache."""
        return self.versions.get(
            (name, number, alias), lambda: resolve_version(self.uow(), name, number, alias)
        )

    def forget_cached(self) -> None:
        """Drop what the caches hold and look at the aliases again: this process just changed
        keys, grants, plans, versions or aliases."""
        self.principals.clear()
        self.versions.clear()
        self.running_rollouts.clear()
        if self._gate is not None:
            self._gate.forget_subscriptions()
        if self._watcher is not None:  # an alias this process moved: follow it now
            try:
                self._watcher.refresh()
            except Exception:  # its own thread tries again within half a second
                log.exception("alias refresh after a change failed")

    def uow(self) -> UnitOfWork:
        if self.unit_of_work is not None:
            return self.unit_of_work()
        assert self.engine is not None
        return SqlUnitOfWork(self.engine, self.sealer)

    def open_source(self, config: SourceConfig) -> Source:
        return open_source(config)

    def readiness(self) -> dict[str, str]:
        """What /readyz reports; raises NotReady while shutting down, or when the database or
        its schema is not usable. The aliases' targets are loaded before the server answers."""
        if self.draining:
            raise NotReady("shutting down: finishing the requests in flight")
        if self.engine is None:
            return {"status": "ready", "database": "memory", "schema": "none",
                    "models_loaded": str(self.predictors.size())}  # fmt: skip
        try:
            current = migrate.current_revision(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise NotReady(
                f"the metadata database is not reachable ({type(exc).__name__})"
            ) from None
        head = migrate.head_revision()
        if current != head:
            raise NotReady(f"the metadata schema is at {current}, not {head}; run `mlgate init`")
        return {
            "status": "ready",
            "database": self.engine.dialect.name,
            "schema": current,
            "models_loaded": str(self.predictors.size()),
        }

    def close(self) -> None:
        self.stop_monitoring()
        if self._flusher is not None:
            self._flusher.stop()
        if self._jobs is not None:
            self._jobs.shutdown(wait=True)
        if self._watcher is not None:
            self._watcher.stop()
        if self._outbound is not None:
            self._outbound.close()
        if self.engine is not None:
            self.engine.dispose()


def bootstrap(
    settings: Settings,
    *,
    migrate_schema: bool = True,
    unit_of_work: Callable[[], UnitOfWork] | None = None,
    artifacts: ArtifactStore | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Create the home folder, bring the metadata schema to head and wire the adapters.

    Tests hand in their own adapters (cosmicpython's ``bootstrap_test_app``): a unit of work
    over in-memory repositories replaces the database, an artifact store the files, a clock
    the wall clock.
    """
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.artifact_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the mlgate home {settings.home}: {exc}") from None
    engine = None if unit_of_work is not None else _migrated_engine(settings, migrate_schema)
    tracing.configure()  # the OTEL_* variables, once per process: off when none is set
    if artifacts is None:
        artifacts = _artifact_store(settings)
    services = Services(
        settings=settings,
        engine=engine,
        artifacts=artifacts,
        predictors=PredictorCache(artifacts),
        server_secret=_server_secret(settings),
        clock=clock,
        unit_of_work=unit_of_work,
    )
    # Every load checks the version's signature before its bytes are built (signing/).
    services.predictors.verify = lambda version, data: services.signing.check_load(version, data)
    if migrate_schema:  # files of writes whose process died (see register_version)
        recover_writes(services.uow(), artifacts, now=services.clock())
    if engine is not None and migrate_schema:  # credentials stored before they were sealed
        with SqlUnitOfWork(engine, services.sealer) as uow:
            if uow.sources.seal_legacy():
                uow.commit()
    return services


def _migrated_engine(settings: Settings, migrate_schema: bool) -> sa.Engine:
    engine = create_engine(settings.database_url)
    if migrate_schema:
        try:
            migrate.upgrade_to_head(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise NotReady(
                "the metadata database could not be reached or migrated "
                f"({type(exc.orig).__name__}); check MLGATE_DATABASE_URL"
            ) from None
    return engine


def _artifact_store(settings: Settings) -> ArtifactStore:
    if settings.artifact_url:
        from mlgate.registry.s3 import S3ArtifactStore

        return S3ArtifactStore(settings.artifact_url, endpoint_url=settings.s3_endpoint_url)
    return LocalArtifactStore(settings.artifact_dir)


def _signing_key(settings: Settings) -> SigningKey:
    """MLGATE_SIGNING_KEY's PEM file, else the home's signing.key, created on first use."""
    from mlgate.signing.keys import SigningKey, new_private_key

    path = settings.signing_key_file
    if settings.signing_key is None and not path.exists():
        _create_once(path, new_private_key().decode())
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"the signing key {path} could not be read: {exc.strerror}") from None
    return SigningKey.from_pem(pem, where=str(path))


def _create_once(path: Path, content: str) -> None:
    """Write `content` to a new file readable by its owner only. Written aside, then linked
    into place: two processes starting at once agree on one file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _server_secret(settings: Settings) -> bytes:
    """MLGATE_SECRET_KEY, else the key file in the home folder, created on first use."""
    if settings.secret_key is not None:
        return settings.secret_key.reveal().encode()
    path = settings.secret_key_file
    if not path.exists():
        _create_once(path, secrets.token_hex(32))
    value = path.read_text().strip()
    if len(value) < 32:
        raise ConfigError(f"{path} holds too short a secret key; remove it to make a new one")
    return value.encode()
