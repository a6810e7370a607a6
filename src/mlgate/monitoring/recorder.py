"""Prediction logging off the hot path: a request is sampled by one random draw against the
model's rate (kept a second), and a sampled one is a reference appended to a bounded queue.
A thread turns the queued rows into JSON and writes them to the metadata database each second,
in one transaction per round. A full queue drops entries (and counts them) instead of slowing
the answer."""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlgate.caching import TtlCache
from mlgate.monitoring.model import LoggedPrediction, MonitorSettings
from mlgate.periodic import Periodic
from mlgate.schema import Table
from mlgate.tracing import current
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.monitoring")
CAPACITY = 10_000  # queued requests
ROLLOUT_LOGGED_PER_SECOND = 20  # a rollout's calls logged beyond the sample rate, per second


class PredictionRecorder:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        interval: float = 1.0,
        capacity: int = CAPACITY,
        draw: Callable[[], float] = random.random,
        rollout_per_second: int = ROLLOUT_LOGGED_PER_SECOND,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._capacity = capacity
        self._draw = draw
        self._settings: TtlCache[str, MonitorSettings] = TtlCache()
        self._queue: deque[tuple[Any, ...]] = deque()
        self._loop = Periodic("mlgate-log", self.flush, interval)
        self.dropped = 0
        self._second, self._spent = 0, 0  # rollout calls logged in this second
        self.rollout_per_second = rollout_per_second

    def settings(self, model: str) -> MonitorSettings:
        return self._settings.get(model, lambda: self._load(model))

    def forget(self) -> None:
        """Read the settings again (this process just changed them)."""
        self._settings.clear()

    def offer(
        self,
        model: str,
        version: int,
        account: str,
        request_id: str,
        rows: pd.DataFrame | Table,
        predictions: list[Any],
        *,
        rollout: bool = False,
    ) -> bool:
        """Queue the request if it is sampled; True when it was. A `rollout`'s call is logged
        whatever the rate, up to `rollout_per_second` calls a second in this process (its
        test wants every call it can get labels for; past that, logging would cost the
        answers more than the test gains)."""
        settings = self.settings(model)
        rate = settings.sample_rate
        sampled = rate > 0.0 and (rate >= 1.0 or self._draw() < rate)
        if not sampled and not (rollout and self._rollout_budget()):
            return False
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return False
        call = current()  # a traced call's trace id goes with its row
        trace_id = call.trace_hex if call is not None and call.sampled else None
        self._queue.append(
            (request_id, model, version, account, self._clock(), rows, predictions,
             settings.exclude_columns, trace_id)
        )  # fmt: skip
        return True

    def _rollout_budget(self) -> bool:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._spent = second, 0
        if self._spent >= self.rollout_per_second:
            return False
        self._spent += 1
        return True

    def flush(self) -> int:
        """Write what is queued; returns how many requests were written."""
        entries = []
        while self._queue:
            request_id, model, version, account, at, rows, predictions, excluded, trace_id = (
                self._queue.popleft()
            )
            entries.append(
                LoggedPrediction(
                    request_id, model, version, account, at, _columns(rows, excluded),
                    [_plain(p) for p in predictions], trace_id,
                )
            )  # fmt: skip
        if entries:
            with self._uow() as uow:
                uow.monitoring.log(entries)
                uow.commit()
        return len(entries)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        """Stop the writer and write what is queued."""
        self._loop.stop()

    def _load(self, model: str) -> MonitorSettings:
        with self._uow() as uow:
            return uow.monitoring.settings(model) or MonitorSettings()


def _columns(rows: pd.DataFrame | Table, excluded: Sequence[str]) -> dict[str, list[Any]]:
    names = list(rows.data) if isinstance(rows, Table) else list(rows.columns)
    return {
        str(name): [_plain(v) for v in np.asarray(rows[name]).tolist()]
        for name in names
        if name not in excluded
    }


def _plain(value: Any) -> Any:
    """A JSON value: NaN and NaT become null, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if value is pd.NaT:
        return None
    return value
