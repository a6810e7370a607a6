"""Training benchmark: loading a large PostgreSQL table, and fitting, through mlgate vs directly.

    .venv/bin/python bench/train.py [--rows 1000000] [--url postgresql+psycopg://...]

Writes the churn demo table with --rows rows (fixed seed) into a benchmark database (kept between
runs, rebuilt when the row count differs), then runs each measurement in its own process so that
its peak memory (max RSS) is its own:

* load: mlgate's source (Arrow through ADBC) vs `pandas.read_sql` on the same query;
* fit: mlgate's pipeline fit (preprocessing + model) vs the library's own fit on the already
  preprocessed arrays, for logistic regression, XGBoost and LightGBM; for logistic regression also
  vs scikit-learn's own preprocessing pipeline on the same raw rows.

Prints seconds, peak MB and the ratios. Targets (issue 3): loading at least 3x faster than
read_sql; fitting overhead at most 10%. Never part of the tests.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgate.sources import demo

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "mlgate_bench"
TABLE = "customers"
QUERY = f"SELECT * FROM {TABLE}"
LINEAR = ("logistic_regression",)  # models that need preprocessing a user would write too


def ensure_table(admin_url: str, n_rows: int) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
        ).first()
        if not exists:
            conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    url = sa.engine.make_url(admin_url).set(database=DATABASE)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        present = (
            sa.inspect(conn).has_table(TABLE)
            and conn.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one() == n_rows
        )
    if not present:
        print(f"writing {n_rows:,} rows into {DATABASE}.{TABLE} ...", flush=True)
        frame = demo.churn_frame(n_rows=n_rows, seed=7)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
            frame.head(0).to_sql(TABLE, conn, index=False)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False)
        raw = engine.raw_connection()
        try:
            with (
                raw.cursor() as cursor,
                cursor.copy(  # type: ignore[attr-defined]
                    f"COPY {TABLE} FROM STDIN WITH (FORMAT csv)"
                ) as copy,
            ):
                copy.write(buffer.getvalue())
            raw.commit()
        finally:
            raw.close()
    engine.dispose()
    return url.render_as_string(hide_password=False)


def child(kind: str, url: str, algorithm: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    import pandas as pd

    from mlgate.sources.sql import SqlSource

    if kind == "load-read_sql":
        engine = sa.create_engine(url)
        started = time.perf_counter()
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text(QUERY), conn)
        return {"seconds": time.perf_counter() - started, "rows": len(frame)}
    source = SqlSource("bench", url)
    started = time.perf_counter()
    frame = source.read_query(QUERY)
    loaded = time.perf_counter() - started
    if kind == "load-mlgate":
        return {"seconds": loaded, "rows": len(frame)}

    from mlgate.schema import feature_columns
    from mlgate.training import data as training_data
    from mlgate.training.catalogue import CATALOGUE
    from mlgate.training.preprocess import build_pipeline, layout_of

    spec = CATALOGUE[algorithm]
    prepared = training_data.prepare(
        frame, target=demo.TARGET, drop=(demo.ID_COLUMN,), task="classification"
    )
    features = feature_columns(prepared.columns)
    layout = layout_of(features, prepared.X)
    pipeline = build_pipeline(features, spec.build("classification", layout), spec)
    fit_params = {
        f"model__{k}": v for k, v in (spec.fit_params(layout) if spec.fit_params else {}).items()
    }
    if kind == "fit-mlgate":
        from sklearn.base import clone

        # Preprocessing alone first: timed, and it warms the allocator as the direct run's
        # (untimed) preprocessing does, so both fits start from the same state.
        started = time.perf_counter()
        clone(pipeline[:-1]).fit_transform(prepared.X, prepared.y)
        preprocess = time.perf_counter() - started
        started = time.perf_counter()
        pipeline.fit(prepared.X, prepared.y, **fit_params)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "preprocess": preprocess, "rows": len(prepared.X)}
    if kind == "fit-sklearn":
        # What a user calling scikit-learn directly on the raw rows writes: its own imputers,
        # encoder and scaler in a pipeline, then the same model.
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        numeric = [c.name for c in features if c.type in ("number", "boolean")]
        categorical = [c.name for c in features if c.type == "string"]
        idiomatic = make_pipeline(
            ColumnTransformer(
                [
                    (
                        "n",
                        make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                        numeric,
                    ),
                    (
                        "c",
                        make_pipeline(
                            SimpleImputer(strategy="constant", fill_value="missing"),
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                        ),
                        categorical,
                    ),
                ]
            ),
            spec.build("classification", layout),
        )
        started = time.perf_counter()
        idiomatic.fit(prepared.X, prepared.y)
        return {"seconds": time.perf_counter() - started, "rows": len(prepared.X)}
    arrays = pipeline[:-1].fit_transform(prepared.X, prepared.y)  # not timed: the same arrays
    model = spec.build("classification", layout)
    direct = {k.removeprefix("model__"): v for k, v in fit_params.items()}
    started = time.perf_counter()
    model.fit(arrays, prepared.y.to_numpy(), **direct)
    return {"seconds": time.perf_counter() - started, "rows": len(prepared.X)}


def measure(kind: str, url: str, algorithm: str = "") -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--algorithm", algorithm],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=ADMIN_URL, help="an admin URL of the PostgreSQL server")
    parser.add_argument("--algorithms", default="logistic_regression,xgboost,lightgbm")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = child(args.child, args.url, args.algorithm)
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return

    url = ensure_table(args.url, args.rows)
    print(f"mlgate training benchmark: {args.rows:,} rows in PostgreSQL, one process each")
    mine, theirs = measure("load-mlgate", url), measure("load-read_sql", url)
    print(
        f"  load   mlgate (ADBC)   {mine['seconds']:7.2f} s  peak {mine['peak_mb']:7.0f} MB\n"
        f"         pandas.read_sql {theirs['seconds']:7.2f} s  peak {theirs['peak_mb']:7.0f} MB\n"
        f"         speed-up {theirs['seconds'] / mine['seconds']:.1f}x (target >= 3x)"
    )
    for algorithm in args.algorithms.split(","):
        mine, theirs = measure("fit-mlgate", url, algorithm), measure("fit-direct", url, algorithm)
        overhead = mine["seconds"] / theirs["seconds"] - 1
        model_only = (mine["seconds"] - mine["preprocess"]) / theirs["seconds"] - 1
        print(
            f"  fit    {algorithm:<20} mlgate {mine['seconds']:7.2f} s "
            f"(peak {mine['peak_mb']:5.0f} MB)"
            f"  direct {theirs['seconds']:7.2f} s (peak {theirs['peak_mb']:5.0f} MB)"
            f"  overhead {100 * overhead:+.1f}% (target <= 10%)\n"
            f"         of which preprocessing raw rows {mine['preprocess']:.2f} s; "
            f"the model's own fit inside mlgate vs direct: {100 * model_only:+.1f}%"
        )
        if algorithm in LINEAR:
            idiomatic = measure("fit-sklearn", url, algorithm)
            print(
                f"         scikit-learn's own pipeline (imputers, OneHotEncoder, scaler) on the "
                f"raw rows {idiomatic['seconds']:.2f} s: mlgate "
                f"{100 * (mine['seconds'] / idiomatic['seconds'] - 1):+.1f}% against it"
            )


if __name__ == "__main__":
    main()
