"""What one bad row costs a batch chunk: a 50,000-row chunk of the churn demo with one value
that is not a number, scored by the batch runner's chunk scorer (`score_chunk` in
serving/batches.py), against the same chunk with no bad row, in process.

    .venv/bin/python bench/bad_rows.py [--rows 50000] [--bad 1] [--model logistic_regression]

Trains the churn model from an in-memory source (as tests/unit/test_batch_rules.py does), then
times `score_chunk` on the clean chunk and on the chunk with --bad rows spoiled, and checks that
the two agree on every row that is not bad. Never part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import (
    FixedClock,
    InMemoryArtifactStore,
    InMemoryDatabase,
    InMemorySource,
    in_memory_uow_factory,
)

from mlgate.runtime.predictors import PredictorCache
from mlgate.serving.batches import score_chunk
from mlgate.sources import demo
from mlgate.sources.model import SourceConfig
from mlgate.training.service import TrainSpec, train_model

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--bad", type=int, default=1)
    parser.add_argument("--model", default="logistic_regression")
    args = parser.parse_args()
    db, artifacts = InMemoryDatabase(), InMemoryArtifactStore()
    uow = in_memory_uow_factory(db)
    with uow() as work:
        work.sources.add(SourceConfig("crm", "memory://crm", "sql", NOW))
        work.commit()
    source = InMemorySource("crm", demo.churn_frame(n_rows=2_000), demo.TABLE)
    spec = TrainSpec("churn", "crm", demo.TARGET, args.model, table=demo.TABLE,
                     drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
    version = train_model(uow(), artifacts, lambda config: source, spec,
                          now=FixedClock(NOW)).version  # fmt: skip
    predictor = PredictorCache(artifacts).get(version)
    frame = demo.churn_frame(n_rows=args.rows, seed=1).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    bad = frame.astype(object)
    spoiled = np.linspace(0, args.rows - 1, args.bad + 2, dtype=int)[1:-1]
    bad.loc[spoiled, "tenure_months"] = "seven"
    started = time.perf_counter()
    clean, _ = score_chunk(frame, version, predictor.score)
    clean_s = time.perf_counter() - started
    started = time.perf_counter()
    scored, failed = score_chunk(bad, version, predictor.score)
    bad_s = time.perf_counter() - started
    assert failed == args.bad, failed
    good = np.ones(args.rows, dtype=bool)
    good[spoiled] = False
    assert scored["prediction"][good].tolist() == clean["prediction"][good].tolist()
    print(f"{args.rows:,} rows, {args.model}: clean {clean_s:.2f} s; with {args.bad} bad "
          f"row(s) {bad_s:.2f} s ({bad_s / clean_s:.1f} times the clean chunk)")  # fmt: skip


if __name__ == "__main__":
    main()
