"""Plans enforced by a real `mlgate serve --workers N` sharing one Redis: exact quotas under 64
concurrent clients, a worker killed mid-run, a restart, rate limits across workers, overage,
pinned versions with Sunset headers, and metered usage equal to what was served."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import (
    SERVERS,
    TOKEN,
    mlgate,
    quickstarted,
    redis_for_servers,
    running_server,
)

ROWS = demo.churn_frame(n_rows=60).drop(columns=[demo.ID_COLUMN, demo.TARGET])
ALL_ROWS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in ROWS.to_dict(orient="records")
]


def body(n: int = 1) -> dict[str, Any]:
    return {"rows": ALL_ROWS[:n]}


@pytest.fixture(scope="module")
def redis_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with redis_for_servers() as env:
        yield env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, redis_env: dict[str, str]) -> Path:
    home = tmp_path_factory.mktemp("plans") / "home"
    quickstarted(home)
    return home


def consumer_key(
    home: Path, env: dict[str, str], name: str, plan: str, *pins: str
) -> dict[str, str]:
    """A consumer on `plan`, granted churn, and a key of its own: the request headers. Made in
    this process, as `mlgate consumers create/subscribe`, `grants add` and `keys create` do
    (the server is what these tests are about, not the CLI)."""
    from mlgate.access import accounts, grants
    from mlgate.access.service import create_key
    from mlgate.plans import service as plans

    services = make_services(home)
    now = services.clock()
    try:
        accounts.create_consumer(services.uow(), by=None, name=name, description="", now=now)
        grants.add_grant(services.uow(), by=None, subject_kind="consumer", subject=name,
                         target="churn", role="consumer", now=now, actor="test")  # fmt: skip
        pinned = {m: int(v) for m, v in (p.split("=") for p in pins)}
        plans.subscribe(services.uow(), by=None, consumer=name, plan=plan, now=now, pins=pinned)
        _, token = create_key(services.uow(), services.server_secret, by=None,
                              owner_kind="consumer", owner=name, name=name, now=now)  # fmt: skip
    finally:
        services.close()
    return {"Authorization": f"Bearer {token}"}


def new_plan(home: Path, name: str, **settings: Any) -> None:
    """A plan, as `mlgate plans create` makes it."""
    from mlgate.plans import service as plans

    services = make_services(home)
    try:
        plans.create_plan(services.uow(), plans.make_plan(name, services.clock(), **settings),
                          by=None)  # fmt: skip
    finally:
        services.close()


@pytest.fixture(scope="module")
def shared(home: Path, redis_env: dict[str, str]) -> Iterator[str]:
    """One `mlgate serve --workers 2` for the tests that count without killing anything: each
    has a plan and a consumer of its own. (The test that kills a worker runs four of its own.)"""
    with running_server(home, "--workers", "2", **redis_env) as base:
        yield base


def hammer(
    base: str, headers: dict[str, str], sizes: list[int], clients: int = 64
) -> list[tuple[int, int]]:
    """Send one request per size from `clients` threads; (status, rows) of each answer, with
    status 0 for a connection that broke."""
    work = list(sizes)
    lock = threading.Lock()
    results: list[tuple[int, int]] = []

    def client() -> None:
        with http.Client(base_url=base, headers=headers, timeout=30) as web:
            while True:
                with lock:
                    if not work:
                        return
                    n = work.pop()
                try:
                    status = web.post("/v1/models/churn/predict", json=body(n)).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    results.append((status, n))

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    return results


def metered(home: Path, env: dict[str, str], consumer: str) -> tuple[int, int]:
    """(requests, rows) of the consumer's counted calls in the ledger."""
    from mlgate.plans import service
    from tests.conftest import make_services

    services = make_services(home)
    try:
        rows = service.usage(
            services.uow(), by=None, month=datetime.now(UTC).strftime("%Y-%m"),
            consumer=consumer, group="month",
        )  # fmt: skip
    finally:
        services.close()
    ok = [r for r in rows if r.status == 200]
    return sum(r.requests for r in ok), sum(r.rows for r in ok)


def workers_of(master: int) -> list[int]:
    """The uvicorn worker processes under a `mlgate serve --workers N`."""
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()]
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.mark.slow(
    reason="650 calls from 64 clients over four workers, one of them SIGKILLed, then a restart"
)
def test_a_requests_quota_is_exact_across_four_workers_even_when_one_dies(
    home: Path, redis_env: dict[str, str]
) -> None:
    env = redis_env
    new_plan(home, "five-hundred", requests_per_month=500)
    headers = consumer_key(home, env, "acme", "five-hundred")
    with running_server(home, "--workers", "4", **env) as base:
        first = hammer(base, headers, [1] * 300)
        assert Counter(s for s, _ in first) == {200: 300}
        # Kill one worker (SIGKILL) while 64 clients run; the rest of the quota stays exact.
        killer = threading.Timer(0.3, lambda: _kill_a_worker(base))
        killer.start()
        second = hammer(base, headers, [1] * 350)
        killer.join()
        statuses = Counter(s for s, _ in second)
        assert statuses[200] + statuses[0] >= 200 and statuses[200] <= 200
        assert set(statuses) <= {200, 429, 0}
        time.sleep(1.5)  # the flushers' next round
        counted, _ = metered(home, env, "acme")
        assert counted == 500  # every counted call metered once, none past the quota
        assert 300 + statuses[200] >= 500 - statuses[0]
    # A restart keeps the counts: the quota is still spent (one worker is enough to say so).
    with running_server(home, "--workers", "1", **env) as base:
        again = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body())
        assert again.status_code == 429
        assert again.json()["limit"] == "requests per month"


