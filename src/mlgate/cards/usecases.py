"""Model cards and ML-BOMs as the edges call them: bound once at the composition root
(bootstrap.Services.cards) with the unit of work, the clock, the artifact store and the
predictors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlgate.access.model import AuditEvent, AuditQuery
from mlgate.cards import bom, service
from mlgate.cards.model import CardRecord, ModelCard
from mlgate.errors import NotFound
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
    # What the signature check found of a version (signing/usecases.py's verify, as JSON).
    verify: Callable[[ModelVersion], dict[str, Any]] | None = None

    def card(self, name: str, number: int | None, alias: str | None = None) -> ModelCard:
        version = resolve_version(self.uow(), name, number, alias)
        return self._card(version)

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

    def annotate(self, name: str, number: int | None, fields: Mapping[str, str],
                 slices: Sequence[str], *, actor: str,
                 alias: str | None = None) -> None:  # fmt: skip
        """Edit the card's fields and compute its slices as one change: the fields are
        checked, then the slices (checked against the holdout before anything is kept), and
        only then are the fields written, so a refusal of either leaves the card as it was."""
        service.check_fields(fields)
        if slices:
            self.slice(name, number, slices, actor=actor, alias=alias)
        if fields:
            self.edit(name, number, fields, actor=actor, alias=alias)

    def bom(self, name: str, number: int | None, alias: str | None = None) -> dict[str, Any]:
        """The version's CycloneDX ML-BOM (JSON data), checked against the CycloneDX schema."""
        version = resolve_version(self.uow(), name, number, alias)
        document = bom.bom_of(version, self._card(version))
        bom.validate(document)
        return document

    def dossier(self, name: str, number: int | None, alias: str | None = None) -> bytes:
        """The version's documentation dossier (cards/dossier.py): a zip laid out along the EU
        AI Act's Annex IV with a manifest of sha256s; the same bytes for the same version,
        apart from the timestamp in the zip's comment."""
        from mlgate.cards import dossier, render
        from mlgate.registry.service import read_attachment
        from mlgate.retention.model import policy

        version = resolve_version(self.uow(), name, number, alias)
        card = self._card(version)
        document = bom.bom_of(version, card)
        bom.validate(document)
        with self.uow() as uow:
            signature = uow.signatures.get(version.model_name, version.number)
            settings = uow.monitoring.settings(version.model_name)
            check = uow.monitoring.last_check(version.model_name)
            logged = uow.monitoring.count_logged(version.model_name)
        history = card.to_json()["aliases"]["history"]
        report = dict(version.report or {})
        try:
            page: bytes | None = read_attachment(self.uow(), self.artifacts, version,
                                                 "report.html").replace(
                b"<!--mlgate:version-->", f"v{version.number}".encode()
            )  # fmt: skip
        except NotFound:
            page = None
        checks = self._events(version.model_name, action="monitoring.")
        evidence = dossier.Evidence(
            ref=version.ref,
            card=card.to_json(),
            card_markdown=render.markdown(card),
            bom=document,
            created_at=version.created_at,
            signature_bundle=None if signature is None else signature.bundle,
            verification={"state": "not checked"} if self.verify is None else self.verify(version),
            report=report,
            report_page=page,
            lineage=version.lineage.to_json(),
            alias_history=history,
            audit=self._trail(version),
            monitoring={
                "settings": None if settings is None else settings.public(),
                "last_check": None
                if check is None
                else {
                    "state": check.state,
                    "checked_at": check.checked_at.isoformat(),
                    "details": check.details,
                },
                "logged_requests": logged,
                "history": [dossier.event_json(e) for e in checks],
            },  # fmt: skip
            retention=policy(None if settings is None else settings.log_retention_days),
        )
        return dossier.build(evidence, now=self.clock())

    def _trail(self, version: ModelVersion) -> list[AuditEvent]:
        """The audit events on the version (`m@3`, `m@v3`, `m@3 vs …`) and on its model."""
        m, n = version.model_name, version.number
        found = {
            e.id: e for target in (f"{m}@{n}", f"{m}@v{n}", m) for e in self._events(target=target)
        }
        return sorted(found.values(), key=lambda e: (e.at, e.id or 0))

    def _events(self, target: str | None = None, action: str | None = None) -> list[AuditEvent]:
        """Every audit event on `target` (of `action`), oldest first: read a page of MAX_LIMIT
        at a time, newest first, back to the first (a dossier holds the whole trail, not its
        latest thousand events)."""
        from mlgate.access.audit import MAX_LIMIT, query

        found: dict[int | None, AuditEvent] = {}
        until: datetime | None = None
        while True:
            asked = AuditQuery(target=target, action=action, until=until, limit=MAX_LIMIT)
            page = query(self.uow(), asked)
            found.update((e.id, e) for e in page)
            if len(page) < MAX_LIMIT:
                break
            until = min(e.at for e in page)
            # The events of that very moment the page may have cut through (`until` excludes it).
            moment = AuditQuery(
                target=target,
                action=action,
                since=until,
                until=until + timedelta(microseconds=1),
                limit=MAX_LIMIT,
            )
            found.update((e.id, e) for e in query(self.uow(), moment))
        return sorted(found.values(), key=lambda e: (e.at, e.id or 0))

    def _card(self, version: ModelVersion) -> ModelCard:
        """The card, its Integrity section saying what checking the signature finds now."""
        checked = self.verify(version) if self.verify is not None else None
        return service.build_card(self.uow(), version, service.record_of(self.uow(), version),
                                  verification=checked)  # fmt: skip
