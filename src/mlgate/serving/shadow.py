"""A shadow rollout's copies: a share of the alias's calls, once answered, is scored again by
the candidate on a thread of its own, off the request's path.

The caller never waits: `offer` puts the call in a bounded queue and returns; when the queue
is full the copy is skipped and counted, never queued behind. The thread lets copies gather for
LINGER seconds and scores them BATCH rows at a time in one call of the candidate: a model scores
100 rows for little more than 1, so the shadow takes little of the CPU the answers need.
Nothing the shadow does is metered to the consumer, and its answer goes
nowhere but the rollout's record: counted per side (rollouts/tally.py: calls, failures,
latency, rows compared, rows agreeing, the difference of scores), and, for the calls the
prediction log kept (those labels can come back for), the candidate's predictions, written to
the database every second."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlgate.periodic import Periodic
from mlgate.registry.model import ModelVersion, same_label
from mlgate.rollouts.model import Rollout, ShadowPair
from mlgate.rollouts.tally import RolloutTally
from mlgate.runtime.predictors import PredictorCache, Scores
from mlgate.runtime.scorers import SMALL_BATCH
from mlgate.schema import Table
from mlgate.uow import UnitOfWork

if TYPE_CHECKING:
    from mlgate.runtime.fastpath import Rows

log = logging.getLogger("mlgate.rollouts")
CAPACITY = 256  # copied calls waiting for the candidate; past it they are skipped
BATCH = SMALL_BATCH  # rows scored in one call: on one model thread, leaving the answers theirs
LINGER = 0.02  # seconds a batch waits for more copies: one model call for many, off the path
KEPT_FAILURES = 5  # failed copies recorded with their error, per flush

Resolve = Callable[[str, int | None, str | None], ModelVersion]


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
        self._capacity = capacity
        self._pending: deque[Any] = deque()  # appends and pops are atomic: no lock to take
        self._busy = False  # the worker holds copies it took
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[ShadowPair] = []
        self._worker: threading.Thread | None = None
        self._writer = Periodic("mlgate-shadow-log", self.flush, interval)

    def offer(
        self, rollout: Rollout, request_id: str, rows: Rows, answered: Scores, *, keep: bool
    ) -> bool:
        """Copy the call to the candidate if it is drawn and there is room; True when it was.
        `keep`: the call was logged, so its pair is kept for the labels."""
        if self._draw() >= rollout.share:
            return False
        if self._worker is None:
            self._start_worker()
        if len(self._pending) >= self._capacity:
            self._tally.count(rollout.id or 0, "skipped", 0.0, failed=False)
            return False
        self._pending.append((rollout, request_id, rows, answered, self._clock(), keep))
        return True

    def drain(self) -> None:
        """Wait until every copied call has been scored (tests, and stop)."""
        while self._worker is not None and (self._pending or self._busy):
            time.sleep(0.005)

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
            self._stopping.set()
            self._worker.join(timeout=10)
            self._worker = None
        self._writer.stop()

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._stopping.clear()
                self._worker = threading.Thread(target=self._work, name="mlgate-shadow",
                                                daemon=True)  # fmt: skip
                self._worker.start()

    def _work(self) -> None:
        """Every LINGER seconds, what has gathered, BATCH rows at a time. The worker polls
        rather than waits on a condition: a waiting reader would be woken by every copy,
        taking the interpreter from the answers thousands of times a second."""
        while True:
            if len(self._pending) < BATCH:  # let a batch gather, unless stopping
                if self._stopping.is_set() and not self._pending:
                    return
                if not self._stopping.is_set():
                    time.sleep(LINGER)
            if not self._pending:
                continue
            self._busy = True
            items, rows = [], 0
            while self._pending and rows < BATCH:
                items.append(self._pending.popleft())
                rows += len(items[-1][3].predictions)
            try:
                by_rollout: dict[int, list[Any]] = {}
                for item in items:
                    by_rollout.setdefault(item[0].id or 0, []).append(item)
                for group in by_rollout.values():
                    self._score(group)
            except Exception:  # a broken copy never stops the next one
                log.exception("shadow scoring failed")
            finally:
                self._busy = False

    def _score(self, group: list[Any]) -> None:
        """One rollout's queued copies, scored by its candidate in one call."""
        rollout: Rollout = group[0][0]
        started = time.perf_counter()
        try:
            version = self._resolve(rollout.model, rollout.candidate, None)
            scores = self._predictors.get(version).score(_joined([item[2] for item in group]))
        except Exception as exc:
            share = (time.perf_counter() - started) * 1000 / len(group)
            error = f"{type(exc).__name__}: {exc}"[:500]
            kept = 0
            for _, request_id, _, answered, at, keep in group:
                self._tally.count(rollout.id or 0, "candidate", share, failed=True)
                if keep or kept < KEPT_FAILURES:
                    kept += 1
                    self._keep(
                        ShadowPair(
                            rollout.id or 0,
                            request_id,
                            at,
                            len(answered.predictions),
                            None,
                            None,
                            None,
                            error,
                        )
                    )
            return
        share = (time.perf_counter() - started) * 1000 / len(group)  # each copy's latency
        regression = version.task == "regression"
        incumbent = [p for item in group for p in item[3].predictions]
        agreed, diffs = _agreement(group, incumbent, scores, regression=regression)
        self._tally.count(
            rollout.id or 0, "candidate", share, failed=False, calls=len(group),
            compared=len(incumbent), agreed=int(agreed.sum()), score_diff=float(diffs.sum()),
        )  # fmt: skip
        offset = 0
        for _, request_id, _, answered, at, keep in group:
            n = len(answered.predictions)
            if keep:  # the prediction log kept the call: labels can come back for it
                mine = scores.predictions[offset : offset + n]
                self._keep(ShadowPair(
                    rollout.id or 0, request_id, at, n,
                    None if regression else int(agreed[offset : offset + n].sum()),
                    float(diffs[offset : offset + n].sum()), [_plain(v) for v in mine],
                ))  # fmt: skip
            offset += n

    def _keep(self, pair: ShadowPair) -> None:
        with self._lock:
            self._pairs.append(pair)