def _kill_a_worker(base: str) -> None:
    workers = workers_of(SERVERS[base])
    assert len(workers) == 4, workers
    os.kill(workers[0], signal.SIGKILL)


def test_a_rows_quota_is_exact_with_mixed_batches(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    env, base = redis_env, shared
    new_plan(home, "rows", rows_per_month=3000, max_rows_per_request=50)
    headers = consumer_key(home, env, "globex", "rows")
    sizes = [1 + (i * 7) % 50 for i in range(400)]  # 1..50 rows, about 10,000 in all
    results = hammer(base, headers, sizes)
    too_big = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body(51))
    assert too_big.status_code == 413 and "at most 50" in too_big.json()["detail"]
    assert too_big.json()["max_rows"] == 50  # what clients split by
    time.sleep(1.5)
    served = sum(n for s, n in results if s == 200)
    assert {s for s, _ in results} == {200, 429}
    assert 3000 - 50 < served <= 3000
    assert metered(home, env, "globex") == (sum(1 for s, _ in results if s == 200), served)


def test_rate_limits_hold_across_workers(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    """An hourly window: 400 calls take a few seconds, so the run almost never straddles two
    windows; when it does, neither window may pass its limit (no test waits for a boundary)."""
    env, base = redis_env, shared
    new_plan(home, "burst", per_hour=150)
    headers = consumer_key(home, env, "initech", "burst")
    started = datetime.now(UTC)
    results = hammer(base, headers, [1] * 400)
    refused = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body())
    ended = datetime.now(UTC)
    statuses = Counter(s for s, _ in results)
    assert set(statuses) == {200, 429}
    if started.hour == ended.hour:
        assert statuses == {200: 150, 429: 250}
        assert refused.headers["ratelimit-policy"] == '"requests-per-hour";q=150;w=3600'
        assert refused.headers["ratelimit"].startswith('"requests-per-hour";r=0;t=')
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
    else:  # two windows: each held its own 150
        assert 150 <= statuses[200] <= 300


def test_a_per_second_limit_holds_across_workers(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    env, base = redis_env, shared
    new_plan(home, "steady", per_second=20)
    headers = consumer_key(home, env, "hooli", "steady")
    started = time.time()
    results = hammer(base, headers, [1] * 300, clients=32)
    ended = time.time()
    served = sum(1 for s, _ in results if s == 200)
    # Windows are whole UTC seconds: the run touched these, and filled all but the edges.
    touched = int(ended) - int(started) + 1
    assert served <= 20 * touched
    assert served >= 20 * max(0, touched - 2)
    assert {s for s, _ in results} == {200, 429}


def test_overage_plans_keep_serving_and_pinned_consumers_hear_of_retirement(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    env, base = redis_env, shared  # the version, plan, grant and retirement come after its start
    args = ("train", "churn", "--source", "demo", "--table", demo.TABLE, "--target", demo.TARGET)
    mlgate(home, *args, "--drop", demo.ID_COLUMN, "--algorithm", "decision_tree", **env)
    mlgate(home, "models", "promote", "churn", "2", **env)
    mlgate(
        home, "plans", "create", "flex", "--requests-per-month", "3", "--overage",
        "--price-per-1k-rows", "1.00", "--price-per-1k-overage-rows", "4.00", **env,
    )  # fmt: skip
    headers = consumer_key(home, env, "umbrella", "flex", "churn=1")
    sunset = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    mlgate(
        home, "models", "retire", "churn", "1", "--on", sunset.strftime("%Y-%m-%dT%H:%M:%S"), **env
    )
    time.sleep(1.1)  # every worker's one-second caches of aliases, versions and plans
    answers = [
        http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body(10))
        for _ in range(5)
    ]
    time.sleep(1.5)  # the flushers' next round
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.json()["version"] for a in answers} == {1}  # pinned, though production is v2
    assert answers[0].headers["sunset"] == sunset.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert answers[0].headers["deprecation"] == f"@{int(sunset.timestamp())}"
    bill = home.parent / "umbrella.csv"
    mlgate(home, "usage", "--consumer", "umbrella", "--csv", str(bill), **env)
    header, line = bill.read_text().strip().splitlines()
    values = dict(zip(header.split(","), line.split(","), strict=True))
    assert (values["requests"], values["rows"], values["overage_rows"]) == ("5", "50", "20")
    assert values["amount"] == "0.11"  # 30 rows at 1.00 and 20 at 4.00 per 1,000


