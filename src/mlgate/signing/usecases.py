"""Signing as the edges call it: bound once at the composition root (bootstrap.Services.signing)
with the unit of work, the clock, the artifact store, the server's signing key and the keys it
trusts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mlgate.registry.model import ModelVersion
from mlgate.registry.service import get_versions, list_models, resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.signing import service
from mlgate.signing.keys import Keyring, SigningKey
from mlgate.signing.model import Signature, Verification
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class Signing:
    """Signatures of versions with this process's adapters and keys bound."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    artifacts: ArtifactStore
    key: SigningKey
    keyring: Keyring  # the server's own public key included
    require: bool = False  # MLGATE_REQUIRE_SIGNATURES: unsigned versions are refused at load

    def sign_new(self, version: ModelVersion) -> Signature:
        """A signature of a version being registered (registry.service.register_version's
        `sign`), in the name of whoever registers it."""
        actor = version.lineage.trained_by or "mlgate"
        return service.sign_version(self.key, version, actor=actor, now=self.clock())

    def check_load(self, version: ModelVersion, data: bytes) -> None:
        """Raises SignatureError unless `data` may be built into `version`'s model."""
        service.check_load(self.uow(), self.keyring, version, data, require=self.require)

    def verify(self, name: str, number: int | None, alias: str | None = None) -> Verification:
        """Who signed the version, when, and whether its signature and files verify."""
        version = resolve_version(self.uow(), name, number, alias)
        return service.verify_version(self.uow(), self.artifacts, self.keyring, version)

    def verify_all(self) -> list[Verification]:
        """Every version's signature and files checked (`mlgate doctor`)."""
        return [
            service.verify_version(self.uow(), self.artifacts, self.keyring, v)
            for v in self._versions(None)
        ]

    def sign(self, name: str | None, number: int | None, *, actor: str, again: bool = False
             ) -> list[Signature]:  # fmt: skip
        """Sign a version registered before signing (`name`, `number`), every unsigned version
        of `name`, or every unsigned version (`name` None); `again`: re-sign them with the
        current key (rotation)."""
        if name is not None and number is not None:
            versions = [resolve_version(self.uow(), name, number)]
        else:
            versions = self._versions(name)
        return service.sign_existing(self.uow(), self.artifacts, self.key, versions,
                                     actor=actor, now=self.clock(), again=again)  # fmt: skip

    def _versions(self, name: str | None) -> list[ModelVersion]:
        names = [name] if name is not None else [m.name for m in list_models(self.uow())]
        return [v for n in names for v in get_versions(self.uow(), n)[1]]
