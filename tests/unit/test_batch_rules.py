"""Consumers' batch jobs over the in-memory fakes (serving/batches.py): a model trained from an
InMemorySource into an InMemoryArtifactStore, the jobs in InMemoryUnitOfWork, the gate on
MemoryCounters, and chunks of 50 rows. A file is scored once per row and metered exactly (one
request); a hard row quota stops the job between chunks with the count; a run killed between a
chunk's result and its commit resumes elsewhere without metering a row twice; a row that cannot
be scored fails alone; a bad file is refused and leaves nothing; a cancel stops the job; results
expire. Through the HTTP API on SQLite, with 200,000 rows and a Dask cluster:
tests/integration/test_batches.py."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgate.access import accounts
from mlgate.errors import Conflict, Gone, InvalidInput, NotFound
from mlgate.jobs.model import Job
from mlgate.plans import service as plans
from mlgate.plans.enforce import Gate
from mlgate.plans.limiter import MemoryCounters
from mlgate.processes import this_process
from mlgate.registry.model import ModelVersion
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform
from mlgate.serving import batches
from mlgate.serving.batches import BatchRunner, Stopped
from mlgate.sources import demo
from mlgate.sources.model import SourceConfig
from mlgate.training.service import TrainSpec, train_model
from tests.fakes import (
    FixedClock,
    InMemoryArtifactStore,
    InMemoryDatabase,
    InMemorySource,
    in_memory_uow_factory,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
N = 230  # five chunks of 50, the last one short
HOUR = timedelta(hours=1)
DEAD = this_process().rsplit(":", 1)[0] + ":999999"  # this host, a pid that is not running


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    return demo.churn_frame(n_rows=n, seed=seed).drop(columns=[demo.ID_COLUMN, demo.TARGET])


Trained = tuple[InMemoryDatabase, dict[str, bytes], ModelVersion]


@pytest.fixture(scope="module")
def trained() -> Trained:
    """A churn model trained once for the module."""
    return train_churn()


@functools.cache
def train_churn() -> Trained:
    """A logistic regression of churn trained from an InMemorySource: the metadata, the
    artifacts' bytes (the model and its training snapshot) and the version. Trained once per
    run (the export tests use it too); each test works on copies."""
    db, artifacts, clock = InMemoryDatabase(), InMemoryArtifactStore(), FixedClock(NOW)
    uow = in_memory_uow_factory(db)
    with uow() as work:
        work.sources.add(SourceConfig("crm", "memory://crm", "sql", NOW))
        work.commit()
    source = InMemorySource("crm", demo.churn_frame(n_rows=300), demo.TABLE)
    spec = TrainSpec("churn", "crm", demo.TARGET, "logistic_regression", table=demo.TABLE,
                     drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
    version = train_model(uow(), artifacts, lambda config: source, spec, now=clock).version
    return db, artifacts.files, version


@dataclass
class Shop:
    """acme on a plan of `rows_per_month`, a runner, and the upload folder."""

    uow: Callable[[], Any]
    artifacts: InMemoryArtifactStore
    version: ModelVersion
    clock: FixedClock
    gate: Gate
    runners: list[BatchRunner]
    folder: Path

    def runner(self) -> BatchRunner:
        made = BatchRunner(self.uow, self.artifacts, PredictorCache(self.artifacts),
                           lambda: self.gate, self.clock)  # fmt: skip
        self.runners.append(made)
        return made

    def submit(self, frame: pd.DataFrame, fmt: str = "parquet") -> Job:
        path = self.folder / f"upload.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return batches.submit_batch(self.uow(), self.artifacts, version=self.version, upload=path,
                                    fmt=fmt, account="consumer:acme", key_prefix="k1",
                                    now=self.clock())  # fmt: skip

    def run(self, job: Job) -> Job:
        runner = self.runner()
        runner.start(job.id)
        return runner.wait(job.id, timeout=60)

    def metered(self) -> tuple[int, int]:
        """(requests, rows) of acme's counted calls this month, from the ledger."""
        with self.uow() as uow:
            totals = uow.usage.totals(datetime(2026, 11, 1, tzinfo=UTC),
                                      datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
        found: tuple[int, int] = totals.get("consumer:acme", (0, 0))
        return found

    def batch_keys(self) -> list[str]:
        return [k for k in self.artifacts.list_keys() if k.startswith("batches/")]

    def result(self, job: Job) -> pd.DataFrame:
        return pd.concat(batches.result_parts(self.artifacts, job), ignore_index=True)


def open_shop(trained: Trained, folder: Path, **plan: Any) -> Shop:
    db, files, version = trained
    uow = in_memory_uow_factory(copy.deepcopy(db))
    artifacts = InMemoryArtifactStore()
    artifacts.files = dict(files)
    clock = FixedClock(NOW)
    accounts.create_consumer(uow(), by=None, name="acme", description="", now=NOW)
    plans.create_plan(uow(), plans.make_plan("bulk", NOW, **plan), by=None)
    plans.subscribe(uow(), by=None, consumer="acme", plan="bulk", now=NOW)
    gate = Gate(MemoryCounters(), uow, clock, cache_seconds=0)
    return Shop(uow, artifacts, version, clock, gate, [], folder)


@pytest.fixture
def shop(
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Shop]:
    monkeypatch.setattr(batches, "CHUNK_ROWS", 50)
    made = open_shop(trained, tmp_path, rows_per_month=1_000_000)
    yield made
    for runner in made.runners:
        runner.shutdown()


def test_a_file_is_scored_once_per_row_and_metered_as_one_request(shop: Shop) -> None:
    frame = rows(N)
    job = shop.submit(frame)
    assert (job.state, job.spec["rows"], job.spec["chunk_rows"]) == ("queued", N, 50)
    done = shop.run(job)
    assert done.state == "succeeded" and done.error is None
    assert (done.result["rows_done"], done.result["rows_failed"]) == (N, 0)
    assert done.result["chunks_done"] == 5 and len(done.result["parts"]) == 5
    scored = shop.result(done)
    expected = (
        PredictorCache(shop.artifacts).get(shop.version).score(conform(frame, shop.version.columns))
    )
    assert scored["prediction"].tolist() == expected.predictions
    assert [c for c in scored.columns if c.startswith("probability_")] == [
        f"probability_{c}" for c in shop.version.classes or ()
    ]
    assert shop.metered() == (1, N)
    assert batches.describe(done, shop.clock())["result"] == f"/v1/batches/{job.id}/result"


def test_a_hard_row_quota_stops_the_job_between_chunks_with_the_count(
    trained: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batches, "CHUNK_ROWS", 50)
    shop = open_shop(trained, tmp_path, rows_per_month=120)
    try:
        done = shop.run(shop.submit(rows(N)))
    finally:
        shop.runners[0].shutdown()
    assert done.state == "failed" and done.result["rows_done"] == 100
    assert (done.error or "").startswith("stopped after 100 of 230 rows: the plan's limit of 120 "
                                         "rows per month is reached")  # fmt: skip
    assert shop.metered() == (1, 100)


def test_a_killed_run_resumes_elsewhere_without_metering_a_row_twice(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(chunk: int) -> None:
        if chunk == 2:  # chunk 2's result is written, its usage not yet committed
            monkeypatch.setattr(batches, "CRASH_HOOK", None)
            raise Stopped

    monkeypatch.setattr(batches, "CRASH_HOOK", crash)
    job = shop.submit(rows(N))
    stopped = shop.run(job)
    assert stopped.state == "running" and stopped.result["chunks_done"] == 2
    assert shop.metered() == (1, 100)
    assert shop.runner().resume() == []  # its process is alive: nobody takes it over
    with shop.uow() as uow:
        uow.jobs.save(replace(stopped, owner=DEAD))  # its process died
        uow.commit()
    other = shop.runner()
    assert other.resume() == [job.id]
    done = other.wait(job.id, timeout=60)
    assert done.state == "succeeded" and done.result["rows_done"] == N
    assert done.log[-2].startswith("resumed by ")
    assert shop.metered() == (1, N)
    assert len(shop.result(done)) == N


def test_a_row_that_cannot_be_scored_fails_alone_and_is_not_metered(shop: Shop) -> None:
    frame = rows(120).astype(object)
    frame.loc[57, "tenure_months"] = "seven"  # not a number: this row fails, the rest score
    done = shop.run(shop.submit(frame, fmt="csv"))
    assert done.state == "succeeded" and done.result["rows_failed"] == 1
    scored = shop.result(done)
    assert pd.isna(scored.loc[57, "prediction"]) and scored["prediction"].notna().sum() == 119
    assert shop.metered() == (1, 119)


def _row_by_row(frame: pd.DataFrame, version: ModelVersion, score: Any) -> pd.DataFrame:
    """What a failed chunk came back as when every row of it was rescored alone."""
    out = frame.reset_index(drop=True)
    labels = list(version.classes or ())
    predictions: list[Any] = []
    matrix = np.full((len(out), len(labels)), np.nan)
    for i in range(len(out)):
        try:
            one = score(conform(out.iloc[i : i + 1], version.columns))
        except (InvalidInput, ValueError, TypeError):
            predictions.append(None)
            continue
        predictions.append(one.predictions[0])
        matrix[i] = one.probabilities[0]
    out["prediction"] = predictions
    for k, label in enumerate(labels):
        out[f"probability_{label}"] = matrix[:, k]
    return out


def _same_as_row_by_row(scored: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same rows, predictions and failures; probabilities to the last bit or one unit in
    the last place (2.2e-16), as a clean chunk scored in one call already differs from its rows
    scored alone (the vectorised arithmetic depends on how many rows are in the call)."""
    pd.testing.assert_series_equal(scored["prediction"], expected["prediction"], check_exact=True)
    pd.testing.assert_frame_equal(scored, expected, check_exact=False, rtol=0, atol=2.3e-16)


class Refusing:
    """The predictor's score, counting its calls, refusing (as a model refuses a value it was
    not fitted for) any rows holding one of the `refused` total_charges."""

    def __init__(self, score: Any, refused: frozenset[float] = frozenset()) -> None:
        self.score, self.refused, self.calls = score, refused, 0

    def __call__(self, rows: pd.DataFrame) -> Any:
        self.calls += 1
        if self.refused & set(rows["total_charges"]):
            raise ValueError("total_charges out of the fitted range")
        return self.score(rows)


def test_one_bad_row_costs_a_chunk_three_calls_not_one_a_row(shop: Shop) -> None:
    frame = rows(1_000, seed=4).astype(object)
    frame.loc[613, "tenure_months"] = "seven"
    score = Refusing(PredictorCache(shop.artifacts).get(shop.version).score)
    scored, failed = batches.score_chunk(frame, shop.version, score)
    # The chunk and the bad row alone fail in conform, before the model: one call, the 999 others
    assert (failed, score.calls) == (1, 1)
    _same_as_row_by_row(scored, _row_by_row(frame, shop.version, score))
    assert pd.isna(scored.loc[613, "prediction"]) and scored["prediction"].notna().sum() == 999


def test_rows_a_model_refuses_are_found_by_halving_each_as_it_would_be_alone(
    shop: Shop,
) -> None:
    frame = rows(1_000, seed=5).astype(object)
    frame.loc[[3, 400], "monthly_charges"] = ["lots", "n/a"]  # do not parse: tried alone
    refused = frozenset(float(v) for v in frame.loc[[10, 777], "total_charges"])  # the model balks
    score = Refusing(PredictorCache(shop.artifacts).get(shop.version).score, refused)
    scored, failed = batches.score_chunk(frame, shop.version, score)
    assert failed == 4 and score.calls < 60  # halving down to 10 and 777, not a call a row
    expected = _row_by_row(frame, shop.version, score)
    _same_as_row_by_row(scored, expected)
    assert expected["prediction"].isna().sum() == 4


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"a,b\n1,2\n", "lacks the column"),
        (rows(3).rename(columns={"tenure_months": "Tenure_Month"}).to_csv(index=False).encode(),
         "tenure_months (the file has 'Tenure_Month')"),
        (rows(3).assign(prediction=1).to_csv(index=False).encode(),
         "already has column(s) prediction"),
        (rows(3).head(0).to_csv(index=False).encode(), "holds no rows"),
    ],
    ids=["columns", "misspelled", "taken", "empty"],
)  # fmt: skip
def test_a_bad_file_is_refused_and_leaves_nothing(shop: Shop, content: bytes, words: str) -> None:
    path = shop.folder / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as refused:
        batches.submit_batch(shop.uow(), shop.artifacts, version=shop.version, upload=path,
                             fmt="csv", account="consumer:acme", key_prefix="k1",
                             now=shop.clock())  # fmt: skip
    assert words in str(refused.value)
    assert shop.batch_keys() == []
    with shop.uow() as uow:
        assert uow.jobs.unfinished() == []


def test_a_parquet_file_that_is_not_one_is_refused(shop: Shop) -> None:
    path = shop.folder / "upload.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match="not a readable parquet file"):
        batches.submit_batch(shop.uow(), shop.artifacts, version=shop.version, upload=path,
                             fmt="parquet", account="consumer:acme", key_prefix="k1",
                             now=shop.clock())  # fmt: skip
    assert shop.batch_keys() == []


def test_a_cancelled_batch_stops_and_a_finished_one_s_files_go(shop: Shop) -> None:
    queued = shop.submit(rows(N))
    cancelled = batches.cancel_batch(shop.uow(), shop.artifacts, queued, shop.clock())
    assert cancelled.cancel_requested and cancelled.state == "queued"
    stopped = shop.run(queued)
    assert stopped.state == "cancelled" and stopped.result["rows_done"] == 0
    assert shop.metered() == (0, 0)
    done = shop.run(shop.submit(rows(60)))
    assert len(shop.batch_keys()) == 1 + 1 + 2  # the cancelled input; this input and 2 parts
    after = batches.cancel_batch(shop.uow(), shop.artifacts, done, shop.clock())
    assert after.result["expired"] and after.state == "succeeded"
    assert not [k for k in shop.batch_keys() if k.startswith(f"batches/{done.id}/")]


def test_a_removed_result_is_gone_when_asked_for_not_once_the_answer_streams(shop: Shop) -> None:
    """result_parts refuses before its first part is read (a route streams what it returns);
    the status names no result link, and says when the files went."""
    done = shop.run(shop.submit(rows(60)))
    assert batches.describe(done, shop.clock())["result"] == f"/v1/batches/{done.id}/result"
    shop.clock.advance(hours=2)
    after = batches.cancel_batch(shop.uow(), shop.artifacts, done, shop.clock())
    described = batches.describe(after, shop.clock())
    assert described["result"] is None and described["expired"]
    assert described["result_removed_at"] == "2026-11-27T14:00:00+00:00"
    with pytest.raises(Gone, match=r"result was removed at 2026-11-27T14:00:00\+00:00 \(the "
                       r"batch was cancelled after it finished\)"):  # fmt: skip
        batches.result_parts(shop.artifacts, after)
    again = batches.cancel_batch(shop.uow(), shop.artifacts, after, shop.clock() + HOUR)
    assert again.result["removed_at"] == after.result["removed_at"]  # the first removal stays


def test_a_result_whose_files_went_meanwhile_is_gone_before_anything_is_sent(shop: Shop) -> None:
    done = shop.run(shop.submit(rows(60)))
    for key in done.result["parts"]:  # a cancel between reading the job and its result
        shop.artifacts.delete(key)
    with pytest.raises(Gone, match="result was removed"):
        batches.result_parts(shop.artifacts, done)
    running = replace(done, state="running")
    with pytest.raises(Conflict, match="has no result: it is running"):
        batches.result_parts(shop.artifacts, running)


def test_results_expire_after_the_retention(shop: Shop) -> None:
    done = shop.run(shop.submit(rows(60)))
    runner = shop.runner()
    assert runner.expire() == 0  # kept a week
    shop.clock.advance(days=7, seconds=1)
    assert runner.expire() == 1 and runner.expire() == 0
    assert shop.batch_keys() == []
    expired = batches.batch_of(shop.uow(), done.id, "consumer:acme")
    assert expired.result["removed_by"] == "retention"
    assert batches.describe(expired, shop.clock())["result"] is None
    with pytest.raises(Gone, match=r"removed at 2026-12-04T12:00:01\+00:00 \(the retention"):
        batches.result_parts(shop.artifacts, expired)


def test_a_batch_is_seen_by_its_consumer_and_admins_only(shop: Shop) -> None:
    job = shop.submit(rows(10))
    assert batches.batch_of(shop.uow(), job.id, "consumer:acme").id == job.id
    assert batches.batch_of(shop.uow(), job.id, None).id == job.id  # an admin
    with pytest.raises(NotFound, match="no batch"):  # another's: as if it did not exist
        batches.batch_of(shop.uow(), job.id, "consumer:globex")
