"""What a model card knows: the fields people edit, each slice's metrics, and the card itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SMALL_SLICE = 30  # rows: fewer, and a slice's numbers are flagged as too few to lean on
MAX_SLICES = 100  # distinct values a slice column may have: more, and it is refused (an id)
QUANTILE_BINS = 4  # a numeric slice column is cut into this many quantile bins (quartiles)
EDITABLE = ("intended_use", "owner")


@dataclass(frozen=True)
class Slice:
    """One slice of the holdout: its rows' metrics, their 95% bootstrap intervals, and each
    metric's gap to the whole holdout (slice − whole)."""

    column: str
    value: str  # the category, or a quantile bin written as an interval
    n_rows: int
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    gaps: dict[str, float]
    small: bool  # fewer than SMALL_SLICE rows
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "n_rows": self.n_rows,
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "gaps": self.gaps,
            "small": self.small,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slice:
        return cls(
            column=data["column"],
            value=data["value"],
            n_rows=int(data["n_rows"]),
            metrics=dict(data["metrics"]),
            intervals={k: (float(v[0]), float(v[1])) for k, v in data["intervals"].items()},
            gaps=dict(data["gaps"]),
            small=bool(data["small"]),
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True)
class SliceSet:
    """The slices of one column; `binned`: a numeric column cut into quantile bins."""

    column: str
    binned: bool
    slices: tuple[Slice, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "binned": f"{QUANTILE_BINS} quantile bins" if self.binned else None,
            "slices": [s.to_json() for s in self.slices],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SliceSet:
        return cls(
            column=data["column"],
            binned=bool(data.get("binned")),
            slices=tuple(Slice.from_json(s) for s in data["slices"]),
        )


@dataclass(frozen=True)
class CardRecord:
    """What a version's card stores beyond the version itself: the edited fields, the slice
    columns asked for and their metrics on the version's holdout (`whole`: the same metrics on
    every holdout row, which the gaps are taken from)."""

    model_name: str
    number: int
    intended_use: str = ""
    owner: str = ""
    slices: tuple[SliceSet, ...] = ()
    whole: dict[str, float] = field(default_factory=dict)
    updated_at: datetime | None = None
    updated_by: str = ""

    def slices_json(self) -> dict[str, Any]:
        return {"whole": self.whole, "columns": [s.to_json() for s in self.slices]}

    @staticmethod
    def slices_from_json(
        data: dict[str, Any] | None,
    ) -> tuple[tuple[SliceSet, ...], dict[str, float]]:
        if not data:
            return (), {}
        return tuple(SliceSet.from_json(s) for s in data.get("columns", [])), dict(
            data.get("whole", {})
        )


@dataclass(frozen=True)
class ModelCard:
    """A version's model card, assembled from what mlgate records of it (see cards/service.py's
    `build_card`); `to_json` is the API's and the CLI's --format json."""

    ref: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.data
