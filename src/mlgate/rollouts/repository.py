"""What rollouts need from storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mlgate.rollouts.model import Rollout, SideCounts


class RolloutRepository(Protocol):
    def add(self, rollout: Rollout) -> Rollout: ...

    def get(self, rollout_id: int) -> Rollout | None: ...

    def of_model(self, model: str) -> list[Rollout]: ...

    def running(self) -> list[Rollout]: ...

    def save(self, rollout: Rollout) -> None: ...

    def add_counts(self, rows: Sequence[tuple[int, str, SideCounts]]) -> None: ...

    def counts(self, rollout_id: int) -> dict[str, SideCounts]: ...
