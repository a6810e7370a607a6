"""Moving metered usage from the counters to the database ledger, and back into the counters
after a restart or a Redis flush."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mlgate.errors import ConcurrentWrite
from mlgate.periodic import Periodic
from mlgate.plans.limiter import Counters, bucket
from mlgate.plans.metering import UsageTraces
from mlgate.plans.service import active_subscription, month_bounds, spend_nanos
from mlgate.uow import UnitOfWork


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
        traces: UsageTraces | None = None,
    ) -> None:
        self._counters = counters
        self._traces = traces
        self._uow = uow
        self._clock = clock
        self._loop = Periodic("mlgate-usage", self.flush, interval)

    def flush(self) -> int:
        """Write what is waiting; returns the number of batches handled."""
        handled = 0
        for batch, aggregates in self._counters.drain():
            try:
                with self._uow() as uow:
                    uow.usage.add_batch(batch, aggregates, self._clock())
                    uow.commit()
            except ConcurrentWrite:
                pass  # another process wrote this batch first
            self._counters.drained(batch)
            handled += 1
        traced = self._traces.take() if self._traces is not None else []
        if traced:  # exemplars beside the ledger: lost with a crash, never worth a retry
            with self._uow() as uow:
                uow.usage.add_traces(traced)
                uow.commit()
        return handled

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        """Stop the thread and write what is left."""
        self._loop.stop()


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
    seeds |= _spend_seeds(uow, now, month_start, month_end)
    if seeds:
        counters.seed(seeds)
    return len(seeds)


def _spend_seeds(
    uow: Callable[[], UnitOfWork], now: datetime, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """This month's spend of each consumer with a priced plan, in nanos, for its spend cap."""

    with uow() as u:
        rows = u.usage.query(since=start, until=end, by="month")
    by_account: dict[str, list[Any]] = {}
    for r in rows:
        if r.account.startswith("consumer:") and r.status < 400:
            by_account.setdefault(r.account, []).append(r)
    name, _reset, length = bucket("month", now)
    seeds = {}
    for account, mine in by_account.items():
        found = active_subscription(uow(), account.removeprefix("consumer:"), now)
        if found is not None and found[1].priced:
            seeds[f"{account}:spend:month:{name}"] = (spend_nanos(mine, found[1]), length + 60)
    return seeds
