"""Training on a Dask cluster, for tables larger than one machine's memory.

The workers read the table in parallel partitions (sources/partitions.py) and keep their parts;
nothing of the table passes through this process but a sample. The preprocessor (imputation,
scaling, encoding) is fitted on that sample of the training rows, then applied by each worker to
its parts. The model is fitted where the data is:

* logistic regression (binary) by Newton's method on sums over the parts (each step one pass:
  Zᵀ W Z and Zᵀ (p − y) per part, added up here), with scikit-learn's L2 penalty, so it lands on
  the same optimum as `LogisticRegression` on one machine;
* linear regression by the normal equations, summed over the parts (exact least squares);
* XGBoost through `xgboost.dask`, LightGBM through its Dask estimators.

The result is the same kind of scikit-learn pipeline a single-machine fit gives (the fitted
preprocessor and a local model), registered with the same lineage; the training rows are stored
as a partitioned Parquet snapshot (one file per partition, written one at a time). Rows go to
the holdout by a seeded hash of the partition key, so a rerun splits them alike.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlgate.columns import Column
from mlgate.errors import InvalidInput
from mlgate.registry.model import Task
from mlgate.schema import conform, feature_columns
from mlgate.sources import partitions
from mlgate.sources.model import SourceConfig
from mlgate.sources.sql import SqlSource
from mlgate.training import data as training_data
from mlgate.training.catalogue import Algorithm
from mlgate.training.evaluate import Evaluation, Outputs, evaluate, outputs_of
from mlgate.training.preprocess import build_preprocessor, layout_of
from mlgate.training.steps import json_safe, parquet

DASK_ALGORITHMS = ("logistic_regression", "linear_regression", "xgboost", "lightgbm")
SQL_KINDS = ("sql",)  # sources.urls: SQLAlchemy URLs, as opposed to files
SAMPLE_ROWS = 50_000  # the preprocessor's sample, drawn from every partition
NEWTON_STEPS = 50
MAX_CLASSES = 1_000
Progress = Callable[[str, str], None]


@contextmanager
def connect(address: str) -> Iterator[Any]:
    """A client of the cluster at `address`, or of a new local cluster (`local`: one worker
    process per core, one thread each) that closes with it."""
    from distributed import Client, LocalCluster

    if address == "local":
        local = LocalCluster(
            n_workers=os.cpu_count() or 2, threads_per_worker=1, processes=True,
            dashboard_address=":0",
        )  # fmt: skip
        with local, Client(local) as client:
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise InvalidInput(f"no Dask scheduler answers at {address!r}: {exc}") from None
    with client:
        yield client


def default_address(
    configured: str | None, algorithm: str, *, table: str | None, tuned: bool
) -> str | None:
    """The cluster a training goes to when the server or CLI has MLGATE_DASK_ADDRESS: trainings
    the cluster can do go there, the others stay on this machine."""
    if not configured or configured.lower() in ("none", "off"):
        return None
    if algorithm not in DASK_ALGORITHMS or table is None or tuned:
        return None
    return configured


def check_spec(algorithm: Algorithm | None, *, table: str | None, tuned: bool) -> Algorithm:
    if algorithm is None or algorithm.name not in DASK_ALGORITHMS:
        raise InvalidInput(
            f"on a Dask cluster mlgate trains {', '.join(DASK_ALGORITHMS)}; "
            f"{algorithm.name if algorithm else 'auto'} trains on one machine (leave out --dask)"
        )
    if table is None:
        raise InvalidInput("on a Dask cluster, name a table (or a view): a query is not split")
    if tuned:
        raise InvalidInput("tuning on a Dask cluster is not built yet; tune on a sample first")
    return algorithm


@dataclass(frozen=True)
class DaskRun:
    """What to fit on a cluster: a table's rows, the column to predict and how to split them."""

    table: str
    target: str
    drop: tuple[str, ...] = ()
    params: dict[str, Any] | None = None
    task: Task | None = None  # None: inferred from the target
    test_size: float = 0.2
    seed: int = 42
    partitions: int | None = None  # how many parts the workers read (default: 4 per worker)
    partition_by: str | None = None  # the column to split by (default: the integer primary key)


@dataclass(frozen=True)
class DaskFit:
    """What a cluster fitted, for the caller to register while the client is open (the
    snapshot's parts are computed as the registry writes them)."""

    task: Task
    pipeline: Pipeline
    params: dict[str, Any]
    metrics: dict[str, float]
    columns: tuple[Column, ...]
    classes: tuple[Any, ...] | None
    n_rows: int
    data_sha256: str  # of every part's rows, in order
    fit_seconds: float
    details: dict[str, Any]
    snapshot: dict[str, Callable[[], bytes]]  # one Parquet file a partition
    n_rows_without_target: int
    notes: tuple[str, ...]


