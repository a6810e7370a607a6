"""A shadow rollout's copies: a share of the alias's calls, once answered, is scored again by
the candidate on a thread of its own, off the request's path.

The caller never waits: `offer` puts the call in a bounded queue and returns; when the queue
is full the copy is skipped and counted, never queued behind. Nothing the shadow does is metered
to the consumer, and its answer goes nowhere but the rollout's record: per copied call, the
candidate's predictions, how many rows agree with the incumbent's, the difference of their
scores, its latency and any failure (rollouts/tally.py counts the side; the pairs are written
to the database every second)."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.monitoring.service import same_label
from mlgate.periodic import Periodic
from mlgate.registry.model import ModelVersion
from mlgate.rollouts.model import Rollout, ShadowPair
from mlgate.rollouts.tally import RolloutTally
from mlgate.serving.predictors import PredictorCache, Scores
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    from mlgate.serving.fastpath import Rows

log = logging.getLogger("mlgate.rollouts")
CAPACITY = 64  # copied calls waiting for the candidate; past it they are skipped

Resolve = Callable[[str, int | None, str | None], ModelVersion]
_STOP = object()


class ShadowScorer:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        predictors: PredictorCache,
        resolve: Resolve,
        tally: RolloutTally,
        clock: Callable[[], datetime],
        *,
        capacity: int = CAPACITY,
        interval: float = 1.0,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._uow = uow
        self._predictors = predictors
        self._resolve = resolve
        self._tally = tally
        self._clock = clock
        self._draw = draw
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._pairs: list[ShadowPair] = []
        self._worker: threading.Thread | None = None
        self._writer = Periodic("mlgate-shadow-log", self.flush, interval)

    def offer(self, rollout: Rollout, request_id: str, rows: Rows, answered: Scores) -> bool:
        """Copy the call to the candidate if it is drawn and there is room; True when it was."""
        if self._draw() >= rollout.share:
            return False
        self._start_worker()
        try:
            self._queue.put_nowait((rollout, request_id, rows, answered, self._clock()))
        except queue.Full:
            self._tally.count(rollout.id or 0, "skipped", 0.0, failed=False)
            return False
        return True

    def drain(self) -> None:
        """Wait until every copied call has been scored (tests, and stop)."""
        self._queue.join()

    def flush(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        if pairs:
            with self._uow() as uow:
                uow.rollouts.add_shadow(pairs)
                uow.commit()
        return len(pairs)

    def start(self) -> None:
        self._writer.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join(timeout=10)
            self._worker = None
        self._writer.stop()

    def _start_worker(self) -> None:
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="mlgate-shadow",
                                                    daemon=True)  # fmt: skip
                    self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._score(*item)
            except Exception:  # a broken copy never stops the next one
                log.exception("shadow scoring failed")
            finally:
                self._queue.task_done()

    def _score(
        self, rollout: Rollout, request_id: str, rows: Rows, answered: Scores, at: datetime
    ) -> None:
        started = time.perf_counter()
        try:
            version = self._resolve(rollout.model, rollout.candidate, None)
            scores = self._predictors.get(version).score(rows)
        except Exception as exc:
            self._tally.count(rollout.id or 0, "candidate",
                              (time.perf_counter() - started) * 1000, failed=True)  # fmt: skip
            pair = ShadowPair(rollout.id or 0, request_id, at, len(answered.predictions), None,
                              None, None, f"{type(exc).__name__}: {exc}"[:500])  # fmt: skip
        else:
            self._tally.count(rollout.id or 0, "candidate",
                              (time.perf_counter() - started) * 1000, failed=False)  # fmt: skip
            pair = compare(rollout.id or 0, request_id, at, answered, scores,
                           regression=version.task == "regression")  # fmt: skip
        with self._lock:
            self._pairs.append(pair)


def compare(
    rollout_id: int,
    request_id: str,
    at: datetime,
    incumbent: Scores,
    candidate: Scores,
    *,
    regression: bool,
) -> ShadowPair:
    """The pair of answers: agreement of labels, difference of scores."""
    n = len(incumbent.predictions)
    if regression:
        a = np.asarray(incumbent.predictions, dtype="float64")
        b = np.asarray(candidate.predictions, dtype="float64")
        return ShadowPair(rollout_id, request_id, at, n, None, float(np.abs(a - b).sum()),
                          [float(v) for v in b])  # fmt: skip
    agreed = sum(same_label(x, y) for x, y in zip(incumbent.predictions, candidate.predictions,
                                                  strict=True))  # fmt: skip
    diff = None
    if incumbent.probabilities is not None and candidate.probabilities is not None:
        p = np.asarray(incumbent.probabilities, dtype="float64")
        q = np.asarray(candidate.probabilities, dtype="float64")
        if p.shape == q.shape:
            diff = float(np.abs(p - q).mean(axis=1).sum())
    return ShadowPair(rollout_id, request_id, at, n, agreed, diff,
                      [_plain(v) for v in candidate.predictions])  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
