"""Moving metered usage from the counters to the database ledger, and back into the counters
after a restart or a Redis flush."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mlgate.plans.limiter import Counters, bucket
from mlgate.plans.service import month_bounds
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.plans")


class UsageFlusher:
    """Every `interval` seconds (and once more on stop), each batch of metered aggregates is
    written with its id in one transaction, then forgotten by the counters: a batch written
    twice (two flushers, or a crash between the two steps) is written once."""

    def __init__(
        self,
        counters: Counters,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        interval: float = 1.0,
    ) -> None:
        self._counters = counters
        self._uow = uow
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        """Write what is waiting; returns the number of batches handled."""
        handled = 0
        for batch, aggregates in self._counters.drain():
            try:
                with self._uow() as uow:
                    uow.usage.add_batch(batch, aggregates, self._clock())
                    uow.commit()
            except sa.exc.IntegrityError:
                pass  # another process wrote this batch first
            self._counters.drained(batch)
            handled += 1
        return handled

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlgate-usage", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # keep metering; the next round retries what is left
                log.exception("usage flush failed; retrying in %.1f s", self._interval)


def reconcile(counters: Counters, uow: Callable[[], UnitOfWork], now: datetime) -> int:
    """Seed this month's and today's quota counters from the ledger where the counters lack
    them (a new process, or Redis restarted empty). Returns how many counters were seeded."""
    month_start, month_end = month_bounds(now.strftime("%Y-%m"))
    day_start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    seeds: dict[str, tuple[int, int]] = {}
    with uow() as u:
        monthly = u.usage.totals(month_start, month_end)
        daily = u.usage.totals(day_start, day_start + timedelta(days=1))
    for window, totals in (("month", monthly), ("day", daily)):
        name, _reset, length = bucket(window, now)  # type: ignore[arg-type]
        for account, (requests, rows) in totals.items():
            seeds[f"{account}:requests:{window}:{name}"] = (requests, length + 60)
            seeds[f"{account}:rows:{window}:{name}"] = (rows, length + 60)
    if seeds:
        counters.seed(seeds)
    return len(seeds)