def fit_on_dask(
    client: Any, config: SourceConfig, algorithm: Algorithm, run: DaskRun, progress: Progress
) -> DaskFit:
    """Fit `algorithm` on the cluster's partitions of `run.table`: read, survey, design, fit,
    score, each step on the workers where the rows are."""
    read = _read(client, config, run, progress)
    surveyed = _survey(client, read, run, algorithm)
    in_holdout = _holdout(read.plan.column, run.seed, run.test_size)
    designed = _design(client, read, surveyed, run, algorithm, in_holdout, progress)
    task = surveyed.prepared.task
    progress(
        "fit",
        f"fitting {algorithm.name} ({task}) on {designed.n_train:,} rows across "
        f"{read.workers} workers",
    )
    started = time.perf_counter()
    local = _fit(
        algorithm.name, designed.estimator, client, designed.train_blocks, designed.sizes, task,
        progress,
    )  # fmt: skip
    fit_seconds = time.perf_counter() - started
    pipeline = Pipeline([("preprocess", designed.preprocessor), ("model", local)])
    client.cancel(designed.train_blocks)  # the workers' memory goes to scoring and the snapshot

    progress("evaluate", "scoring the holdout rows on the workers")
    evaluation = _score(client, designed, pipeline, surveyed, run)

    progress("register", f"writing the snapshot ({len(read.parts)} Parquet parts) and registering")
    snapshot = _ParquetParts(client, read.parts, ahead=read.workers)
    notes = (
        *surveyed.prepared.notes,
        f"trained on a Dask cluster of {read.workers} workers: {len(read.parts)} partitions of "
        f"{run.table} by {read.plan.column} ({read.plan.method}); preprocessing fitted on "
        f"{designed.n_sample:,} sample rows",
    )
    details: dict[str, Any] = {
        "evaluation": evaluation.to_json(),
        "notes": list(notes),
        "n_train": designed.n_train,
        "requested_params": run.params or {},
        "distributed": {
            "workers": read.workers, "partitions": len(read.parts),
            "partitioned_by": read.plan.column, "method": read.plan.method,
            "sample_rows": designed.n_sample,
        },
    }  # fmt: skip
    return DaskFit(
        task=task,
        pipeline=pipeline,
        params=json_safe(local.get_params(deep=False)),
        metrics=evaluation.metrics,
        columns=surveyed.prepared.columns,
        classes=surveyed.classes,
        n_rows=surveyed.n_rows,
        data_sha256=surveyed.fingerprint,
        fit_seconds=fit_seconds,
        details=details,
        snapshot={
            f"snapshot/part-{i:05d}.parquet": snapshot.writer(i) for i in range(len(read.parts))
        },
        n_rows_without_target=surveyed.n_rows_without_target,
        notes=notes,
    )


@dataclass(frozen=True)
class _Read:
    """The table as the workers read it: one delayed frame a partition."""

    plan: partitions.PartitionPlan
    parts: list[Any]
    workers: int


def _read(client: Any, config: SourceConfig, run: DaskRun, progress: Progress) -> _Read:
    if config.kind not in SQL_KINDS:
        raise InvalidInput(
            f"on a Dask cluster mlgate reads SQL tables; {config.name!r} is {config.kind}"
        )
    workers = len(client.scheduler_info()["workers"])
    source = SqlSource(config.name, config.url)
    try:
        plan = partitions.plan(
            source, run.table, partitions=run.partitions or max(4, 4 * workers),
            column=run.partition_by,
        )  # fmt: skip
    finally:
        source.close()
    progress("read", f"reading {run.table} in {len(plan.queries)} partitions by {plan.column} "
                     f"({plan.method}) on {workers} Dask workers")  # fmt: skip
    return _Read(plan, partitions.to_dask(config, plan).to_delayed(), workers)


@dataclass(frozen=True)
class _Surveyed:
    """What one read of every part tells before the fit: a sample of rows (prepared), the
    target's classes, the counts and the rows' fingerprint."""

    sample: pd.DataFrame
    prepared: training_data.TrainingData
    classes: tuple[Any, ...] | None
    n_rows: int
    n_rows_without_target: int
    fingerprint: str