def _agreement(
    group: list[Any], incumbent: list[Any], candidate: Scores, *, regression: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether both sides gave the same label, and the difference of their scores
    (|Δ prediction| for a regression; the mean |Δ probability| of a classifier's classes)."""
    theirs = candidate.predictions
    if regression:
        a = np.asarray(incumbent, dtype="float64")
        diff = np.abs(a - np.asarray(theirs, dtype="float64"))
        return np.zeros(len(a), dtype=bool), diff
    mine_arr, theirs_arr = np.asarray(incumbent), np.asarray(theirs)
    if mine_arr.dtype.kind == theirs_arr.dtype.kind and mine_arr.dtype.kind in "iufbU":
        agreed = mine_arr == theirs_arr
    else:
        agreed = np.array([same_label(x, y) for x, y in zip(incumbent, theirs, strict=True)])
    diff = np.zeros(len(incumbent))
    answered = [item[3].probabilities for item in group]
    if candidate.probabilities is not None and all(p is not None for p in answered):
        p = np.asarray([row for rows in answered for row in rows], dtype="float64")
        q = np.asarray(candidate.probabilities, dtype="float64")
        if p.shape == q.shape:
            diff = np.abs(p - q).mean(axis=1)
    return agreed, diff


def _joined(parts: list[Rows]) -> Rows:
    """The copies' rows as one table (or frame), in order."""
    if len(parts) == 1:
        return parts[0]
    tables = [p for p in parts if isinstance(p, Table)]
    if len(tables) < len(parts):
        frames = [p.to_frame() if isinstance(p, Table) else p for p in parts]
        return pd.concat(frames, ignore_index=True)
    n_rows = sum(t.n_rows for t in tables)
    names = tables[0].names
    if names and all(t.matrix is not None and t.names == names for t in tables):
        matrix = np.vstack([t.matrix for t in tables if t.matrix is not None])
        return Table({n: matrix[:, i] for i, n in enumerate(names)}, n_rows, matrix, names)
    columns = list(tables[0].data)
    return Table({n: np.concatenate([t.data[n] for t in tables]) for n in columns}, n_rows)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
