"""Hyperparameter search spaces, declared as data so that they can be shown and sampled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Trial(Protocol):
    """What a space needs from an optimiser's trial (Optuna's Trial has exactly these)."""

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def sample(self, trial: Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def __str__(self) -> str:
        return f"int {self.low}..{self.high}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def sample(self, trial: Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def __str__(self) -> str:
        return f"float {self.low:g}..{self.high:g}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def sample(self, trial: Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def __str__(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


Space = IntRange | FloatRange | Choice


def sample(space: dict[str, Space], trial: Trial) -> dict[str, Any]:
    return {name: dist.sample(trial, name) for name, dist in space.items()}
