"""The calls each side of a rollout answered, counted in this process and written to the
database every second (a row per rollout and side per flush), so that every worker and replica
adds to the same totals: calls, failures, and latency in buckets for the p99."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mlgate.periodic import Periodic
from mlgate.rollouts.model import LATENCY_BOUNDS, SideCounts, bucket_of
from mlgate.uow import UnitOfWork


class RolloutTally:
    def __init__(self, uow: Callable[[], UnitOfWork], *, interval: float = 1.0) -> None:
        self._uow = uow
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str], list[int]] = {}  # calls, failed, then buckets
        self._loop = Periodic("mlgate-rollouts", self.flush, interval)

    def count(self, rollout_id: int, side: str, latency_ms: float, *, failed: bool) -> None:
        with self._lock:
            into = self._counts.get((rollout_id, side))
            if into is None:
                into = self._counts[(rollout_id, side)] = [0] * (2 + len(LATENCY_BOUNDS))
            into[0] += 1
            into[1] += failed
            into[2 + bucket_of(latency_ms)] += 1

    def flush(self) -> int:
        with self._lock:
            taken, self._counts = self._counts, {}
        rows = [(rollout_id, side, SideCounts(c[0], c[1], tuple(c[2:])))
                for (rollout_id, side), c in taken.items()]  # fmt: skip
        if rows:
            with self._uow() as uow:
                uow.rollouts.add_counts(rows)
                uow.commit()
        return len(rows)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
