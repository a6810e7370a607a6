"""Monitoring benchmark: what prediction logging adds to the hot path.

    .venv/bin/python bench/monitoring.py [--requests 1500] [--rounds 3]

One `mlgate serve` on the quickstart's model, one client on loopback (keep-alive). The model's
sample rate is switched between off (0), 1% and 100% in interleaved rounds (each change waits
out the one-second settings cache); each round sends single-row and 100-row predictions. It
prints p50 and p99 per rate and the latency added against logging off, then the recorder alone
in process (the per-request `offer`, no HTTP). Writing happens on the recorder's thread, once a
second, so the hot path pays a random draw and, when sampled, one append. Never part of the
tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.helpers import admin_key, mlgate, running_server

from mlgate.sources import demo

RATES = (("off", 0.0), ("1%", 0.01), ("100%", 1.0))


def _rows(n: int) -> list[dict[str, Any]]:
    frame = demo.churn_frame(n_rows=n, seed=3).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    return [
        {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


def _measure(client: httpx.Client, body: dict[str, Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.post("/v1/models/churn/predict", json=body)
        samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def recorder_alone(n: int) -> None:
    import numpy as np

    from mlgate.monitoring.model import MonitorSettings
    from mlgate.monitoring.recorder import PredictionRecorder
    from mlgate.schema import Table

    rows = Table({"x": np.array([1.0])}, 1)
    print("\nrecorder.offer alone (µs per request, p50):")
    for label, rate in RATES:
        recorder = PredictionRecorder(lambda: None, lambda: datetime.now(UTC), capacity=n + 1)  # type: ignore[arg-type, return-value]
        recorder._settings.get("m", lambda rate=rate: MonitorSettings(sample_rate=rate))
        samples = []
        for i in range(n):
            started = time.perf_counter()
            recorder.offer("m", 1, "user:a", f"r{i}", rows, [0])
            samples.append(time.perf_counter() - started)
        print(f"  {label:>5}: {1e6 * statistics.median(samples):6.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        mlgate(home, "quickstart", "--no-serve")
        key = admin_key(home, "predict", "train", "read")
        headers = {"Authorization": f"Bearer {key}"}
        one, hundred = {"rows": _rows(1)}, {"rows": _rows(100)}
        results: dict[tuple[str, str], list[float]] = defaultdict(list)
        with (
            running_server(home, MLGATE_MONITOR_INTERVAL="0") as base,
            httpx.Client(base_url=base, headers=headers) as client,
        ):
            _measure(client, one, 200)  # warm up
            for _ in range(args.rounds):
                for label, rate in RATES:
                    answer = client.put("/v1/models/churn/monitoring/settings",
                                        json={"sample_rate": rate})  # fmt: skip
                    assert answer.status_code == 200, answer.text
                    time.sleep(1.2)
                    per_round = args.requests // args.rounds
                    results[(label, "1 row")] += _measure(client, one, per_round)
                    results[(label, "100 rows")] += _measure(client, hundred, per_round // 5)
            logged = client.get("/v1/models/churn/monitoring", params={"by": "version"})
            rows = sum(w["rows"] for w in logged.json()["windows"])
        print(f"one `mlgate serve`, {args.rounds} interleaved rounds; {rows:,} rows logged\n")
        print(
            f"{'body':>9} {'logging':>8} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}"
        )
        for body in ("1 row", "100 rows"):
            base50, base99 = _p(results[("off", body)], 0.5), _p(results[("off", body)], 0.99)
            for label, _ in RATES:
                s = results[(label, body)]
                p50, p99 = _p(s, 0.5), _p(s, 0.99)
                print(f"{body:>9} {label:>8} {p50:8.3f} {p99:8.3f} {p50 - base50:+8.3f} "
                      f"{p99 - base99:+8.3f}")  # fmt: skip
    recorder_alone(100_000)


if __name__ == "__main__":
    main()
