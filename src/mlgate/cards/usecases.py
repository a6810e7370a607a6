"""Model cards and ML-BOMs as the edges call them: bound once at the composition root
(bootstrap.Services.cards) with the unit of work, the clock, the artifact store and the
predictors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlgate.cards import bom, service
from mlgate.cards.model import CardRecord, ModelCard
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class Cards:
    """A version's model card (`card`), its editable fields and slices, and its ML-BOM."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    artifacts: ArtifactStore
    predictors: PredictorCache

    def card(self, name: str, number: int | None, alias: str | None = None) -> ModelCard:
        version = resolve_version(self.uow(), name, number, alias)
        return service.build_card(self.uow(), version, service.record_of(self.uow(), version))

    def edit(self, name: str, number: int | None, fields: Mapping[str, str], *, actor: str,
             alias: str | None = None) -> CardRecord:  # fmt: skip
        """Set the card's intended_use and owner (audited: models.card)."""
        version = resolve_version(self.uow(), name, number, alias)
        return service.set_fields(self.uow(), version.model_name, version.number, fields,
                                  actor=actor, now=self.clock())  # fmt: skip

    def slice(self, name: str, number: int | None, columns: Sequence[str], *, actor: str,
              alias: str | None = None) -> CardRecord:  # fmt: skip
        """Compute and keep the version's metrics per slice of `columns` (audited)."""
        version = resolve_version(self.uow(), name, number, alias)
        return service.set_slices(self.uow(), self.artifacts, self.predictors,
                                  version.model_name, version.number, columns, actor=actor,
                                  now=self.clock())  # fmt: skip

    def bom(self, name: str, number: int | None, alias: str | None = None) -> dict[str, Any]:
        """The version's CycloneDX ML-BOM (JSON data), checked against the CycloneDX schema."""
        version = resolve_version(self.uow(), name, number, alias)
        document = bom.bom_of(version, self._card(version))
        bom.validate(document)
        return document

    def _card(self, version: ModelVersion) -> ModelCard:
        return service.build_card(self.uow(), version, service.record_of(self.uow(), version))
