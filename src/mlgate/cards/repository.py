"""The cards' storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from typing import Protocol

from mlgate.cards.model import CardRecord


class CardRepository(Protocol):
    def put(self, record: CardRecord) -> None:
        """Store the version's card fields and slices, replacing what it had."""
        ...

    def get(self, model_name: str, number: int) -> CardRecord | None: ...
