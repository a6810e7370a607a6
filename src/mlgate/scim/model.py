"""What SCIM provisioning stores: each resource the provider sent, as it sent it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Kind = Literal["User", "Group"]


@dataclass(frozen=True)
class ScimRecord:
    """One provisioned resource: a User (`name` is its userName, the mlgate user's name) or a
    Group (`name` is its displayName, the group that group grants name). `body` holds every
    attribute the provider sent, so it reads back what it wrote."""

    id: str
    kind: Kind
    name: str
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int = 1
    external_id: str | None = None

    def members(self) -> tuple[str, ...]:
        """A group's members' SCIM ids."""
        found = self.body.get("members") or []
        return tuple(str(m.get("value")) for m in found if isinstance(m, dict) and m.get("value"))
