"""Quota thresholds announced once each: four workers (each its own Gate and Redis connection)
and 64 concurrent clients count one consumer's calls; each threshold of each quota is crossed by
exactly one call, recorded once in PostgreSQL, written once to the audit log, and delivered once,
signed, to the consumer's webhook and to the operator's, received here over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlgate.access import accounts
from mlgate.access.model import AuditQuery, Principal, Target
from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.monitoring import webhook
from mlgate.outbound.addresses import AllowList
from mlgate.outbound.client import Outbound
from mlgate.plans import service
from mlgate.plans.enforce import Gate
from mlgate.plans.redis_counters import RedisCounters
from mlgate.plans.thresholds import Notifier, crossings
from tests.conftest import make_services
from tests.fakes import FixedClock

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OPERATOR_SECRET = "operator signing secret"
LOCAL = Outbound(AllowList.parse("127.0.0.1"))  # the receiver below runs here


class Hooks:
    """Receives webhook deliveries: (path, headers, raw body)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.got.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    made = Hooks()
    yield made
    made.close()


def test_each_threshold_is_announced_once_across_workers(
    postgres_url: str, redis_url: tuple[str, str], hooks: Hooks, tmp_path: Path
) -> None:
    services = make_services(tmp_path / "home", postgres_url)
    try:
        accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=NOW)
        plan = service.make_plan("metered", NOW, rows_per_month=1000, requests_per_day=200,
                                 overage=True, thresholds=[50, 80, 100])  # fmt: skip
        service.create_plan(services.uow(), plan, by=None)
        service.subscribe(services.uow(), by=None, consumer="acme", plan="metered", now=NOW)
        secret = service.set_consumer_webhook(
            services.uow(), by=None, consumer="acme", url=f"{hooks.base}/acme", own=set(),
            now=NOW, outbound=LOCAL,
        )  # fmt: skip
        assert secret
        principal = Principal("consumer", "acme", False, frozenset({"predict"}), key_prefix="k")
        version = SimpleNamespace(model_name="churn", number=1, retire_at=None)
        workers = []
        for _ in range(4):
            notifier = Notifier(services.uow, operator_url=f"{hooks.base}/operator",
                                operator_secret=OPERATOR_SECRET, outbound=LOCAL)  # fmt: skip
            counters = RedisCounters(redis_url[0], prefix=redis_url[1])
            gate = Gate(counters, services.uow, FixedClock(NOW), on_crossings=notifier.offer)
            workers.append((gate, notifier, counters))

        def client(k: int) -> None:
            gate = workers[k % 4][0]
            for _ in range(4):  # 64 clients x 4 calls x 5 rows = 1,280 rows, 256 requests
                admission = gate.open(principal)
                gate.admit(admission, Target("churn"), 5, None)
                gate.settle(admission, version)  # type: ignore[arg-type]

        threads = [threading.Thread(target=client, args=(k,)) for k in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _, notifier, counters in workers:
            notifier.drain()
            notifier.stop()
            counters.close()
        # rows per month: 50%, 80%, 100% of 1,000; requests per day: the same of 200.
        with services.uow() as uow:
            recorded = uow.plans.crossings("acme", NOW.replace(day=1))
        assert sorted((c.limit, c.threshold) for c in recorded) == sorted(
            (limit, t) for limit in ("rows per month", "requests per day") for t in (50, 80, 100)
        )
        by_path: dict[str, list[dict[str, Any]]] = {}
        for path, headers, body in hooks.got:
            key = OPERATOR_SECRET if path == "/operator" else secret
            assert webhook.verify(key, headers["x-mlgate-timestamp"], body,
                                  headers["x-mlgate-signature"])  # fmt: skip
            by_path.setdefault(path, []).append(json.loads(body))
        assert len(by_path["/acme"]) == len(by_path["/operator"]) == 6
        rows_80 = next(b for b in by_path["/acme"]
                       if b["limit"] == "rows per month" and b["threshold"] == 80)  # fmt: skip
        assert rows_80["used"] == 800 and rows_80["of"] == 1000 and rows_80["window"] == "2026-11"
        events = services.uow()
        from mlgate.access import audit

        logged = audit.query(events, AuditQuery(action="quota.threshold"))
        assert len(logged) == 6
        # A count reseeded after a restart could pass a level again: it is not announced twice.
        again = Notifier(services.uow)
        assert again.handle(recorded[0]) is False
    finally:
        services.close()


def test_crossings_are_found_by_the_counts_before_and_after() -> None:
    from mlgate.plans.limiter import charges
    from mlgate.plans.model import Limit

    limits = [Limit("rows", "month", 100, hard=False), Limit("requests", "minute", 5, hard=True)]
    charged = charges("consumer:acme", limits, 30, NOW)
    found = crossings("acme", charged, [85, 3], (50, 80, 100), 0, NOW)
    assert [(c.limit, c.threshold) for c in found] == [("rows per month", 80)]  # 55 -> 85
    assert crossings("acme", charged, [110, 3], (80, 100), 10, NOW)[-1].threshold == 100


def test_a_webhook_is_http_and_not_the_server_itself(services: Services) -> None:
    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=NOW)
    for url, words in (("ftp://hooks.example/x", r"http\(s\)"),
                       ("http://93.184.215.14:8000/hook", "this server")):  # fmt: skip
        with pytest.raises(InvalidInput, match=words):
            service.set_consumer_webhook(services.uow(), by=None, consumer="acme", url=url,
                                         own={"93.184.215.14:8000"}, now=NOW)  # fmt: skip
