"""Batch jobs benchmark: rows per second of a batch job through `mlgate serve` (its defaults),
against `mlgate predict` scoring the same rows offline, and against the synchronous endpoint in
1,000-row requests, in the same run.

    .venv/bin/python bench/batches.py [--rows 1000000] [--model logistic_regression]

Trains the churn model on the demo data in a temporary home, writes --rows rows to a Parquet file
(a folder source for `mlgate predict`), then times:
* offline: `mlgate predict churn --source rows --table rows --output out.parquet` (a process, as
  users run it; the model's load included);
* batch: the file uploaded to `mlgate serve` by the Python client, from the upload's start to
  the job's end (upload, chunked scoring, result parts, ledger) plus the result's download;
* synchronous: the same rows as JSON in 1,000-row requests to `/v1/models/churn/predict`, one
  client (orjson bodies), for a tenth of the rows (extrapolated: it is the slow path).
Prints rows/s of each and the batch's ratio to offline (target: at least 0.8). Never part of
the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.helpers import admin_key, mlgate, running_server

from mlgate.client import Client
from mlgate.sources import demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model", default="logistic_regression")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home = root / "home"
        train = root / "train"
        train.mkdir()
        demo.churn_frame(n_rows=5_000).to_parquet(train / "customers.parquet", index=False)
        mlgate(home, "sources", "add", "train", str(train))
        mlgate(home, "train", "churn", "--source", "train", "--table", "customers",
               "--target", demo.TARGET, "--algorithm", args.model, "--drop", demo.ID_COLUMN,
               "--no-report")  # fmt: skip
        token = admin_key(home, "predict", "read")
        data = root / "rows"
        data.mkdir()
        frame = demo.churn_frame(n_rows=args.rows, seed=1).drop(
            columns=[demo.ID_COLUMN, demo.TARGET]
        )
        source = data / "rows.parquet"
        frame.to_parquet(source, index=False)
        mlgate(home, "sources", "add", "rows", str(data))
        print(f"{args.rows:,} rows, {args.model}")

        started = time.perf_counter()
        mlgate(home, "predict", "churn", "--source", "rows", "--table", "rows",
               "--output", str(root / "offline.parquet"))  # fmt: skip
        offline = time.perf_counter() - started
        assert len(pd.read_parquet(root / "offline.parquet")) == args.rows

        with running_server(home) as base:
            with Client(base, token, timeout=600) as client:
                started = time.perf_counter()
                batch = client.predict_file("churn", source, output=root / "batch.parquet")
                batched = time.perf_counter() - started
            assert batch.data["rows_done"] == args.rows
            assert len(pd.read_parquet(root / "batch.parquet")) == args.rows
            sync_rows = max(1_000, args.rows // 10)
            records = frame.head(sync_rows).astype(object).where(frame.notna(), None)
            bodies = [
                orjson.dumps({"rows": records.iloc[i : i + 1_000].to_dict(orient="records")})
                for i in range(0, sync_rows, 1_000)
            ]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                started = time.perf_counter()
                for body in bodies:
                    http.post("/v1/models/churn/predict", content=body).raise_for_status()
                synchronous = (time.perf_counter() - started) * args.rows / sync_rows

    rates = {"offline (mlgate predict)": offline, "batch job (serve)": batched,
             "sync, 1,000-row requests": synchronous}  # fmt: skip
    for name, seconds in rates.items():
        print(f"{name:<28} {args.rows / seconds:>12,.0f} rows/s  ({seconds:.1f} s)")
    ratio = offline / batched
    print(
        f"batch / offline: {ratio:.2f}x (target >= 0.8)  batch / sync: {synchronous / batched:.2f}x"
    )


if __name__ == "__main__":
    main()
