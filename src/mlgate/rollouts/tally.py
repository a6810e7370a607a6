"""The calls each side of a rollout answered, counted in this process and written to the
database every second (a row per rollout and side per flush), so that every worker and replica
adds to the same totals: calls, failures, and latency in buckets for the p99."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlgate.periodic import Periodic
from mlgate.rollouts.model import LATENCY_BOUNDS, SideCounts, bucket_of
from mlgate.uow import UnitOfWork

_FIRST_BUCKET = 5


class RolloutTally:
    def __init__(self, uow: Callable[[], UnitOfWork], *, interval: float = 1.0) -> None:
        self._uow = uow
        self._lock = threading.Lock()
        # calls, failed, compared, agreed, score difference, then the latency buckets
        self._counts: dict[tuple[int, str], list[Any]] = {}
        self._loop = Periodic("mlgate-rollouts", self.flush, interval)

    def count(
        self,
        rollout_id: int,
        side: str,
        latency_ms: float,
        *,
        failed: bool,
        calls: int = 1,
        compared: int = 0,
        agreed: int = 0,
        score_diff: float = 0.0,
    ) -> None:
        """A call a side answered (or `calls` a shadow scored together, each taking
        `latency_ms`, with the rows they compared)."""
        with self._lock:
            into = self._counts.get((rollout_id, side))
            if into is None:
                into = self._counts[(rollout_id, side)] = [0] * (
                    _FIRST_BUCKET + len(LATENCY_BOUNDS)
                )
            into[0] += calls
            into[1] += calls if failed else 0
            into[2] += compared
            into[3] += agreed
            into[4] += score_diff
            into[_FIRST_BUCKET + bucket_of(latency_ms)] += calls

    def flush(self) -> int:
        with self._lock:
            taken, self._counts = self._counts, {}
        rows = [
            (rollout_id, side, SideCounts(
                int(c[0]), int(c[1]), tuple(int(v) for v in c[_FIRST_BUCKET:]), int(c[2]),
                int(c[3]), float(c[4])))
            for (rollout_id, side), c in taken.items()
        ]  # fmt: skip
        if rows:
            with self._uow() as uow:
                uow.rollouts.add_counts(rows)
                uow.commit()
        return len(rows)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
