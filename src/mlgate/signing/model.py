"""What signing knows: a version's signature, and what checking it found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlgate.registry.model import ModelVersion

MODEL_FILE = "model"  # the artifact's name in a signature's manifest (and in export bundles)


@dataclass(frozen=True)
class Signature:
    """A version's signature: an OpenSSF Model Signing bundle (a Sigstore bundle holding a DSSE
    envelope of an in-toto statement over the files' sha256), who holds its key, and when."""

    model_name: str
    number: int
    key_id: str  # sha256 of the public key's PEM: model-signing's key hint
    signed_at: datetime
    signed_by: str  # who registered or signed the version: cli:<user>, key:<prefix>, ...
    bundle: str  # the bundle's JSON, as `model_signing` writes model.sig


State = Literal["verified", "unsigned", "untrusted", "invalid", "mismatch"]


@dataclass(frozen=True)
class Verification:
    """What checking a version's signature found. `files`: the signed files' sha256 by name;
    `problems`: what does not match (empty when verified)."""

    ref: str
    state: State
    key_id: str | None = None
    signed_at: datetime | None = None
    signed_by: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "verified"

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.ref,
            "state": self.state,
            "verified": self.ok,
            "key_id": self.key_id,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "signed_by": self.signed_by,
            "files": self.files,
            "problems": list(self.problems),
        }


# Signs a version as it is registered, inside the transaction that inserts it.
SignVersion = Callable[["ModelVersion"], Signature]
