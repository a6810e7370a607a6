"""Capacity: 1, 2 and 3 `mlgate serve` replicas behind nginx, measured in the same run.

    .venv/bin/python bench/replicas.py [--seconds 5] [--clients 16]

Each replica is one process with one worker (a replica stands in for a machine), sharing a
throwaway PostgreSQL database (metadata, usage ledger), Redis (limits, quotas) and an artifact
folder; nginx runs deploy/nginx.conf with the replicas' ports. A consumer on a plan with limits
calls a logistic regression on 20 numeric features (bench/serve.py's model): single rows, and
batches of 100 rows. Load from wrk in another process (closed loop, keep-alive, loopback).

Printed per load: requests/s and rows/s, p50 and p99, the ratio to one replica direct (no
nginx, the per-worker baseline measured in the same run), and the backing services' work per
1,000 requests: Redis scripts (each one round trip) and commands executed, inside the scripts
included (INFO commandstats), and PostgreSQL transactions and rows written (pg_stat_database).
Needs wrk and nginx from Debian (apt-get install wrk nginx), PostgreSQL and Redis as the tests
use them. Never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench.serve import FEATURES, synthetic, wrk
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL, _throwaway_database
from tests.e2e.cluster import Cluster

from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.service import create_key
from mlgate.bootstrap import bootstrap
from mlgate.plans.service import create_plan, make_plan, subscribe
from mlgate.settings import Settings
from mlgate.sources import demo
from mlgate.sources.service import add_source
from mlgate.training.service import TrainSpec, train_model


def prepare(cluster: Cluster) -> tuple[str, list[dict[str, Any]]]:
    services = bootstrap(Settings.from_env(cluster.env(cluster.home("setup"))))
    frame = synthetic(20_000)
    database = cluster.root / "bench.db"
    demo.write_sqlite(database, frame, table="bench")
    now = services.clock()
    add_source(services.uow(), services.open_source, name="bench", url=f"sqlite:///{database}",
               cwd=cluster.root, now=now)  # fmt: skip
    spec = TrainSpec("lr", "bench", "label", "logistic_regression", table="bench", report=False)
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    create_consumer(services.uow(), by=None, name="bench", description="", now=now)
    plan = make_plan("bench", now, per_second=10**9, requests_per_month=10**12,
                     rows_per_month=10**15)  # fmt: skip
    create_plan(services.uow(), plan, by=None)
    subscribe(services.uow(), by=None, consumer="bench", plan="bench", now=now)
    add_grant(services.uow(), by=None, subject_kind="consumer", subject="bench", target="lr",
              role="consumer", now=now, actor="bench")  # fmt: skip
    _, token = create_key(services.uow(), services.server_secret, by=None,
                          owner_kind="consumer", owner="bench", name="bench", now=now)  # fmt: skip
    services.close()
    return token, frame[FEATURES].head(100).to_dict(orient="records")


def redis_calls(client: redis.Redis) -> Counter[str]:
    """Commands Redis executed, by name (those run inside our Lua scripts included)."""
    stats = client.info("commandstats")
    return Counter({k[8:]: int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_")})


def pg_work(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = current_database()"
        )).one()  # fmt: skip
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"bench/replicas.py needs {tool}: apt-get install {tool}")
    database = _throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    url = next(database)
    prefix = f"mlgate-bench-{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    client = redis.Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, REDIS_URL, prefix)
        token, rows = prepare(cluster)
        loads = {
            "1 row": json.dumps({"rows": rows[:1]}).encode(),
            "100 rows": json.dumps({"rows": rows[:100]}).encode(),
        }
        print(
            f"capacity: logistic regression, 20 features; wrk c={args.clients}, "
            f"{args.seconds:g} s per load; one worker per replica; loopback, 2 cores shared "
            "by replicas, nginx, wrk, PostgreSQL and Redis"
        )
        baseline: dict[str, float] = {}
        try:
            for n in (1, 2, 3):
                while len(cluster.replicas) < n:
                    cluster.start_replica()
                if cluster.nginx is not None:
                    cluster.nginx.terminate()
                    cluster.nginx.wait()
                balancer = cluster.start_nginx()
                targets = [(f"{n} behind nginx", balancer)]
                if n == 1:
                    direct = cluster.url(next(iter(cluster.replicas)))
                    targets.insert(0, ("1 direct", direct))
                for label, base in targets:
                    for load, body in loads.items():
                        endpoint = f"{base}/v1/models/lr/predict"
                        wrk(endpoint, token, body, args.clients, 1, Path(tmp))  # warm-up
                        r0, (x0, w0) = redis_calls(client), pg_work(engine)
                        figures = wrk(endpoint, token, body, args.clients, args.seconds, Path(tmp))
                        time.sleep(1.5)  # the last usage flush
                        r1, (x1, w1) = redis_calls(client), pg_work(engine)
                        commands = r1 - r0
                        scripts = commands["evalsha"] + commands["eval"]  # one round trip each
                        requests = figures["rps"] * args.seconds
                        per_k = 1000 / max(requests, 1)
                        key = f"{load}"
                        baseline.setdefault(key, figures["rps"])
                        rows_per_request = 1 if load == "1 row" else 100
                        print(
                            f"{label:16} {load:8} {figures['rps']:7.0f} req/s "
                            f"{figures['rps'] * rows_per_request:9.0f} rows/s "
                            f"p50 {figures['p50_ms']:6.2f} p99 {figures['p99_ms']:6.2f} ms "
                            f"x{figures['rps'] / baseline[key]:4.2f} | per 1,000 requests: "
                            f"Redis {scripts * per_k:5.0f} scripts "
                            f"({commands.total() * per_k:5.0f} cmds), PostgreSQL "
                            f"{(x1 - x0) * per_k:5.1f} txns {(w1 - w0) * per_k:6.1f} rows"
                            + (f" | {figures['failed']:.0f} failed" if figures["failed"] else "")
                        )
            top = ", ".join(f"{c} {n * per_k:.0f}" for c, n in commands.most_common(6))
            print(f"Redis commands per 1,000 requests in the last load: {top}")
        finally:
            cluster.stop()
            engine.dispose()
            for found in client.scan_iter(match=f"{prefix}:*", count=500):
                client.delete(found)
            client.close()
            next(database, None)


if __name__ == "__main__":
    main()
