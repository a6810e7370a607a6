"""Serving benchmark: HTTP throughput and latency against in-process prediction of the same model.

    .venv/bin/python bench/serve.py [--requests 2000] [--seconds 20]

Trains the quickstart churn model in a temporary home, starts `mlgate serve` on a free loopback
port, and sends bounded closed-loop loads (each client waits for its answer before sending the
next): single-row and 1,000-row bodies, at 1 and 4 concurrent clients. It prints req/s, p50 and
p99, then the in-process times of the same work, and the ratio between the two. Every loop stops
after --requests requests or --seconds seconds, whichever comes first. Never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.helpers import running_server

from mlgate.access import policy
from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.model import Target
from mlgate.access.service import authenticate, create_key
from mlgate.bootstrap import Services, bootstrap
from mlgate.plans.service import create_plan, make_plan, subscribe
from mlgate.registry.service import resolve_version
from mlgate.schema import rows_to_frame
from mlgate.serving.payloads import frame_from_body
from mlgate.serving.service import predict
from mlgate.settings import Settings
from mlgate.sources import demo
from mlgate.sources.service import add_source
from mlgate.training.service import TrainSpec, train_model


def prepare(home: Path) -> tuple[Services, str, list[dict[str, Any]]]:
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(home)}))
    frame = demo.churn_frame(n_rows=5_000)
    database = home / "churn.db"
    demo.write_sqlite(database, frame)
    add_source(
        services.uow(),
        services.open_source,
        name="demo",
        url=f"sqlite:///{database}",
        cwd=home,
        now=services.clock(),
    )
    spec = TrainSpec(
        "churn",
        "demo",
        demo.TARGET,
        "logistic_regression",
        table=demo.TABLE,
        drop=(demo.ID_COLUMN,),
    )
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    # A consumer granted the model, as customers call it: key, owner and grant all checked.
    now = services.clock()
    create_consumer(services.uow(), by=None, name="bench", description="", now=now)
    plan = make_plan(
        "bench", now, per_second=1_000_000, requests_per_month=10**12, rows_per_month=10**15
    )
    create_plan(services.uow(), plan, by=None)
    subscribe(services.uow(), by=None, consumer="bench", plan="bench", now=now)
    add_grant(
        services.uow(),
        by=None,
        subject_kind="consumer",
        subject="bench",
        target="churn",
        role="consumer",
        now=now,
        actor="bench",
    )
    _, token = create_key(
        services.uow(),
        services.server_secret,
        by=None,
        owner_kind="consumer",
        owner="bench",
        name="bench",
        now=now,
    )
    features = frame.drop(columns=[demo.ID_COLUMN, demo.TARGET]).head(1_000).astype(object)
    rows = features.where(features.notna(), None).to_dict(orient="records")
    return services, token, [{str(k): v for k, v in r.items()} for r in rows]


def load(
    base: str, token: str, body: dict[str, Any], clients: int, limit: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    budget = iter(range(limit))
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal failures
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            while time.perf_counter() < deadline:
                with lock:
                    if next(budget, None) is None:
                        return
                started = time.perf_counter()
                response = http.post("/v1/models/churn/predict", json=body)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    failures += response.status_code != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of `fn` over `repeat` calls, after a warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2_000, help="requests per single-row run")
    parser.add_argument("--seconds", type=float, default=20.0, help="time cap per run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        services, token, rows = prepare(home)
        version = resolve_version(services.uow(), "churn", None)
        predictor = services.predictors.get(version)
        bodies = {"1 row": {"rows": rows[:1]}, "1000 rows": {"rows": rows}}

        print(f"mlgate serving benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
        print("in process (median of repeated calls):")
        inproc: dict[str, dict[str, float]] = {}
        for label, body in bodies.items():
            n = 1 if label == "1 row" else 1_000
            frame = rows_to_frame(body["rows"], version.columns, max_rows=10_000)
            inproc[label] = {
                "model": timed(lambda f=frame: predictor.score(f), 200 if n == 1 else 30),
                "full": timed(
                    lambda b=body: predict(
                        services.uow(),
                        services.predictors,
                        authorize=lambda: policy.authorize(
                            authenticate(
                                services.uow(),
                                services.server_secret,
                                f"Bearer {token}",
                                now=services.clock(),
                            ),
                            "predict",
                            Target("churn"),
                        ),
                        model_name="churn",
                        number=None,
                        parse_rows=lambda cols, b=b: frame_from_body(b, cols, max_rows=10_000),
                    ),
                    200 if n == 1 else 30,
                ),
            }
            print(
                f"  {label:>9}: model.predict {inproc[label]['model']:7.2f} ms   "
                f"key+lookup+validation+predict {inproc[label]['full']:7.2f} ms"
            )

        print("over HTTP on loopback (closed loop, keep-alive, Python httpx clients):")
        with running_server(home) as base:
            for label, body in bodies.items():
                limit = args.requests if label == "1 row" else max(args.requests // 10, 50)
                for clients in (1, 4):
                    r = load(base, token, body, clients, limit, args.seconds)
                    ratio = r["p50_ms"] / inproc[label]["model"]
                    print(
                        f"  {label:>9} x{clients} clients: {r['rps']:7.1f} req/s  "
                        f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                        f"({int(r['requests'])} requests, {int(r['failures'])} failed)  "
                        f"p50 / in-process predict = {ratio:5.1f}x"
                    )
        services.close()


if __name__ == "__main__":
    main()
