"""A model's input column as stored with its version: a name and a type (see schema.py for
what each type means and how rows are checked against them). Plain data: no pandas here, so the
registry's records load without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ColumnType = Literal["number", "string", "boolean", "text", "datetime"]


@dataclass(frozen=True)
class Column:
    """One input column the model expects in every prediction row."""

    name: str
    type: ColumnType

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        return cls(name=str(data["name"]), type=data["type"])
