"""SQLAlchemy implementation of the signature repository."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mlgate.db.repositories import _aware, _utc
from mlgate.db.tables import model_versions, models, version_signatures
from mlgate.signing.model import Signature


class SqlSignatureRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def put(self, signature: Signature) -> None:
        version_id = self._version_id(signature.model_name, signature.number)
        if version_id is None:
            return
        self._conn.execute(
            version_signatures.delete().where(version_signatures.c.version_id == version_id)
        )
        self._conn.execute(
            version_signatures.insert().values(
                version_id=version_id,
                key_id=signature.key_id,
                signed_at=_utc(signature.signed_at),
                signed_by=signature.signed_by[:255],
                bundle=signature.bundle,
            )
        )

    def get(self, model_name: str, number: int) -> Signature | None:
        query = (
            sa.select(version_signatures)
            .join(model_versions, model_versions.c.id == version_signatures.c.version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model_name, model_versions.c.number == number)
        )
        row: Any = self._conn.execute(query).first()
        if row is None:
            return None
        return Signature(
            model_name, number, row.key_id, _aware(row.signed_at), row.signed_by, row.bundle
        )

    def delete(self, model_name: str, number: int) -> None:
        version_id = self._version_id(model_name, number)
        if version_id is not None:
            self._conn.execute(
                version_signatures.delete().where(version_signatures.c.version_id == version_id)
            )

    def _version_id(self, model_name: str, number: int) -> int | None:
        query = (
            sa.select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model_name, model_versions.c.number == number)
        )
        found = self._conn.execute(query).scalar()
        return None if found is None else int(found)
