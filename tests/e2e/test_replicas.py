"""Three `mlgate serve` replicas behind nginx (deploy/nginx.conf), sharing PostgreSQL, Redis and
the artifact store: changes made on one reach the others within 2 s, quotas stay exact, a
replica killed under load loses no counted call and the balancer routes around it, and a
replica started later serves the current aliases."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlgate.access import accounts, grants
from mlgate.access.service import create_key
from mlgate.bootstrap import Services, bootstrap
from mlgate.plans import service as plans
from mlgate.registry import aliases
from mlgate.settings import Settings
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    _unavailable,
    redis_prefix,
    throwaway_database,
)
from tests.e2e import http
from tests.e2e.cluster import NGINX, Cluster
from tests.e2e.helpers import mlgate

WITHIN = 2.0  # seconds for a change to reach every replica
ROWS = [
    {k: (None if v != v else v) for k, v in r.items()}
    for r in demo.churn_frame(n_rows=4)
    .drop(columns=[demo.ID_COLUMN, demo.TARGET])
    .to_dict("records")
]


def _services(cluster: Cluster, name: str) -> Services:
    return bootstrap(Settings.from_env(cluster.env(cluster.home(name))))


@pytest.fixture(scope="module")
def shared_prefix() -> Iterator[str]:
    with redis_prefix() as prefix:
        yield prefix


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, shared_prefix: str) -> Iterator[Cluster]:
    if not Path(NGINX).exists():
        _unavailable("nginx", FileNotFoundError("apt-get install nginx"))
    database = throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    url = next(database)
    made = Cluster(tmp_path_factory.mktemp("replicas"), url, REDIS_URL, shared_prefix)
    _prepare(made)
    try:
        for _ in range(3):
            made.start_replica()
        made.start_nginx()
        yield made
    finally:
        made.stop()
        next(database, None)


TOKENS: dict[str, str] = {}


def _prepare(cluster: Cluster) -> None:
    """Two versions of churn, production on v1; consumers on plans, with keys; an admin key."""
    s = _services(cluster, "setup")
    now = s.clock()
    table = cluster.root / "churn.db"
    demo.write_sqlite(table, demo.churn_frame(n_rows=600))
    from mlgate.sources import service as sources

    sources.add_source(s.uow(), s.open_source, name="demo", url=f"sqlite:///{table}",
                       cwd=cluster.root, now=now)  # fmt: skip
    for algorithm in ("logistic_regression", "decision_tree"):
        spec = TrainSpec("churn", "demo", demo.TARGET, algorithm, table=demo.TABLE,
                         drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
        train_model(s.uow(), s.artifacts, s.open_source, spec, now=s.clock)
    aliases.promote(s.uow(), "churn", 1, "production", actor="test", now=now)
    accounts.create_user(s.uow(), by=None, name="ops", password=None, is_admin=True, now=now)
    _, TOKENS["admin"] = create_key(s.uow(), s.server_secret, by=None, owner_kind="user",
                                    owner="ops", name="ops", now=now,
                                    scopes=("predict", "read", "train", "admin"))  # fmt: skip
    for consumer, limits in {
        "steady": {"per_second": 1000},
        "quota": {"requests_per_day": 50},
        "load": {"requests_per_day": 10**9},
    }.items():
        accounts.create_consumer(s.uow(), by=None, name=consumer, description="", now=now)
        plans.create_plan(s.uow(), plans.make_plan(f"plan-{consumer}", now, **limits), by=None)
        plans.subscribe(s.uow(), by=None, consumer=consumer, plan=f"plan-{consumer}", now=now)
        grants.add_grant(s.uow(), by=None, subject_kind="consumer", subject=consumer,
                         target="churn", role="consumer", now=now, actor="test")  # fmt: skip
        _, TOKENS[consumer] = create_key(s.uow(), s.server_secret, by=None,
                                         owner_kind="consumer", owner=consumer, name=consumer,
                                         now=now)  # fmt: skip
    s.close()


def predict(base: str, token: str, client: httpx.Client | None = None) -> httpx.Response:
    call = client.post if client else http.post
    return call(
        f"{base}/v1/models/churn/predict",
        json={"rows": ROWS[:2]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def until(condition: Callable[[], bool], limit: float = WITHIN) -> float:
    """Seconds until `condition` held (it must within `limit`)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit, f"not true within {limit} s"
        time.sleep(0.05)
    return time.monotonic() - start


def everywhere(cluster: Cluster, check: Callable[[str], bool]) -> None:
    for port in list(cluster.replicas):
        until(lambda port=port: check(cluster.url(port)))  # type: ignore[misc]


