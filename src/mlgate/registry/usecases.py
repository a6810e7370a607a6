"""The registry as the edges call it: bound once at the composition root
(bootstrap.Services.registry) with the unit of work, the clock, the artifact store, the loaded
models and the archive limits, so an edge passes only the request's data.

Each method delegates to the use case (aliases.py, service.py, bundles.py, training/compare.py,
exports/ and imports/), which records its own audit event; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlgate.archives import ArchiveLimits
from mlgate.registry import aliases, bundles, service
from mlgate.registry.model import AliasEvent, ModelVersion, RegisteredModel
from mlgate.registry.store import ArtifactStore
from mlgate.signing.keys import Keyring, load_public
from mlgate.signing.model import SignVersion
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    from mlgate.exports.service import OnnxExport
    from mlgate.exports.sql.model import Scratch, SqlExport
    from mlgate.exports.sql.service import InDatabaseRun
    from mlgate.imports.service import ImportRequest
    from mlgate.registry.doctor import Finding
    from mlgate.runtime.predictors import PredictorCache
    from mlgate.training.compare import Comparison, GuardedPromotion


@dataclass(frozen=True)
class Registry:
    """Models, versions and aliases with this process's adapters bound."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    artifacts: ArtifactStore
    predictors: PredictorCache
    limits: ArchiveLimits
    open_scratch: Callable[[str, str | None], Scratch]
    write_in_database: Callable[[str, str, tuple[str | None, str], dict[str, Any]], int]
    sign: SignVersion | None = None  # signs what is imported (signing/usecases.py)
    keyring: Keyring | None = None  # the keys whose bundles' signatures are trusted
    require_signatures: bool = False  # MLGATE_REQUIRE_SIGNATURES: unsigned bundles refused

    # -- reading ----------------------------------------------------------------------------

    def models(self) -> list[RegisteredModel]:
        return service.list_models(self.uow())

    def versions(self, name: str) -> tuple[RegisteredModel, list[ModelVersion]]:
        return service.get_versions(self.uow(), name)

    def resolve(self, name: str, number: int | None, alias: str | None = None) -> ModelVersion:
        """The version a request means (registry.service.resolve_version), uncached."""
        return service.resolve_version(self.uow(), name, number, alias)

    def attachment(self, version: ModelVersion, file_name: str) -> bytes:
        return service.read_attachment(self.uow(), self.artifacts, version, file_name)

    def report_page(self, name: str, number: int) -> bytes:
        """Version `number`'s HTML report, checked against its sha256."""
        return self.attachment(self.resolve(name, number), "report.html")

    def aliases(self, name: str) -> dict[str, int]:
        return aliases.aliases_of(self.uow(), name)

    def history(self, name: str, alias: str) -> list[AliasEvent]:
        return aliases.history(self.uow(), name, alias)

    # -- aliases ----------------------------------------------------------------------------

    def load(self, name: str, number: int) -> ModelVersion:
        """Load (and verify) a version before an alias moves to it: a broken artifact is
        refused, and this process answers the next request without a cold load."""
        version = self.resolve(name, number)
        self.predictors.get(version)
        return version

    def promote(
        self, name: str, number: int, alias: str, *, actor: str, reason: str = ""
    ) -> AliasEvent:
        self.load(name, number)
        return aliases.promote(self.uow(), name, number, alias, actor=actor, reason=reason,
                               now=self.clock())  # fmt: skip

    def promote_if_better(
        self, name: str, number: int, alias: str, *, actor: str, reason: str, alpha: float
    ) -> GuardedPromotion:
        """Promote only if `number` significantly beats what it replaces (training/compare.py)."""
        from mlgate.training.compare import promote_if_better

        self.load(name, number)
        return promote_if_better(
            self.uow(), self.artifacts, self.predictors, name, number, alias, alpha=alpha,
            actor=actor, reason=reason, now=self.clock(),
        )  # fmt: skip

    def rollback(self, name: str, alias: str, *, actor: str, reason: str = "") -> AliasEvent:
        return aliases.rollback(self.uow(), name, alias, actor=actor, reason=reason,
                                now=self.clock())  # fmt: skip

    def compare(self, name: str, a: int, b: int, *, alpha: float = 0.05) -> Comparison:
        from mlgate.training.compare import compare_versions

        return compare_versions(self.uow(), self.artifacts, self.predictors, name, a, b,
                                alpha=alpha, now=self.clock())  # fmt: skip

    def check(self) -> tuple[int, list[Finding]]:
        """Rows, files and hashes checked across the registry (doctor.py): how many versions,
        and what is wrong, each with how to fix it."""
        from mlgate.registry.doctor import check_registry

        return check_registry(self.uow(), self.artifacts)

    def remove_orphans(self) -> list[str]:
        """Delete the files that belong to no version; their keys."""
        from mlgate.registry.doctor import remove_orphans

        return remove_orphans(self.uow(), self.artifacts)

    # -- versions ---------------------------------------------------------------------------

    def annotate(
        self,
        name: str,
        number: int | None,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        aliases.annotate(self.uow(), name, number, description=description, tags=tags)

    def archive(self, name: str, number: int) -> ModelVersion:
        return aliases.archive(self.uow(), name, number, now=self.clock())

    def retire(self, name: str, number: int, at: datetime | None) -> ModelVersion:
        return aliases.schedule_retirement(self.uow(), name, number, at)

    def delete_version(self, name: str, number: int) -> ModelVersion:
        return aliases.delete_version(self.uow(), self.artifacts, name, number)

    def export_bundle(self, name: str, number: int, *, with_snapshot: bool = True) -> bytes:
        return bundles.export_bundle(self.uow(), self.artifacts, name, number,
                                     with_snapshot=with_snapshot, now=self.clock())  # fmt: skip

    def export_onnx(self, name: str, number: int | None, alias: str | None = None) -> OnnxExport:
        from mlgate.exports.service import export_onnx

        return export_onnx(self.uow(), self.artifacts, self.predictors, name, number, alias)

    def export_sql(
        self,
        name: str,
        number: int | None,
        alias: str | None = None,
        *,
        dialect: str,
        table: str | None = None,
        key: tuple[str, ...] = (),
        check_source: str | None = None,
        view: str | None = None,
        function: str | None = None,
    ) -> SqlExport:
        """One SELECT scoring the version in `dialect`, checked on such an engine first."""
        from mlgate.exports.sql.service import export_sql

        return export_sql(self.uow(), self.artifacts, self.predictors, self.open_scratch, name,
                          number, alias, dialect=dialect, table=table, key=key,
                          check_source=check_source, view=view,
                          function=function)  # fmt: skip

    def score_in_database(
        self,
        name: str,
        number: int | None,
        alias: str | None = None,
        *,
        source: str,
        table: str,
        into_table: str,
        key: tuple[str, ...] = (),
        actor: str,
    ) -> InDatabaseRun:
        """Score `table` into `into_table` inside the source's own database, by checked SQL."""
        from mlgate.exports.sql.service import score_in_database

        return score_in_database(
            self.uow(), self.artifacts, self.predictors, self.open_scratch,
            self.write_in_database, name, number, alias, source=source, table=table,
            into_table=into_table, key=key, actor=actor, now=self.clock(),
        )  # fmt: skip

    def import_bundle(
        self, data: bytes, *, model_name: str | None, trust_keys: Sequence[bytes] = ()
    ) -> ModelVersion:
        """The bundle registered, once its signature verifies with a key this server trusts or
        one of `trust_keys` (PEM public keys, `mlgate models import --trust-key`)."""
        keyring = self.keyring
        if keyring is not None and trust_keys:
            given = [load_public(pem, where="--trust-key") for pem in trust_keys]
            keyring = keyring.with_keys(*given)
        return bundles.import_bundle(
            self.uow(), self.artifacts, data, model_name=model_name, now=self.clock(),
            limits=self.limits, keyring=keyring, require_signature=self.require_signatures,
            sign=self.sign,
        )  # fmt: skip

    def import_model(self, request: ImportRequest) -> ModelVersion:
        from mlgate.imports.service import import_model

        return import_model(self.uow(), self.artifacts, request, now=self.clock(), sign=self.sign)
