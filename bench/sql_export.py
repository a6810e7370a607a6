"""Scoring in the database against pulling the rows out: a PostgreSQL table of --rows churn
customers scored by `mlgate predict --in-database` (the version's checked SQL, run as
`CREATE TABLE … AS SELECT` inside PostgreSQL) and by `mlgate predict --into-table` (rows read
out in chunks, scored here, written back), for logistic regression and XGBoost (100 trees), in
the same run.

    .venv/bin/python bench/sql_export.py [--rows 1000000] [--url postgresql+psycopg://...]

Needs a PostgreSQL server whose user may create a database (default: the test server,
postgres@127.0.0.1:5432); a database of its own is made and dropped. Each command runs as a
process, as users run it: the time includes its start, the model's load and, for
--in-database, the check of the SQL on the holdout. Prints rows/s and the mlgate process's
peak memory (its VmHWM) for each (PostgreSQL's own memory is not counted: that is the point),
and the ratio; and the machine's load average, since other work on it slows both.
Never part of the tests.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.helpers import env_for, mlgate

from mlgate.sources import demo

MODELS = {
    "logistic_regression": [],
    "xgboost": ["--param", "n_estimators=100"],
}


# Runs `python -m mlgate ARGS` and, at its exit, writes the process's VmHWM (its own peak
# resident memory) where MLGATE_BENCH_HWM says. Not ru_maxrss from wait4: a forked child's
# starts at the parent's size (here the bench holding the million rows it loaded), so it read
# 650 MiB for every command alike.
_PEAK = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status, open(os.environ["MLGATE_BENCH_HWM"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(_peak)
sys.argv = ["mlgate", *sys.argv[1:]]
runpy.run_module("mlgate", run_name="__main__", alter_sys=True)
"""


def timed(home: Path, *args: str) -> tuple[float, float]:
    """Seconds and peak resident memory (MiB) of one `mlgate` process."""
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as peak:
        env = {**env_for(home), "MLGATE_BENCH_HWM": peak.name}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _PEAK, *args], env=env,
                              capture_output=True, check=False)  # fmt: skip
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"mlgate {' '.join(args)} failed:\n{done.stderr.decode()}")
        return seconds, int(Path(peak.name).read_text()) / 1024


def load(url: str, rows: int) -> None:
    """The churn table, --rows rows, through COPY."""
    frame = demo.churn_frame(n_rows=rows, seed=1).drop(columns=[demo.TARGET])
    engine = sa.create_engine(url)
    frame.head(0).to_sql("customers", engine, index=False)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy("COPY customers FROM STDIN (FORMAT csv)") as copy:  # type: ignore[attr-defined]
            copy.write(buffer.read())
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    name = f"mlgate_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(args.url).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            home = root / "home"
            train = root / "train"
            train.mkdir()
            demo.churn_frame(n_rows=5_000).to_parquet(train / "customers.parquet", index=False)
            mlgate(home, "sources", "add", "train", str(train))
            load(url, args.rows)
            mlgate(home, "sources", "add", "shop", url)
            load_average = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"{args.rows:,} rows in PostgreSQL (load average {load_average}, "
                  f"{os.cpu_count()} CPUs)")  # fmt: skip
            for algorithm, params in MODELS.items():
                model = algorithm.replace("_", "-")
                mlgate(home, "train", model, "--source", "train", "--table", "customers",
                       "--target", demo.TARGET, "--algorithm", algorithm, "--drop",
                       demo.ID_COLUMN, "--no-report", *params)  # fmt: skip
                inside, inside_mib = timed(
                    home, "predict", f"{model}@1", "--source", "shop", "--table", "customers",
                    "--in-database", "--into-table", f"{model}_in_db".replace("-", "_"),
                    "--key", demo.ID_COLUMN,
                )  # fmt: skip
                out, out_mib = timed(
                    home, "predict", f"{model}@1", "--source", "shop", "--table", "customers",
                    "--into-table", f"{model}_pulled".replace("-", "_"),
                )  # fmt: skip
                print(
                    f"{algorithm:20s} in the database: {args.rows / inside:12,.0f} rows/s "
                    f"({inside:6.1f} s, mlgate peak {inside_mib:6.0f} MiB) | pulled out: "
                    f"{args.rows / out:12,.0f} rows/s ({out:6.1f} s, peak {out_mib:6.0f} MiB) | "
                    f"ratio {out / inside:4.1f}x"
                )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