@pytest.mark.slow(reason="it bears the start of the module's three replicas and nginx")
def test_an_alias_move_reaches_every_replica(cluster: Cluster) -> None:
    ports = list(cluster.replicas)
    for port in ports:
        assert predict(cluster.url(port), TOKENS["steady"]).headers["x-model-version"] == "1"
    moved = http.post(
        f"{cluster.url(ports[0])}/v1/models/churn/aliases/production",
        json={"version": 2, "reason": "replicas"},
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
    )
    assert moved.status_code == 200, moved.text
    everywhere(
        cluster, lambda base: predict(base, TOKENS["steady"]).headers["x-model-version"] == "2"
    )


def test_a_revoked_key_stops_on_every_replica(cluster: Cluster) -> None:
    s = _services(cluster, "operator")
    key, token = create_key(s.uow(), s.server_secret, by=None, owner_kind="consumer",
                            owner="steady", name="short-lived", now=s.clock())  # fmt: skip
    s.close()
    everywhere(cluster, lambda base: predict(base, token).status_code == 200)
    home = cluster.home("operator")  # the operator's CLI on another machine, same database
    mlgate(home, "keys", "revoke", key.prefix, **_cli_env(cluster))
    everywhere(cluster, lambda base: predict(base, token).status_code == 401)


def test_a_plan_change_reaches_every_replica(cluster: Cluster) -> None:
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    port = next(iter(cluster.replicas))
    changed = http.patch(f"{cluster.url(port)}/v1/plans/plan-steady",
                          json={"models": ["another-model"]}, headers=admin)  # fmt: skip
    assert changed.status_code == 200, changed.text

    def excluded(base: str) -> bool:
        answer = predict(base, TOKENS["steady"])
        return answer.status_code == 403 and answer.json()["code"] == "plan_excludes_model"

    everywhere(cluster, excluded)
    restored = http.patch(f"{cluster.url(port)}/v1/plans/plan-steady", json={"models": []},
                           headers=admin)  # fmt: skip
    assert restored.status_code == 200
    everywhere(cluster, lambda base: predict(base, TOKENS["steady"]).status_code == 200)


def test_a_quota_stays_exact_across_replicas(cluster: Cluster) -> None:
    """80 concurrent calls through the balancer against a quota of 50 a day."""
    with http.Client() as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predict(cluster.balancer, TOKENS["quota"], client),
                                range(80)))  # fmt: skip
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 50, 429: 30}


def test_a_replica_killed_under_load_loses_no_counted_call(cluster: Cluster) -> None:
    statuses: list[tuple[float, int]] = []
    stop = threading.Event()
    victim = list(cluster.replicas)[-1]

    def load() -> None:
        with http.Client() as client:
            while not stop.is_set():
                try:
                    status = predict(cluster.balancer, TOKENS["load"], client).status_code
                except httpx.TransportError:
                    status = 0
                statuses.append((time.monotonic(), status))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    until(lambda: len(statuses) >= 150, limit=60)
    killed_at = time.monotonic()
    cluster.kill(victim)
    until(lambda: sum(1 for at, _ in statuses if at > killed_at + 1) >= 150, limit=60)
    stop.set()
    for t in threads:
        t.join()
    counts = Counter(status for _, status in statuses)
    # A call in flight on the victim ends in a 502, or (when the victim had begun its answer)
    # in a connection nginx closes: status 0 here. Only those, at most one per client thread.
    assert set(counts) <= {200, 502, 0}, counts
    assert counts[502] + counts[0] <= len(threads), counts
    after = [status for at, status in statuses if at > killed_at + 1]
    assert after and set(after) == {200}, "the balancer routes around the dead replica"
    # Every counted call is in the ledger: the counters in Redis and the database agree, and
    # they hold every answered call (plus at most the ones whose answer died with the victim).
    s = _services(cluster, "auditor")
    try:
        plan = plans.get_plan(s.uow(), "plan-load")

        def ledger() -> int:
            month = s.clock().strftime("%Y-%m")
            rows = plans.usage(s.uow(), by=None, month=month, consumer="load")
            return sum(r.requests for r in rows if r.status < 400)

        counted = next(st.used for st in s.gate.standing("load", plan) if st.limit.window == "day")
        until(lambda: ledger() == counted, limit=10)  # the survivors flush every second
        assert counts[200] <= counted <= counts[200] + counts[502] + counts[0]
    finally:
        s.close()


def test_a_replica_started_later_serves_the_current_aliases(cluster: Cluster) -> None:
    port = cluster.start_replica()
    first = predict(cluster.url(port), TOKENS["steady"])
    assert first.status_code == 200 and first.headers["x-model-version"] == "2"


def _cli_env(cluster: Cluster) -> dict[str, Any]:
    env = cluster.env(cluster.home("operator"))
    return {k: v for k, v in env.items() if k.startswith("MLGATE_") and k != "MLGATE_HOME"}
