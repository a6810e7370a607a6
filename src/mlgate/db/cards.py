"""SQLAlchemy implementation of the model cards' repository."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mlgate.cards.model import CardRecord
from mlgate.db.repositories import _aware, _utc
from mlgate.db.tables import model_cards, model_versions, models


class SqlCardRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def put(self, record: CardRecord) -> None:
        version_id = self._version_id(record.model_name, record.number)
        if version_id is None:
            return
        self._conn.execute(model_cards.delete().where(model_cards.c.version_id == version_id))
        self._conn.execute(
            model_cards.insert().values(
                version_id=version_id,
                intended_use=record.intended_use,
                owner=record.owner[:255],
                slices=record.slices_json() if record.slices else None,
                updated_at=None if record.updated_at is None else _utc(record.updated_at),
                updated_by=record.updated_by[:255],
            )
        )

    def get(self, model_name: str, number: int) -> CardRecord | None:
        query = (
            sa.select(model_cards)
            .join(model_versions, model_versions.c.id == model_cards.c.version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model_name, model_versions.c.number == number)
        )
        row: Any = self._conn.execute(query).first()
        if row is None:
            return None
        slices, whole = CardRecord.slices_from_json(row.slices)
        return CardRecord(
            model_name,
            number,
            intended_use=row.intended_use,
            owner=row.owner,
            slices=slices,
            whole=whole,
            updated_at=None if row.updated_at is None else _aware(row.updated_at),
            updated_by=row.updated_by,
        )

    def _version_id(self, model_name: str, number: int) -> int | None:
        query = (
            sa.select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model_name, model_versions.c.number == number)
        )
        found = self._conn.execute(query).scalar()
        return None if found is None else int(found)
