"""Signing benchmark: what verifying a version's signature adds to loading it (a cold start),
and that a prediction pays nothing for it.

    .venv/bin/python bench/signing.py [--loads 30] [--calls 2000]

Trains a logistic regression and a random forest of 300 trees (a larger artifact) on the demo
churn table in a temporary home (SQLite metadata, local artifact folder), each signed as it is
registered. Then, for each, in interleaved rounds: a cold load without verification (a fresh
PredictorCache: read the file, check its sha256 and types, build the predictor) against the
same with verification (the signature read from the database, the envelope checked with
ECDSA, the model's bytes hashed against the signed digest). It prints the median milliseconds
of each, the milliseconds added and the ratio; then p50 microseconds of one-row predictions
through each loaded predictor, and their ratio (the check runs at load only). Never part of
the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import InMemorySource

from mlgate.bootstrap import bootstrap
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform
from mlgate.settings import Settings
from mlgate.sources import demo
from mlgate.sources.model import SourceConfig
from mlgate.training.service import TrainSpec, train_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        services = bootstrap(Settings.from_env({"MLGATE_HOME": home}))
        frame = demo.churn_frame(n_rows=5000)
        source = InMemorySource("crm", frame, demo.TABLE)
        with services.uow() as uow:
            uow.sources.add(SourceConfig("crm", "memory://crm", "sql", services.clock()))
            uow.commit()
        row = frame.drop(columns=[demo.TARGET, demo.ID_COLUMN]).head(1)
        for algorithm, params in (
            ("logistic_regression", {}),
            ("random_forest", {"n_estimators": 300}),
        ):
            spec = TrainSpec(algorithm, "crm", demo.TARGET, algorithm, table=demo.TABLE,
                             drop=(demo.ID_COLUMN,), params=params, report=False)  # fmt: skip
            version = train_model(
                services.uow(), services.artifacts, lambda c: source, spec,
                now=services.clock, sign=services.signing.sign_new,
            ).version  # fmt: skip
            assert services.signing.verify(version.model_name, version.number).ok
            rows = conform(row, version.columns)
            plain: list[float] = []
            checked: list[float] = []
            for _ in range(args.loads):  # interleaved, so drift hits both alike
                for verify, into in ((None, plain), (services.signing.check_load, checked)):
                    cache = PredictorCache(services.artifacts, verify=verify)
                    started = time.perf_counter()
                    cache.get(version)
                    into.append(time.perf_counter() - started)
            loaded = {
                "without": PredictorCache(services.artifacts).get(version),
                "with": PredictorCache(services.artifacts,
                                       verify=services.signing.check_load).get(version),
            }  # fmt: skip
            calls: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(args.calls):
                for name, predictor in loaded.items():
                    started = time.perf_counter()
                    predictor.score(rows)
                    calls[name].append(time.perf_counter() - started)
            size = version.artifact.size_bytes
            a, b = statistics.median(plain) * 1e3, statistics.median(checked) * 1e3
            p, q = (statistics.median(calls[k]) * 1e6 for k in ("without", "with"))
            print(f"{algorithm} ({size / 1e6:.2f} MB artifact)")
            print(f"  cold load   without verification {a:8.2f} ms   with {b:8.2f} ms   "
                  f"added {b - a:+.2f} ms   ratio {b / a:.3f}")  # fmt: skip
            print(f"  predict p50 without verification {p:8.1f} us   with {q:8.1f} us   "
                  f"ratio {q / p:.3f}")  # fmt: skip
        services.close()


if __name__ == "__main__":
    main()