def test_consumers_without_a_plan_and_models_outside_it_are_refused(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    env, base = redis_env, shared  # the consumer, its key and the plan come after its start
    mlgate(home, "consumers", "create", "drifter", **env)
    mlgate(home, "grants", "add", "churn", "consumer", "--consumer", "drifter", **env)
    key = TOKEN.search(
        mlgate(home, "keys", "create", "--consumer", "drifter", "--name", "d", **env).stdout
    )
    assert key
    mlgate(home, "plans", "create", "elsewhere", "--model", "fraud", **env)
    headers = {"Authorization": f"Bearer {key.group(0)}"}
    none = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body())
    assert none.status_code == 403 and none.json()["code"] == "no_subscription"
    mlgate(home, "consumers", "subscribe", "drifter", "elsewhere", **env)
    time.sleep(1.1)  # plans are looked up at most once a second per worker
    outside = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body())
    assert outside.status_code == 403 and outside.json()["code"] == "plan_excludes_model"


def test_the_embedded_counters_keep_the_month_across_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    quickstarted(home)
    mlgate(home, "plans", "create", "five", "--requests-per-month", "5")
    headers = consumer_key(home, {}, "solo", "five")
    with running_server(home) as base:  # no Redis: counted in the one serving process
        statuses = [
            http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body()).status_code
            for _ in range(7)
        ]
    assert statuses == [200] * 5 + [429] * 2
    with running_server(home) as base:  # the ledger, flushed on the clean stop, reseeds it
        again = http.post(f"{base}/v1/models/churn/predict", headers=headers, json=body())
    assert again.status_code == 429
    assert metered(home, {}, "solo") == (5, 5)


def test_a_refusal_reports_only_windows_it_knows(tmp_path: Path) -> None:
    """The second refusal of a spent day is decided from this process's memory of the first,
    without reading the other windows: its headers must not show them as untouched."""
    home = tmp_path / "home"
    quickstarted(home)
    mlgate(home, "plans", "create", "three", "--per-minute", "100", "--requests-per-day", "3")
    headers = consumer_key(home, {}, "trio", "three")
    with running_server(home) as base, http.Client(headers=headers) as web:
        answers = [web.post(f"{base}/v1/models/churn/predict", json=body()) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert '"requests-per-minute";r=97' in answers[2].headers["RateLimit"]
    for refused in answers[3:]:
        assert refused.json()["limit"] == "requests per day"
        assert '"requests-per-day";r=0' in refused.headers["RateLimit"]
        assert "r=100" not in refused.headers["RateLimit"], refused.headers["RateLimit"]


def test_metrics_are_summed_over_the_workers(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    from tests.e2e.helpers import admin_key
    from tests.e2e.test_server import _counter

    admin = {"Authorization": f"Bearer {admin_key(home, 'predict', 'admin', user='scraper')}"}
    base = shared  # the module's workers: the calls before these are counted too

    def served_as_each_worker_tells() -> set[float]:
        seen = set()
        for _ in range(20):  # ask several workers: each must report the sum of all
            counts = _counter(http.get(f"{base}/metrics", headers=admin).text)
            seen.add(sum(v for (model, _, status), v in counts.items() if status == "200"))
        return seen

    before = served_as_each_worker_tells()
    assert len(before) == 1, before
    results = hammer(base, admin, [1] * 200, clients=16)
    assert {s for s, _ in results} == {200}
    assert served_as_each_worker_tells() == {before.pop() + 200}


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def test_with_redis_it_serves_a_worker_per_core_and_shares_the_cores_out(
    home: Path, redis_env: dict[str, str]
) -> None:
    cores = os.cpu_count() or 1
    with running_server(home, **redis_env) as base:  # no --workers: the default
        workers = _workers_of(SERVERS[base])
        assert len(workers) == cores
        for pid in workers:  # model libraries: the cores divided by the workers
            assert _environ(pid)["OMP_NUM_THREADS"] == str(max(1, cores // len(workers)))
        assert http.get(f"{base}/readyz").status_code == 200


def test_a_key_revoked_elsewhere_is_refused_by_every_worker_within_a_second(
    home: Path, redis_env: dict[str, str], shared: str
) -> None:
    headers = consumer_key(home, redis_env, "leaving", "starter")  # 20 requests a second

    def status(client: httpx.Client) -> int:
        time.sleep(0.1)
        return client.post("/v1/models/churn/predict", json=body()).status_code

    with http.Client(base_url=shared, headers=headers) as client:
        assert [status(client) for _ in range(6)] == [200] * 6  # the workers cached the key
        prefix = headers["Authorization"].removeprefix("Bearer ")[:16]
        mlgate(home, "keys", "revoke", prefix, **redis_env)  # by another process
        revoked_at = time.monotonic()
        # Within the cache's second, then for good, on every worker.
        while (answer := status(client)) == 200:
            assert time.monotonic() - revoked_at < 2.0
        assert answer == 401
        assert {status(client) for _ in range(8)} == {401}
