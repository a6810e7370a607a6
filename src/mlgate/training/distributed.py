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
import io
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

from mlgate.errors import InvalidInput
from mlgate.registry.model import Lineage
from mlgate.registry.service import NewVersion
from mlgate.schema import conform, feature_columns
from mlgate.sources import partitions
from mlgate.sources.model import SourceConfig
from mlgate.sources.sql import SqlSource
from mlgate.training import data as training_data
from mlgate.training.catalogue import Algorithm
from mlgate.training.evaluate import Outputs, evaluate, outputs_of
from mlgate.training.preprocess import build_preprocessor, layout_of

DASK_ALGORITHMS = ("logistic_regression", "linear_regression", "xgboost", "lightgbm")
SQL_KINDS = ("sql",)  # sources.urls: SQLAlchemy URLs, as opposed to files
SAMPLE_ROWS = 50_000  # the preprocessor's sample, drawn from every partition
NEWTON_STEPS = 50
MAX_CLASSES = 1_000
Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class DaskFit:
    new: NewVersion
    n_rows_without_target: int
    warnings: tuple[str, ...]


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


def fit_on_dask(
    client: Any,
    config: SourceConfig,
    algorithm: Algorithm,
    *,
    table: str,
    target: str,
    drop: tuple[str, ...],
    params: dict[str, Any] | None,
    task: Any,
    test_size: float,
    seed: int,
    partition_count: int | None,
    partition_by: str | None,
    lineage: Callable[[int, str], Lineage],
    progress: Progress,
) -> DaskFit:
    """Fit `algorithm` on the cluster's partitions of `table`; what to register, which the
    caller does while `client` is open (the snapshot's parts are computed as they are written).
    `lineage(n_rows, data_sha256)` records where the rows came from."""
    from dask.delayed import delayed

    if config.kind not in SQL_KINDS:
        raise InvalidInput(
            f"on a Dask cluster mlgate reads SQL tables; {config.name!r} is {config.kind}"
        )
    workers = len(client.scheduler_info()["workers"])
    source = SqlSource(config.name, config.url)
    try:
        plan = partitions.plan(
            source, table, partitions=partition_count or max(4, 4 * workers), column=partition_by
        )
    finally:
        source.close()
    progress("read", f"reading {table} in {len(plan.queries)} partitions by {plan.column} "
                     f"({plan.method}) on {workers} Dask workers")  # fmt: skip
    frame = partitions.to_dask(config, plan)
    parts = frame.to_delayed()
    per_part = max(1, SAMPLE_ROWS // max(1, len(parts)))
    classify = task != "regression"

    def survey(part: pd.DataFrame) -> tuple[pd.DataFrame, list[Any] | None, int, int, str]:
        """One read of every part for what the fit needs first: a sample for the preprocessor,
        the target's classes (None: too many to be classes), the counts and a fingerprint."""
        labels = part[target].dropna().unique().tolist() if classify else []
        missing = int(part[target].isna().sum())
        few = labels if len(labels) <= MAX_CLASSES else None
        return part.head(per_part), few, len(part), missing, _digest(part, target)

    surveyed = client.gather(client.compute([delayed(survey)(p) for p in parts]))
    sample = pd.concat([s[0] for s in surveyed], ignore_index=True)
    n_rows = int(sum(s[2] for s in surveyed))
    without_target = int(sum(s[3] for s in surveyed))
    fingerprint = hashlib.sha256(
        ("\n".join([str(len(surveyed)), *(s[4] for s in surveyed)])).encode()
    ).hexdigest()
    if partition_by is None and plan.column not in (*drop, target):
        drop = (*drop, plan.column)  # a primary key identifies rows; it predicts nothing
    prepared = training_data.prepare(
        sample, target=target, drop=drop, task=task,
        tasks=[t for t in algorithm.tasks if t in ("classification", "regression")],
    )  # fmt: skip
    task = prepared.task
    columns = prepared.columns
    names = [c.name for c in columns]
    features = feature_columns(columns)
    classes = None
    if task == "classification":
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
    del surveyed
    key = plan.column
    in_holdout = _holdout(key, seed, test_size)
    sample_train = sample[~in_holdout(sample) & sample[target].notna()]
    X_sample = conform(sample_train[names], columns)
    y_sample = _codes(sample_train[target], task, classes)
    preprocessor = build_preprocessor(features, algorithm).fit(X_sample, y_sample)
    layout = layout_of(features, X_sample)
    estimator = algorithm.build(task, layout, params)

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
    designed = [delayed(design, nout=2)(p) for p in parts]
    futures = client.compute([d[0] for d in designed] + [d[1] for d in designed])
    train_blocks, held_parts = futures[: len(parts)], futures[len(parts) :]
    sizes = client.gather([client.submit(lambda b: len(b[1]), b) for b in train_blocks])
    n_train = int(sum(sizes))
    progress(
        "fit", f"fitting {algorithm.name} ({task}) on {n_train:,} rows across {workers} workers"
    )
    started = time.perf_counter()
    local = _fit(algorithm.name, estimator, client, train_blocks, sizes, task, progress)
    fit_seconds = time.perf_counter() - started
    pipeline = Pipeline([("preprocess", preprocessor), ("model", local)])
    client.cancel(train_blocks)  # the workers' memory goes to scoring and the snapshot
    del train_blocks

    progress("evaluate", "scoring the holdout rows on the workers")

    def score(held: pd.DataFrame) -> tuple[np.ndarray, Outputs]:
        outputs = outputs_of(task, pipeline, conform(held[names], columns))
        return _codes(held[target], task, classes), outputs

    scored = client.gather([client.submit(score, h) for h in held_parts])
    client.cancel(held_parts)
    del held_parts
    y_test = np.concatenate([s[0] for s in scored])
    outputs = Outputs(
        np.concatenate([s[1].predictions for s in scored]),
        None if task == "regression" else np.concatenate([s[1].probabilities for s in scored]),
    )
    evaluation = evaluate(task, y_test, outputs, y_sample, n_classes=len(classes or ()), seed=seed)

    progress("register", f"writing the snapshot ({len(parts)} Parquet parts) and registering")
    snapshot = _ParquetParts(client, parts, ahead=workers)
    attachments: dict[str, Callable[[], bytes]] = {
        f"snapshot/part-{i:05d}.parquet": snapshot.writer(i) for i in range(len(parts))
    }
    notes = (
        *prepared.notes,
        f"trained on a Dask cluster of {workers} workers: {len(parts)} partitions of {table} "
        f"by {key} ({plan.method}); preprocessing fitted on {len(X_sample):,} sample rows",
    )
    details: dict[str, Any] = {
        "evaluation": evaluation.to_json(),
        "notes": list(notes),
        "n_train": n_train,
        "requested_params": params or {},
        "distributed": {
            "workers": workers, "partitions": len(parts), "partitioned_by": key,
            "method": plan.method, "sample_rows": len(X_sample),
        },
    }  # fmt: skip
    from mlgate.training.service import library_versions

    new = NewVersion(
        task=task, target=target, algorithm=algorithm.name, estimator=pipeline,
        params=_params(local), metrics=evaluation.metrics, columns=columns, classes=classes,
        lineage=lineage(n_rows, fingerprint), library_versions=library_versions(),
        fit_seconds=fit_seconds, artifact_format=algorithm.format, report=details,
        attachments=attachments,
    )  # fmt: skip
    return DaskFit(new, without_target, notes)


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


def _fit(
    name: str, estimator: Any, client: Any, blocks: list[Any], sizes: list[int], task: Any,
    progress: Progress,
) -> Any:  # fmt: skip
    if name == "linear_regression":
        ztz, zty, _ = _sums(client, blocks, None)
        theta = np.linalg.lstsq(ztz, zty, rcond=None)[0]
        estimator.coef_, estimator.intercept_ = theta[1:], float(theta[0])
        estimator.n_features_in_, estimator.rank_ = len(theta) - 1, int(np.linalg.matrix_rank(ztz))
        estimator.singular_ = np.linalg.svd(ztz, compute_uv=False)
        return estimator
    if name == "logistic_regression":
        penalty = 1.0 / float(estimator.get_params().get("C", 1.0))
        width = client.gather(client.submit(lambda b: b[0].shape[1], blocks[0])) + 1
        theta = np.zeros(width)
        for step in range(1, NEWTON_STEPS + 1):
            hessian, gradient, loss = _sums(client, blocks, theta)
            ridge = np.full(width, penalty)
            ridge[0] = 0.0  # the intercept is not penalised, as in scikit-learn
            gradient = gradient + ridge * theta
            change = np.linalg.solve(hessian + np.diag(ridge), gradient)
            theta = theta - change
            progress("fit", f"Newton step {step}: log-loss {loss / sum(sizes):.6f}")
            if np.max(np.abs(change)) < 1e-7 * (1 + np.max(np.abs(theta))):
                break
        estimator.coef_, estimator.intercept_ = theta[None, 1:], theta[:1]
        estimator.classes_ = np.array([0, 1])
        estimator.n_features_in_, estimator.n_iter_ = width - 1, np.array([step])
        return estimator
    import dask.array as da
    from dask.delayed import delayed

    width = client.gather(client.submit(lambda b: b[0].shape[1], blocks[0]))
    X = da.concatenate([
        da.from_delayed(delayed(lambda b: b[0])(f), shape=(n, width), dtype="float32")
        for f, n in zip(blocks, sizes, strict=True) if n
    ])  # fmt: skip
    dtype = "float64" if task == "regression" else "int64"
    y = da.concatenate([
        da.from_delayed(delayed(lambda b: b[1])(f), shape=(n,), dtype=dtype)
        for f, n in zip(blocks, sizes, strict=True) if n
    ])  # fmt: skip
    settings = estimator.get_params()
    if name == "xgboost":
        import xgboost.dask as xgb_dask

        kind = xgb_dask.DaskXGBRegressor if task == "regression" else xgb_dask.DaskXGBClassifier
        model = kind(**settings)
        model.client = client
        model.fit(X, y)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.ubj")
            model.save_model(path)
            estimator.load_model(path)
        return estimator
    import lightgbm as lgb

    kind = lgb.DaskLGBMRegressor if task == "regression" else lgb.DaskLGBMClassifier
    threads = settings.pop("n_jobs", None)  # each worker's threads train; served as catalogued
    model = kind(client=client, **settings)
    with (
        warnings.catch_warnings()
    ):  # LightGBM's Dask sets each worker's threads itself, and says so
        warnings.filterwarnings("ignore", message="Parameter (n_jobs|num_threads) will be ignored")
        model.fit(X, y)
    local = model.to_local()
    local.set_params(n_jobs=threads)
    return local


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
                self._futures[i] = self._client.compute(delayed(_parquet)(self._parts[i]))
        data: bytes = self._futures.pop(index).result()
        return data


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _params(model: Any) -> dict[str, Any]:
    from mlgate.training.service import _json_safe

    return _json_safe(model.get_params(deep=False))
