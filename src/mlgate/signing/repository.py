"""The signatures' storage seam; db/ implements it over SQLAlchemy."""

from __future__ import annotations

from typing import Protocol

from mlgate.signing.model import Signature


class SignatureRepository(Protocol):
    def put(self, signature: Signature) -> None:
        """Store the version's signature, replacing one it had."""
        ...

    def get(self, model_name: str, number: int) -> Signature | None: ...

    def delete(self, model_name: str, number: int) -> None: ...
