"""What the registry knows about a model: its versions, their lineage and their input schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the registry's records load without pandas
    from mlgate.columns import Column

Task = Literal["classification", "regression", "generation", "forecast"]


@dataclass(frozen=True)
class Lineage:
    """Where a version's training rows came from, and a fingerprint of them."""

    source_name: str
    source_url: str  # with any password replaced by ***
    table: str | None
    query: str | None
    n_rows: int
    data_sha256: str
    dropped_columns: tuple[str, ...] = ()
    test_size: float = 0.2
    seed: int = 42
    trained_by: str = ""  # who asked: cli:<user> or key:<prefix>

    def to_json(self) -> dict[str, Any]:
        return {
            "source_name": self.source_name,
            "source_url": self.source_url,
            "table": self.table,
            "query": self.query,
            "n_rows": self.n_rows,
            "data_sha256": self.data_sha256,
            "dropped_columns": list(self.dropped_columns),
            "test_size": self.test_size,
            "seed": self.seed,
            "trained_by": self.trained_by,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lineage:
        return cls(**{**data, "dropped_columns": tuple(data.get("dropped_columns", ()))})


@dataclass(frozen=True)
class Artifact:
    """A stored, fitted model: where it is, in which data-only format, and its sha256."""

    key: str
    format: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ModelVersion:
    model_name: str
    number: int
    task: Task
    algorithm: str
    target: str
    params: dict[str, Any]
    metrics: dict[str, float]
    columns: tuple[Column, ...]
    classes: tuple[Any, ...] | None
    lineage: Lineage
    artifact: Artifact
    library_versions: dict[str, str]
    created_at: datetime
    fit_seconds: float = 0.0
    report: dict[str, Any] | None = None  # evaluation details, notes, explanations
    archived_at: datetime | None = None  # kept, but no longer servable or promotable
    retire_at: datetime | None = None  # scheduled end of service (Sunset for pinned consumers)
    description: str = ""  # annotations: the only things that change on a version
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.model_name}@v{self.number}"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    task: Task
    target: str
    created_at: datetime
    latest_version: int = 0
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_name(kind: str, name: str) -> str:
    """`name` if it can be used in a URL path segment as-is, else InvalidInput saying why."""
    from mlgate.errors import InvalidInput

    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS or not name[0].isalnum():
        raise InvalidInput(
            f"{kind} names are 1-128 letters, digits, '_', '.' or '-', starting with a letter "
            f"or digit; {name[:40]!r} is not one"
        )
    return name


def check_user_name(name: str) -> str:
    """`name` if it can name a user: as `check_name`, and `@` and `+` too, since identity
    providers name people by their email address (Okta's and Entra ID's SCIM `userName`, their
    `preferred_username`), sub-addressed ones included; both stand as-is in a URL path
    segment."""
    from mlgate.errors import InvalidInput

    if not name or len(name) > 128 or not set(name) <= _USER_CHARS or not name[0].isalnum():
        raise InvalidInput(
            "user names are 1-128 letters, digits, '_', '.', '-', '@' or '+', starting with a "
            f"letter or digit; {name[:40]!r} is not one"
        )
    return name


_USER_CHARS = _NAME_CHARS | {"@", "+"}
PRODUCTION = "production"
_ALIAS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: promote (to a version), rollback (back to the one before)."""

    model_name: str
    alias: str
    kind: Literal["promote", "rollback"]
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def check_alias(alias: str) -> str:
    """`alias` if it is 1-64 of a-z, 0-9, '_' and '-', else InvalidInput saying so."""
    from mlgate.errors import InvalidInput

    if not alias or len(alias) > 64 or not set(alias) <= _ALIAS_CHARS:
        raise InvalidInput(
            f"alias names are 1-64 characters of a-z, 0-9, '_' and '-'; {alias[:40]!r} is not one"
        )
    return alias


def same_label(a: Any, b: Any) -> bool:
    """Whether two class labels are the same class: a logged or fed-back label against a
    prediction, across JSON's types (1 and 1.0 are one class, True and 1 are not, "1" and 1 are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)
