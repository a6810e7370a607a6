"""Response bodies, declared for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictInt

from mlgate.registry.model import ModelVersion, RegisteredModel

# The bounds of every integer a request carries (path, query, body; the pages' forms too), in
# one place. Each is declared in the OpenAPI document, so a number out of range gets a 422 that
# names its field before any database sees it (SQLite cannot even bind an integer past 2**63 - 1,
# PostgreSQL's and MariaDB's INTEGER columns stop at 2**31 - 1).
# tests/integration/test_bounds.py fails for any integer of any route left without its bounds.
MAX_NUMBER = 2**31 - 1
"""Ids, versions and row positions: the metadata tables' INTEGER columns (db/tables.py)."""
MAX_COUNT = 10**15
"""Counts and sizes (rows, bytes): within BIGINT, and exact as a JSON or a float number."""
MAX_SEED = 2**32 - 1
"""Random seeds: what numpy's and scikit-learn's `random_state` accept (0 to 2**32 - 1)."""

VersionNumber = Annotated[int, Field(ge=1, le=MAX_NUMBER, description="A version: 1, 2, ...")]
Id = Annotated[int, Field(ge=1, le=MAX_NUMBER, description="An id, as listed")]
GrantId = Id
RowIndex = Annotated[int, Field(ge=0, le=MAX_NUMBER, description="A row's position, from 0")]
# In request bodies, a number is a JSON number: `true` or "5" is refused, not read as 1 or 5
# (pydantic's lax mode would; schemathesis found `"seed": true` accepted).
Seed = Annotated[
    int, Strict(), Field(ge=0, le=MAX_SEED, description="The same seed, the same result")
]
BodyRowIndex = Annotated[
    int, Strict(), Field(ge=0, le=MAX_NUMBER, description="A row's position, from 0")
]
Percent = Annotated[int, Strict(), Field(ge=1, le=100, description="A whole percent, 1 to 100")]


def _iso_8601(value: Any) -> Any:
    """Date-times as the document states them (ISO 8601 text), not pydantic's other readings
    (a number as seconds since 1970), so what is accepted is what is documented."""
    if not isinstance(value, str | datetime) or (isinstance(value, str) and _number(value)):
        raise ValueError("expected an ISO 8601 date-time, such as 2026-01-31T00:00:00Z")
    return value


def _number(text: str) -> bool:
    """Text pydantic would read as seconds since 1970: any number, `1e-309` included (found by
    scripts/fuzz), not only digits."""
    try:
        float(text)
    except ValueError:
        return False
    return True


Instant = Annotated[datetime, BeforeValidator(_iso_8601)]


class ColumnOut(BaseModel):
    name: str
    type: str = Field(description="number, string or boolean; every column accepts null")


class VersionOut(BaseModel):
    version: int
    algorithm: str
    metrics: dict[str, float]
    created_at: datetime
    n_training_rows: int
    data_sha256: str
    artifact_sha256: str
    archived: bool = False
    trained_by: str = ""
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(
        default_factory=dict,
        description="The libraries it was trained with: python, mlgate, scikit-learn, xgboost...",
    )


class ModelSummary(BaseModel):
    name: str
    task: str
    target: str
    latest_version: int
    created_at: datetime


class ModelDetail(ModelSummary):
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict, description="alias -> version")
    input_schema: list[ColumnOut]
    classes: list[Any] | None
    versions: list[VersionOut]


class ModelSchema(BaseModel):
    """What a caller needs to call the model: its input columns and, for classifiers, classes."""

    name: str
    task: str
    target: str
    input_schema: list[ColumnOut]
    classes: list[Any] | None


class RowWarningOut(BaseModel):
    column: str
    kind: Literal["outside_range", "unseen_category", "missing"]
    value: Any = Field(description="the row's value (null when missing)")
    seen: Any = Field(
        description="[low, high] for outside_range; the most frequent categories for "
        "unseen_category; null for missing"
    )
    message: str


class PredictOut(BaseModel):
    model: str
    version: int
    predictions: list[Any]
    classes: list[Any] | None = Field(None, description="classifiers: the order of probabilities")
    probabilities: list[list[float]] | None = None
    warnings: dict[str, list[RowWarningOut]] | None = Field(
        None,
        description="rows with a value outside what training saw, by row index; absent when "
        "every row is within it",
    )


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: StrictInt = Field(ge=1, le=MAX_NUMBER, description="How many synthetic rows")
    seed: Seed | None = Field(None, description="The same seed gives the same rows")


class GenerateOut(BaseModel):
    model: str
    version: int
    rows: list[dict[str, Any]]


class ForecastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[float] = Field(
        min_length=1, max_length=100_000, description="The series' recent values, oldest first"
    )


class ForecastOut(BaseModel):
    model: str
    version: int
    forecast: list[float]


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[dict[str, str]] | None = None
    limit: str | None = Field(None, description="429: the plan limit that was reached")
    resets_at: str | None = Field(None, description="429: when that limit resets (UTC)")


def model_schema(model: RegisteredModel, latest: ModelVersion | None) -> ModelSchema:
    return ModelSchema(
        name=model.name,
        task=model.task,
        target=model.target,
        input_schema=[ColumnOut(**c.to_json()) for c in (latest.columns if latest else ())],
        classes=None if latest is None or latest.classes is None else list(latest.classes),
    )


def summary(model: RegisteredModel) -> ModelSummary:
    return ModelSummary(
        name=model.name,
        task=model.task,
        target=model.target,
        latest_version=model.latest_version,
        created_at=model.created_at,
    )


def detail(
    model: RegisteredModel, versions: list[ModelVersion], aliases: dict[str, int] | None = None
) -> ModelDetail:
    latest = versions[-1] if versions else None
    return ModelDetail(
        **summary(model).model_dump(),
        description=model.description,
        tags=model.tags,
        aliases=aliases or {},
        input_schema=[ColumnOut(**c.to_json()) for c in (latest.columns if latest else ())],
        classes=None if latest is None or latest.classes is None else list(latest.classes),
        versions=[
            VersionOut(
                version=v.number,
                algorithm=v.algorithm,
                metrics=v.metrics,
                created_at=v.created_at,
                n_training_rows=v.lineage.n_rows,
                data_sha256=v.lineage.data_sha256,
                artifact_sha256=v.artifact.sha256,
                archived=v.archived_at is not None,
                trained_by=v.lineage.trained_by,
                description=v.description,
                tags=v.tags,
                library_versions=v.library_versions,
            )
            for v in versions
        ],
    )
