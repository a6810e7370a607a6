"""Plans benchmark: what counting and metering add to a prediction call.

    .venv/bin/python bench/limits.py [--requests 1500]

Trains the serving benchmark's models (bench/serve.py) in a temporary home, then measures the
same single-row predict endpoint (the logistic regression) three ways, one `mlgate serve` each
(all up at once, measured in interleaved rounds), one client on loopback (keep-alive):

* plans off: an admin's key (team calls are metered, never limited);
* in-process counters: a consumer on a plan with a per-second limit and monthly quotas;
* Redis counters (MLGATE_REDIS_URL, default redis://127.0.0.1:6379/0): the same consumer.

It prints p50 and p99 of each, the latency added at p50 and p99 against plans off, and the
throughput ratio (mean latency of plans off over this one); then the gate alone in process
(open + admit + settle per call, no HTTP) for both backends. Target (issue 6): at most 0.2 ms
added at p50 with Redis on loopback. Never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve import prepare
from tests.e2e.helpers import admin_key, running_server

from mlgate.bootstrap import bootstrap
from mlgate.settings import Settings


def gate_alone(
    services: object, counters: object, principal: object, version: object, n: int
) -> tuple[float, float]:
    """p50 and p99 microseconds of Gate.open + admit + settle."""
    from mlgate.access.model import Target
    from mlgate.plans.enforce import Gate

    gate = Gate(counters, services.uow, services.clock)  # type: ignore[attr-defined,arg-type]
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        admission = gate.open(principal)  # type: ignore[arg-type]
        gate.admit(admission, Target("lr"), 1, version)  # type: ignore[arg-type]
        gate.settle(admission, version)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - started)
    samples.sort()
    return 1e6 * statistics.median(samples), 1e6 * samples[int(len(samples) * 0.99)]


def _stats(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50": 1000 * ordered[len(ordered) // 2],
        "p99": 1000 * ordered[int(len(ordered) * 0.99)],
        "mean": 1000 * statistics.mean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_500)
    parser.add_argument(
        "--redis", default=os.environ.get("MLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        consumer_token, rows, _ = prepare(home, 0)
        services = bootstrap(Settings.from_env({"MLGATE_HOME": str(home)}))
        admin_token = admin_key(home, user="bench-admin")
        body = {"rows": rows[:1]}
        prefix = f"mlgate-bench-{uuid.uuid4().hex[:8]}"
        redis_env = {"MLGATE_REDIS_URL": args.redis, "MLGATE_REDIS_PREFIX": prefix}
        configs = [
            ("plans off (admin key)", admin_token, {}),
            ("in-process counters", consumer_token, {}),
            ("Redis counters", consumer_token, redis_env),
        ]
        # All three servers up at once, measured in interleaved rounds, so that drift of the
        # machine (2 shared cores) falls on every configuration alike.
        with ExitStack() as stack:
            bases = [stack.enter_context(running_server(home, **env)) for _, _, env in configs]
            clients = [
                stack.enter_context(
                    httpx.Client(base_url=b, headers={"Authorization": f"Bearer {t}"})
                )
                for b, (_, t, _) in zip(bases, configs, strict=True)
            ]
            samples: list[list[float]] = [[] for _ in configs]
            for round_ in range(11):
                for i, client in enumerate(clients):
                    for _ in range(args.requests // 10):
                        started = time.perf_counter()
                        response = client.post("/v1/models/lr/predict", json=body)
                        elapsed = time.perf_counter() - started
                        assert response.status_code == 200, response.text
                        if round_:  # the first round warms up
                            samples[i].append(elapsed)
        stats = [_stats(x) for x in samples]
        print(
            f"mlgate plans benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores): "
            "1 row, 1 client, keep-alive"
        )
        base_run = stats[0]
        for (label, _, _), r in zip(configs, stats, strict=True):
            extra = ""
            if r is not base_run:
                extra = (
                    f"  added p50 {r['p50'] - base_run['p50']:+.3f} ms, "
                    f"p99 {r['p99'] - base_run['p99']:+.3f} ms, "
                    f"throughput x{base_run['mean'] / r['mean']:.2f}"
                )
            print(
                f"  {label:<24} p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
                f"({r['n']} requests){extra}"
            )
        from mlgate.access.service import authenticate
        from mlgate.plans.limiter import MemoryCounters
        from mlgate.plans.redis_counters import RedisCounters
        from mlgate.registry.service import resolve_version

        principal = authenticate(
            services.uow(), services.server_secret, f"Bearer {consumer_token}", now=services.clock()
        )
        version = resolve_version(services.uow(), "lr", None)
        print("  the gate alone, in process (open + admit + settle), microseconds:")
        for label, counters in [
            ("memory", MemoryCounters()),
            ("Redis", RedisCounters(args.redis, prefix=prefix)),
        ]:
            p50, p99 = gate_alone(services, counters, principal, version, 3_000)
            print(f"    {label:<7} p50 {p50:7.1f} us  p99 {p99:7.1f} us")
        services.close()


if __name__ == "__main__":
    main()