def _survey(client: Any, read: _Read, run: DaskRun, algorithm: Algorithm) -> _Surveyed:
    from dask.delayed import delayed

    target = run.target
    per_part = max(1, SAMPLE_ROWS // max(1, len(read.parts)))
    classify = run.task != "regression"

    def survey(part: pd.DataFrame) -> tuple[pd.DataFrame, list[Any] | None, int, int, str]:
        """One read of every part for what the fit needs first: a sample for the preprocessor,
        the target's classes (None: too many to be classes), the counts and a fingerprint."""
        labels = part[target].dropna().unique().tolist() if classify else []
        missing = int(part[target].isna().sum())
        few = labels if len(labels) <= MAX_CLASSES else None
        return part.head(per_part), few, len(part), missing, _digest(part, target)

    surveyed = client.gather(client.compute([delayed(survey)(p) for p in read.parts]))
    sample = pd.concat([s[0] for s in surveyed], ignore_index=True)
    fingerprint = hashlib.sha256(
        ("\n".join([str(len(surveyed)), *(s[4] for s in surveyed)])).encode()
    ).hexdigest()
    drop = run.drop
    if run.partition_by is None and read.plan.column not in (*drop, target):
        drop = (*drop, read.plan.column)  # a primary key identifies rows; it predicts nothing
    prepared = training_data.prepare(
        sample, target=target, drop=drop, task=run.task,
        tasks=[t for t in algorithm.tasks if t in ("classification", "regression")],
    )  # fmt: skip
    classes = None
    if prepared.task == "classification":
        if any(s[1] is None for s in surveyed):
            raise InvalidInput(
                f"{target!r} has more than {MAX_CLASSES:,} distinct values: a classification "
                "target needs fewer classes (or train it as a regression)"
            )
        labels = pd.Series([label for s in surveyed for label in s[1] or ()])
        classes = training_data.classes_of(labels)
        if algorithm.name == "logistic_regression" and len(classes or ()) != 2:
            raise InvalidInput(
                "logistic regression on a Dask cluster is built for two classes; "
                f"{target!r} has {len(classes or ())}: use xgboost or lightgbm"
            )
    return _Surveyed(
        sample=sample,
        prepared=prepared,
        classes=classes,
        n_rows=int(sum(s[2] for s in surveyed)),
        n_rows_without_target=int(sum(s[3] for s in surveyed)),
        fingerprint=fingerprint,
    )


@dataclass(frozen=True)
class _Designed:
    """The preprocessor fitted on the sample's training rows, and on the workers each part's
    training rows as the model's matrix and its holdout rows as they are."""

    preprocessor: Any
    estimator: Any  # built for the matrix's layout, not fitted yet
    y_sample: np.ndarray
    n_sample: int
    train_blocks: list[Any]  # futures of (X float32, y)
    held_parts: list[Any]  # futures of frames
    sizes: list[int]  # training rows per part

    @property
    def n_train(self) -> int:
        return int(sum(self.sizes))


def _design(
    client: Any,
    read: _Read,
    surveyed: _Surveyed,
    run: DaskRun,
    algorithm: Algorithm,
    in_holdout: Callable[[pd.DataFrame], np.ndarray],
    progress: Progress,
) -> _Designed:
    from dask.delayed import delayed

    target, task, classes = run.target, surveyed.prepared.task, surveyed.classes
    columns = surveyed.prepared.columns
    names = [c.name for c in columns]
    features = feature_columns(columns)
    sample = surveyed.sample
    sample_train = sample[~in_holdout(sample) & sample[target].notna()]
    X_sample = conform(sample_train[names], columns)
    y_sample = _codes(sample_train[target], task, classes)
    preprocessor = build_preprocessor(features, algorithm).fit(X_sample, y_sample)
    layout = layout_of(features, X_sample)
    estimator = algorithm.build(task, layout, run.params)

    def design(part: pd.DataFrame) -> tuple[tuple[np.ndarray, np.ndarray], pd.DataFrame]:
        """A part's training rows as the model's matrix (float32), and its holdout rows kept
        as they are, for scoring once the model is fitted (the table is not read again)."""
        part = part[part[target].notna()]
        held = in_holdout(part)
        train = part[~held]
        X = preprocessor.transform(conform(train[names], columns))
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        block = (X.astype("float32"), _codes(train[target], task, classes))
        return block, part.loc[held, [*names, target]].reset_index(drop=True)

    progress("prepare", f"preprocessing on the workers (fitted on {len(X_sample):,} sample rows)")
    designed = [delayed(design, nout=2)(p) for p in read.parts]
    futures = client.compute([d[0] for d in designed] + [d[1] for d in designed])
    train_blocks, held_parts = futures[: len(read.parts)], futures[len(read.parts) :]
    sizes = client.gather([client.submit(lambda b: len(b[1]), b) for b in train_blocks])
    return _Designed(
        preprocessor, estimator, y_sample, len(X_sample), train_blocks, held_parts, sizes
    )


def _score(
    client: Any, designed: _Designed, pipeline: Pipeline, surveyed: _Surveyed, run: DaskRun
) -> Evaluation:
    """The fitted pipeline's metrics on the holdout rows, scored where they are."""
    task, classes, columns = surveyed.prepared.task, surveyed.classes, surveyed.prepared.columns
    names = [c.name for c in columns]

    def score(held: pd.DataFrame) -> tuple[np.ndarray, Outputs]:
        outputs = outputs_of(task, pipeline, conform(held[names], columns))
        return _codes(held[run.target], task, classes), outputs

    scored = client.gather([client.submit(score, h) for h in designed.held_parts])
    client.cancel(designed.held_parts)
    y_test = np.concatenate([s[0] for s in scored])
    outputs = Outputs(
        np.concatenate([s[1].predictions for s in scored]),
        None if task == "regression" else np.concatenate([s[1].probabilities for s in scored]),
    )
    return evaluate(
        task, y_test, outputs, designed.y_sample, n_classes=len(classes or ()), seed=run.seed
    )


def _holdout(key: str, seed: int, test_size: float) -> Callable[[pd.DataFrame], np.ndarray]:
    """Rows to the holdout by a seeded hash of the partition key: the same rows every run."""
    cut = int(test_size * 10_000)

    def mask(part: pd.DataFrame) -> np.ndarray:
        hashed = pd.util.hash_pandas_object(part[key].astype(str) + f"#{seed}", index=False)
        return (hashed.to_numpy() % np.uint64(10_000)) < np.uint64(cut)

    return mask


def _codes(y: pd.Series, task: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    if task == "regression":
        return y.to_numpy(dtype="float64")
    values = training_data.normalise_labels(y)
    return pd.Categorical(values, categories=list(classes or ())).codes.astype("int64")


@dataclass(frozen=True)
class _Blocks:
    """The designed training blocks on the workers, (features, target) each, and what every
    algorithm's fit reads beside them."""

    client: Any
    blocks: list[Any]
    sizes: list[int]
    task: Any
    progress: Progress

    def width(self) -> int:
        """The number of designed features (every block has the same)."""
        return int(self.client.gather(self.client.submit(lambda b: b[0].shape[1], self.blocks[0])))

    def arrays(self) -> tuple[Any, Any]:
        """The blocks as one Dask array of features and one of targets (empty blocks left out),
        for the libraries that train on Dask collections."""
        import dask.array as da
        from dask.delayed import delayed

        width = self.width()
        filled = [(f, n) for f, n in zip(self.blocks, self.sizes, strict=True) if n]
        X = da.concatenate([
            da.from_delayed(delayed(lambda b: b[0])(f), shape=(n, width), dtype="float32")
            for f, n in filled
        ])  # fmt: skip
        dtype = "float64" if self.task == "regression" else "int64"
        y = da.concatenate([
            da.from_delayed(delayed(lambda b: b[1])(f), shape=(n,), dtype=dtype)
            for f, n in filled
        ])  # fmt: skip
        return X, y


def _fit(
    name: str, estimator: Any, client: Any, blocks: list[Any], sizes: list[int], task: Any,
    progress: Progress,
) -> Any:  # fmt: skip
    """The fitted estimator: `name`'s fit over the blocks (one function per algorithm)."""
    return _FITS[name](estimator, _Blocks(client, blocks, sizes, task, progress))


def _fit_linear_regression(estimator: Any, on: _Blocks) -> Any:
    """Least squares from the workers' sums of Z'Z and Z'y, solved here."""
    ztz, zty, _ = _sums(on.client, on.blocks, None)
    theta = np.linalg.lstsq(ztz, zty, rcond=None)[0]
    estimator.coef_, estimator.intercept_ = theta[1:], float(theta[0])
    estimator.n_features_in_, estimator.rank_ = len(theta) - 1, int(np.linalg.matrix_rank(ztz))
    estimator.singular_ = np.linalg.svd(ztz, compute_uv=False)
    return estimator


def _fit_logistic_regression(estimator: Any, on: _Blocks) -> Any:
    """Newton's method, each step's Hessian, gradient and log-loss summed on the workers; L2
    as scikit-learn's C says, the intercept unpenalised."""
    penalty = 1.0 / float(estimator.get_params().get("C", 1.0))
    width = on.width() + 1
    theta = np.zeros(width)
    for step in range(1, NEWTON_STEPS + 1):
        hessian, gradient, loss = _sums(on.client, on.blocks, theta)
        ridge = np.full(width, penalty)
        ridge[0] = 0.0  # the intercept is not penalised, as in scikit-learn
        gradient = gradient + ridge * theta
        change = np.linalg.solve(hessian + np.diag(ridge), gradient)
        theta = theta - change
        on.progress("fit", f"Newton step {step}: log-loss {loss / sum(on.sizes):.6f}")
        if np.max(np.abs(change)) < 1e-7 * (1 + np.max(np.abs(theta))):
            break
    estimator.coef_, estimator.intercept_ = theta[None, 1:], theta[:1]
    estimator.classes_ = np.array([0, 1])
    estimator.n_features_in_, estimator.n_iter_ = width - 1, np.array([step])
    return estimator


def _fit_xgboost(estimator: Any, on: _Blocks) -> Any:
    """XGBoost's Dask trainer, its booster loaded into the catalogue's estimator."""
    import xgboost.dask as xgb_dask

    X, y = on.arrays()
    kind = xgb_dask.DaskXGBRegressor if on.task == "regression" else xgb_dask.DaskXGBClassifier
    model = kind(**estimator.get_params())
    model.client = on.client
    model.fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.ubj")
        model.save_model(path)
        estimator.load_model(path)
    return estimator


def _fit_lightgbm(estimator: Any, on: _Blocks) -> Any:
    """LightGBM's Dask trainer, brought back as a local model with the catalogue's threads."""
    import lightgbm as lgb

    X, y = on.arrays()
    settings = estimator.get_params()
    kind = lgb.DaskLGBMRegressor if on.task == "regression" else lgb.DaskLGBMClassifier
    threads = settings.pop("n_jobs", None)  # each worker's threads train; served as catalogued
    model = kind(client=on.client, **settings)
    with (
        warnings.catch_warnings()
    ):  # LightGBM's Dask sets each worker's threads itself, and says so
        warnings.filterwarnings("ignore", message="Parameter (n_jobs|num_threads) will be ignored")
        model.fit(X, y)
    local = model.to_local()
    local.set_params(n_jobs=threads)
    return local


_FITS: dict[str, Callable[[Any, _Blocks], Any]] = {
    "linear_regression": _fit_linear_regression,
    "logistic_regression": _fit_logistic_regression,
    "xgboost": _fit_xgboost,
    "lightgbm": _fit_lightgbm,
}


def _sums(
    client: Any, blocks: list[Any], theta: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Over every part: ZᵀZ and Zᵀy (theta None), or the logistic Hessian, gradient and loss."""

    def one(block: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
        X, y = block
        Z = np.hstack([np.ones((len(X), 1)), X.astype("float64")])
        if theta is None:
            return Z.T @ Z, Z.T @ y, 0.0
        eta = Z @ theta
        p = 1.0 / (1.0 + np.exp(-eta))
        weight = p * (1.0 - p)
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        return (Z * weight[:, None]).T @ Z, Z.T @ (p - y), loss

    results = client.gather([client.submit(one, b, pure=False) for b in blocks])
    return (sum(r[0] for r in results), sum(r[1] for r in results), sum(r[2] for r in results))


def _digest(part: pd.DataFrame, target: str) -> str:
    """sha256 of a part's rows (every column, the key and those dropped included); the parts
    share one schema, so equal rows hash alike in every part."""
    hashed = pd.util.hash_pandas_object(part, index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


class _ParquetParts:
    """The snapshot's parts as Parquet, computed on the workers when the registry writes them,
    one at a time, with as many more in flight as there are workers (each part is read again
    from the source: the cluster never holds the whole table)."""

    def __init__(self, client: Any, parts: list[Any], ahead: int) -> None:
        self._client, self._parts, self._ahead = client, parts, ahead
        self._futures: dict[int, Any] = {}

    def writer(self, index: int) -> Callable[[], bytes]:
        return lambda: self._take(index)

    def _take(self, index: int) -> bytes:
        from dask.delayed import delayed

        for i in range(index, min(index + 1 + self._ahead, len(self._parts))):
            if i not in self._futures:
                self._futures[i] = self._client.compute(delayed(parquet)(self._parts[i]))
        data: bytes = self._futures.pop(index).result()
        return data
