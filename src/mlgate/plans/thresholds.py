"""Quota thresholds: a consumer told when its use of a quota (or of its spend cap) reaches a
plan's percents (80 and 100 by default), once per threshold per window.

Detection is exact and costs nothing extra on the predict path: a call is counted atomically
(plans/limiter.py, the Redis script), so exactly one call in all workers and replicas sees a
window's count pass each threshold's level, from `before < level` to `after >= level`. That call
hands the crossing to this process's `Notifier` (a queue; never waited for). The notifier records
it in the database under a unique key (consumer, limit, window, threshold), so a count reseeded
after a restart cannot announce it twice, and only then writes the audit log and sends the
signed webhooks: to the consumer's URL and to the operator's (MLGATE_OPERATOR_WEBHOOK_URL). The
portal lists the month's crossings.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mlgate.access.audit import records_its_own
from mlgate.outbound.client import Outbound
from mlgate.plans.limiter import Charge
from mlgate.plans.model import NANOS, Crossing
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.plans")
QUOTA_WINDOWS = ("day", "month")
CAPACITY = 10_000


def crossings(
    consumer: str,
    charged: Sequence[Charge],
    after: Sequence[int],
    thresholds: Sequence[int],
    overage: int,
    now: datetime,
) -> list[Crossing]:
    """Pure: the thresholds this call's counting passed (quotas and the spend cap only)."""
    out = []
    for charge, used in zip(charged, after, strict=True):
        if charge.limit.window not in QUOTA_WINDOWS:
            continue
        before = used - charge.amount_with(overage)
        window = charge.key.rsplit(":", 1)[-1]
        for threshold in thresholds:
            level = math.ceil(charge.limit.limit * threshold / 100)
            if before < level <= used:
                out.append(Crossing(consumer, charge.limit.name, window, threshold, used,
                                    charge.limit.limit, now))  # fmt: skip
    return out


def describe(crossing: Crossing) -> dict[str, Any]:
    """The webhook's body and the audit event's detail."""
    spend = crossing.limit.startswith("spend")
    scale = NANOS if spend else 1
    used = crossing.used / scale if spend else crossing.used
    limit = crossing.limit_value / scale if spend else crossing.limit_value
    return {
        "type": "quota.threshold",
        "consumer": crossing.consumer,
        "limit": crossing.limit,
        "window": crossing.window,
        "threshold": crossing.threshold,
        "used": round(used, 6) if spend else used,
        "of": round(limit, 2) if spend else limit,
        "at": crossing.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Notifier:
    """Records and announces crossings on a thread of its own."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        *,
        operator_url: str | None = None,
        operator_secret: str = "",
        deliver: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        from functools import partial

        from mlgate.monitoring import webhook

        self._uow = uow
        self._operator = (operator_url, operator_secret) if operator_url else None
        self._deliver = deliver or partial(webhook.deliver, outbound=outbound or Outbound())
        self._queue: queue.Queue[Crossing | None] = queue.Queue(CAPACITY)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def offer(self, found: list[Crossing]) -> None:
        """From the predict path: queue them (a full queue drops, and counts, never waits)."""
        if not found:
            return
        self._ensure_started()
        for crossing in found:
            try:
                self._queue.put_nowait(crossing)
            except queue.Full:
                self.dropped += 1

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued crossing is handled (tests, shutdown)."""
        self._queue.join()

    @records_its_own
    def handle(self, crossing: Crossing) -> bool:
        """Record it once; the first to record it announces it. False for a repeat."""
        from mlgate.access import audit

        with self._uow() as uow:
            new = uow.plans.add_crossing(crossing)
            hook = uow.plans.consumer_webhook(crossing.consumer)
            uow.commit()
        if not new:
            return False
        body = describe(crossing)
        deliveries = []
        if hook is not None:
            deliveries.append(self._deliver(hook[0], hook[1], body))
        if self._operator is not None:
            deliveries.append(self._deliver(self._operator[0], self._operator[1], body))
        audit.record(
            self._uow(), at=crossing.at, actor="mlgate", action="quota.threshold",
            target=f"consumer:{crossing.consumer}", address="", result="ok",
            detail={**body, "deliveries": deliveries},
        )  # fmt: skip
        return True

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mlgate-thresholds",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _run(self) -> None:
        while True:
            crossing = self._queue.get()
            try:
                if crossing is None:
                    return
                self.handle(crossing)
            except Exception:  # one bad delivery must not stop the next announcements
                log.exception("a threshold crossing could not be announced")
            finally:
                self._queue.task_done()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)
