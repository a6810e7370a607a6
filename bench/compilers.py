"""Compiled serving benchmark: our hand compilers against ONNX Runtime on the same rows.

    .venv/bin/python bench/compilers.py [--repeat 400]

Trains three classifiers through mlgate (in memory: tests/fakes.py) on one table of 4,000 rows
of six numbers with missing values (no category: the catalogue's XGBoost splits on categories
natively, which runtime/trees.py leaves to the library): logistic regression, a random forest
(100 trees) and XGBoost (100 trees, depth 6). Each is then scored on the same conformed rows, 1 row
and 1,000 rows, held as serving holds a request's (schema.Table: a numpy array a column; the
library gets them as a DataFrame), three ways:

* hand compiled: runtime/fastpath.py's compiled preprocessor, then runtime/scorers.py's fast
  scorer on one thread (for XGBoost up to COMPILED_ROWS rows that is runtime/trees.py's walk):
  what `mlgate serve` does today, and the baseline of the ratios;
* ONNX Runtime: the version's whole pipeline as exported (exports/convert.py), one session with
  one intra-op and one inter-op thread; each call builds its feed (one [N, 1] array a column)
  from the same Table, as serving it would;
* the library: the scikit-learn pipeline's predict_proba, for reference.

Interleaved rounds (the first warms up); p50 and p99 of a call, and each way's p50 as a multiple
of the hand compiled one's (x2.00: twice its time). Never part of the tests.

Figures, 2026-07-14, 2-core VM (shared), Python 3.11, onnxruntime 1.20.0, skl2onnx 1.20.0,
`--repeat 400`:

    logistic_regression, 1 row:      hand   13.7 us  ONNX Runtime   18.1 us (x1.32)  sklearn x788
    logistic_regression, 1,000 rows: hand  136.3 us  ONNX Runtime  138.2 us (x1.01)  sklearn x81
    random_forest, 1 row:            hand  376.9 us  ONNX Runtime   21.4 us (x0.06)  sklearn x79
    random_forest, 1,000 rows:       hand 32.8 ms    ONNX Runtime  32.3 ms  (x0.98)  sklearn x1.94
    xgboost, 1 row:                  hand   71.3 us  ONNX Runtime   25.2 us (x0.35)  sklearn x83
    xgboost, 1,000 rows:             hand 19.3 ms    ONNX Runtime  35.1 ms  (x1.82)  sklearn x1.26

    (p50s; p99s ran to milliseconds on every way, the VM being shared with four other runs)

Conclusion: keep the compiled preprocessor and the linear scorer (ONNX Runtime is
no faster at 1 row or 1,000), and keep XGBoost's library path for large batches (ONNX Runtime
takes 1.8x its time at 1,000 rows). For trees at small batches the numbers do not keep ours: ONNX
Runtime scores one row of the 100-tree forest in 21 us against 377 us for scorers.py's per-tree
loop (x0.06), and one XGBoost row in 25 us against 71 us for trees.py's walk (x0.35). That makes
ONNX Runtime the candidate to replace scorers.py's forest path and trees.py for batches of a few
rows, for a later issue: it computes in float32, so it would pass trees.py's 1e-6 agreement
check, not scorers.py's 1e-12 one, and each version would carry a converted graph and a session.
Nothing is changed here on these numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_fit_every_row import World

from mlgate.exports.convert import convert
from mlgate.registry import formats
from mlgate.registry.model import ModelVersion
from mlgate.runtime.fastpath import compile_preprocessor
from mlgate.runtime.scorers import fast_scorer
from mlgate.schema import Table, conform, feature_columns

ALGORITHMS = ("logistic_regression", "random_forest", "xgboost")
SIZES = (1, 1_000)


def table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n_rows) for i in range(6)})
    margin = frame["x0"] - 0.5 * frame["x1"] + frame["x2"] * frame["x3"] + np.sin(frame["x4"])
    frame["churned"] = np.where(margin + rng.normal(scale=0.5, size=n_rows) > 0, "yes", "no")
    for i in range(6):  # a few missing values in every number
        frame.loc[rng.random(n_rows) < 0.03, f"x{i}"] = np.nan
    return frame


def ways(version: ModelVersion, pipeline: Any) -> dict[str, Callable[[Table, pd.DataFrame], Any]]:
    """name -> score(rows as serving holds them, the same as a frame)."""
    import onnxruntime as ort

    transform = compile_preprocessor(pipeline[:-1])
    scorer = fast_scorer(pipeline[-1], classifier=True, threads=1)
    assert transform is not None and scorer is not None, "no compiled path for this model"

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        convert(version, pipeline), options, providers=["CPUExecutionProvider"]
    )
    columns = feature_columns(version.columns)
    inputs = [i.name for i in session.get_inputs()]
    kinds = {c.name: (object if c.type in ("string", "text") else np.float32) for c in columns}
    assert set(inputs) == set(kinds), (inputs, list(kinds))

    def onnx(rows: Table, frame: pd.DataFrame) -> Any:
        feed = {}
        for name in inputs:
            values = np.asarray(rows[name])
            if kinds[name] is object:  # a missing category is the empty string in the graph
                values = np.where(pd.isna(values), "", values).astype(object)
            feed[name] = values.astype(kinds[name]).reshape(-1, 1)
        return session.run(["probabilities"], feed)[0]

    return {
        "hand compiled": lambda rows, frame: scorer(transform(rows))[0],
        "ONNX Runtime (1 thread)": onnx,
        "scikit-learn pipeline": lambda rows, frame: pipeline.predict_proba(frame),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=400, help="1-row calls a way and round")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    frame = table(4_000)
    world = World(frame)
    rows = table(1_000, seed=1).drop(columns="churned")
    print(
        f"mlgate compiled serving benchmark (python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores): p50 / p99 of a call"
    )
    for algorithm in ALGORITHMS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = world.train("churned", algorithm, report=False)
            pipeline = formats.load(
                world.artifacts.get(version.artifact.key),
                expected_sha256=version.artifact.sha256,
                ref=version.ref,
                fmt=version.artifact.format,
            )
            scoring = ways(version, pipeline)
        conformed = conform(rows, version.columns)
        names = [c.name for c in version.columns]
        for size in SIZES:
            batch = conformed[names].iloc[:size].reset_index(drop=True)
            held = Table({n: batch[n].to_numpy() for n in names}, size)
            answers = {name: np.asarray(score(held, batch)) for name, score in scoring.items()}
            reference = answers["scikit-learn pipeline"]
            for name, got in answers.items():  # every way answers alike, or it is not a rival
                np.testing.assert_allclose(got, reference, atol=1e-4, err_msg=name)
            calls = max(5, args.repeat // (1 if size == 1 else 40))
            samples: dict[str, list[float]] = {name: [] for name in scoring}
            for round_ in range(6):
                for name, score in scoring.items():
                    for _ in range(calls // 5):
                        started = time.perf_counter()
                        score(held, batch)
                        if round_:
                            samples[name].append(time.perf_counter() - started)
            print(f"  {algorithm}, {size:,} row{'s' if size > 1 else ''}:")
            base = float(np.median(samples["hand compiled"]))
            for name, taken in samples.items():
                p50, p99 = float(np.median(taken)), float(np.quantile(taken, 0.99))
                ratio = "" if name == "hand compiled" else f"  x{p50 / base:.2f}"
                print(f"    {name:<24} p50 {1e6 * p50:9.1f} us  p99 {1e6 * p99:9.1f} us{ratio}")


if __name__ == "__main__":
    main()
