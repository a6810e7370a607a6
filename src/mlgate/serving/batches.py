"""Consumers' batch jobs: a CSV or Parquet file of rows, scored in chunks on the server.

* **Upload**: streamed to a file on disk as it arrives (never held in memory whole), checked
  (the format, the model's columns in the header, the size the plan allows), then put in the
  artifact store under `batches/<id>/input.<format>`. A refused or cut-off upload leaves nothing.
* **A job** (a row of the jobs table, kind `batch`) runs on this process's batch runner, a chunk
  of CHUNK_ROWS rows at a time: score, write the chunk's result part, and count it.
* **Counting, exactly once**: before a chunk is scored its rows are counted against the plan's
  row quotas and spend cap (the same atomic counters as calls; a hard limit stops the job there,
  saying how many rows were done). After it is scored, one transaction writes the chunk's usage
  to the ledger under the id `batch:<job>:<chunk>` (written at most once, by any process) and the
  job's progress. A process that dies mid-job leaves the chunk uncommitted; the next process to
  start resumes the job from its last committed chunk, so no row is metered twice. (The quota
  counters may then count the interrupted chunk twice: a quota errs towards the consumer's
  limit, the bill never.)
* **Rows that cannot be scored** (a value of the wrong type, say) are `failed` (empty
  prediction, not metered), each row as it would be alone: when a chunk fails, the rows whose
  values do not parse are scored one by one and the rest together, halved only where a group
  still fails (not 50,000 calls, one a row).
* **Results**: the input's columns plus `prediction` (and `probability_<class>`) and
  `prediction_warnings` (the row's values outside what training saw, as the JSON list the
  prediction protocols answer; empty where none: training/seen.py), downloaded in the input's
  format. They are removed `retention` after the job ends, or when a finished job
  is cancelled; the job then keeps when and why (`removed_at`, `removed_by`), its status names
  no result link, and asking for the result is Gone (410), saying so.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mlgate.access.audit import audited
from mlgate.access.model import Principal
from mlgate.errors import ArtifactError, Conflict, Gone, InvalidInput, NotFound, UnsupportedFormat
from mlgate.jobs.model import FINISHED, Job
from mlgate.jobs.runner import JobCancelled, JobRunner, Outcome, Run, new_job
from mlgate.outcomes import ANSWERED, status_of
from mlgate.plans.enforce import Gate
from mlgate.plans.metering import UsageEvent
from mlgate.registry.doctor import BATCHES
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform, suspect_rows
from mlgate.serving.asking import Asked
from mlgate.serving.offline import PREDICTION
from mlgate.serving.service import seen_with
from mlgate.tracing import span
from mlgate.training.seen import Seen
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.batches")
CHUNK_ROWS = 50_000
WARNINGS = "prediction_warnings"  # a result column: each row's warnings as JSON, "" for none
FORMATS = ("csv", "parquet")
MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
# Tests set this to stop a run after chunk k's part is written and before it is committed, as a
# process killed there would (tests/integration/test_batches.py).
CRASH_HOOK: Callable[[int], None] | None = None


def format_of(content_type: str | None, filename: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    suffix = Path(filename or "").suffix.lower()
    if media in ("text/csv", "application/csv") or suffix == ".csv":
        return "csv"
    if media in ("application/vnd.apache.parquet", "application/x-parquet") or suffix in (
        ".parquet", ".pq",
    ):  # fmt: skip
        return "parquet"
    raise UnsupportedFormat(
        f"a batch is a CSV (text/csv) or Parquet (application/vnd.apache.parquet) file, not "
        f"{media or 'an unnamed body'}"
    )


def _nearest_in_file(missing: str, extra: list[str]) -> str:
    """A missing column, with the file's column of a near name if it has one (a misspelling)."""
    import difflib

    by_folded = {e.casefold(): e for e in extra}
    near = difflib.get_close_matches(missing.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f"{missing} (the file has {by_folded[near[0]][:64]!r})" if near else missing


def inspect_file(path: Path, fmt: str, version: ModelVersion) -> int:
    """The file's row count, after checking that it is what it says and has the model's
    columns; InvalidInput (nothing kept) otherwise."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            names, rows = list(meta.schema_arrow.names), int(meta.metadata.num_rows)
            head = next(meta.iter_batches(batch_size=50), None)
            sample = head.to_pandas() if head is not None else pd.DataFrame(columns=names)
        else:
            sample = pd.read_csv(path, nrows=50)
            names = [str(c) for c in sample.columns]
            with path.open("rb") as handle:
                rows = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            rows = max(0, rows - 1)
    except Exception as exc:  # pandas and pyarrow raise many kinds on a bad file
        raise InvalidInput(f"the file is not a readable {fmt} file: {str(exc)[:300]}") from None
    missing = [c.name for c in version.columns if c.name not in names]
    if missing:
        extra = [n for n in names if n not in {c.name for c in version.columns}]
        said = ", ".join(_nearest_in_file(m, extra) for m in missing[:10])
        raise InvalidInput(f"the file lacks the column(s) {version.ref} reads: {said}")
    taken = {PREDICTION, WARNINGS} | {f"probability_{c}" for c in version.classes or ()}
    if taken & set(names):
        raise InvalidInput(
            f"the file already has column(s) {', '.join(sorted(taken & set(names)))}"
        )
    if rows == 0:
        raise InvalidInput("the file holds no rows")
    return rows  # values are checked as each chunk is scored: a bad row fails alone


def admit_batch(
    gate: Gate,
    resolve: Callable[[str, int | None, str | None], ModelVersion],
    principal: Principal,
    asked: Asked,
    max_batch_bytes: int,
) -> tuple[ModelVersion, int]:
    """Before the upload is read: the version an authorized caller's batch is scored with (a
    subscription's pin wins, as on /predict) if its plan admits it, and the most bytes its file
    may hold (the server's limit, or the plan's where smaller)."""
    admission = gate.open(principal)
    pinned = admission.pinned(asked.model)
    found = resolve(asked.model, pinned or asked.number, None if pinned else asked.alias)
    gate.admit(admission, asked.target, 0, found)
    limit = max_batch_bytes
    if admission.plan is not None and admission.plan.max_batch_bytes is not None:
        limit = min(limit, admission.plan.max_batch_bytes)
    return found, limit


def asked_of(job: Job) -> str:
    """The model as the batch's caller named it (`churn@production`), which reading its status
    or result is authorized against again; jobs from before it was kept name their version."""
    return str(job.spec.get("asked") or f"{job.spec['model']}@{job.spec['version']}")


@audited("batches.submit", lambda a: a["version"].ref)
def submit_batch(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    *,
    version: ModelVersion,
    upload: Path,
    fmt: str,
    account: str,
    key_prefix: str,
    now: datetime,
    asked: str = "",
) -> Job:
    """Register a checked upload as a queued batch job (its file moved into the store); `asked`
    is the model as the caller named it (see asked_of)."""
    rows = inspect_file(upload, fmt, version)
    started = {"rows_done": 0, "rows_failed": 0, "chunks_done": 0, "parts": []}
    job = new_job("batch", {}, now, result=started)  # its spec names its input, under its id
    key = f"{BATCHES}{job.id}/input.{fmt}"
    put_file(artifacts, key, upload)
    job = replace(job, spec={
        "model": version.model_name, "version": version.number, "format": fmt,
        "input": key, "rows": rows, "account": account, "key_prefix": key_prefix,
        "chunk_rows": CHUNK_ROWS, "asked": asked or f"{version.model_name}@{version.number}",
    })  # fmt: skip
    try:
        with uow:
            uow.jobs.add(job)
            uow.commit()
    except BaseException:
        artifacts.delete(key)
        raise
    return job


def batch_of(uow: UnitOfWork, job_id: str, account: str | None) -> Job:
    """The batch job, if `account` (None: an admin) may see it."""
    with uow:
        job = uow.jobs.get(job_id)
    if job is None or job.kind != "batch":
        raise NotFound(f"no batch {job_id[:40]!r}")
    if account is not None and job.spec.get("account") != account:
        raise NotFound(f"no batch {job_id[:40]!r}")  # another's: as if it did not exist
    return job


def describe(job: Job, now: datetime) -> dict[str, Any]:
    spec, result = job.spec, job.result
    total, done = int(spec["rows"]), int(result.get("rows_done", 0))
    eta = None
    if job.state == "running" and job.started_at and done:
        elapsed = (now - job.started_at).total_seconds()
        eta = round(elapsed / done * (total - done), 1)
    return {
        "id": job.id,
        "model": spec["model"],
        "version": spec["version"],
        "format": spec["format"],
        "state": job.state,
        "rows": total,
        "rows_done": done,
        "rows_failed": int(result.get("rows_failed", 0)),
        "eta_seconds": eta,
        "error": job.error,
        "expired": bool(result.get("expired")),
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "result": f"/v1/batches/{job.id}/result" if has_result(job) else None,
        "result_removed_at": result.get("removed_at"),
    }


def has_result(job: Job) -> bool:
    """Whether the job's result can be downloaded: it succeeded and its files are kept. The
    status's link, the portal's button and the result routes all ask this."""
    return job.state == "succeeded" and not job.result.get("expired")


def removed(job: Job, now: datetime, by: str) -> Job:
    """The job as it is kept once its files are removed: `by` is "cancel" or "retention"."""
    return replace(job, result={**job.result, "expired": True, "removed_at": now.isoformat(),
                                "removed_by": by})  # fmt: skip


@audited("batches.cancel", lambda a: a["job"].id)
def cancel_batch(uow: UnitOfWork, artifacts: ArtifactStore, job: Job, now: datetime) -> Job:
    """Cancel a queued or running batch (it stops before its next chunk); a finished one's
    files are removed."""
    with uow:
        current = uow.jobs.get(job.id) or job
        if current.state in FINISHED:
            _remove_files(artifacts, current)
            if not current.result.get("expired"):
                current = removed(current, now, "cancel")
                uow.jobs.save(current)
        else:  # its own statement: the runner's progress writes never undo it
            uow.jobs.request_cancel(job.id)
            current = replace(current, cancel_requested=True)
        uow.commit()
    return current


def result_parts(artifacts: ArtifactStore, job: Job) -> Iterator[pd.DataFrame]:
    """The result's parts, in order. Checked here, before anything is sent: Gone when its files
    were removed, Conflict when the job has no result (yet). Not a generator function, whose
    checks would only run at the first part, once a streamed answer had begun: the connection
    would be cut instead of answering the error."""
    if job.result.get("expired"):
        raise _gone(job)
    if not has_result(job):
        raise Conflict(f"batch {job.id} has no result: it is {job.state}")
    keys = [str(k) for k in job.result.get("parts", [])]
    try:
        first = _part(artifacts, keys[0]) if keys else None
    except ArtifactError:  # removed since the job was read (a cancel at the same moment)
        raise _gone(job) from None
    return _parts(artifacts, first, keys[1:])


def _parts(
    artifacts: ArtifactStore, first: pd.DataFrame | None, rest: list[str]
) -> Iterator[pd.DataFrame]:
    if first is not None:
        yield first
    for key in rest:
        part = _part(artifacts, key)
        if first is not None and list(part.columns) != list(first.columns):
            # a job begun before results had WARNINGS, resumed after (or the other way round)
            part = part.reindex(columns=first.columns, fill_value="")
        yield part


def _part(artifacts: ArtifactStore, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(artifacts.get(key)))


def _gone(job: Job) -> Gone:
    when = job.result.get("removed_at")
    why = {"cancel": "the batch was cancelled after it finished",
           "retention": "the retention after the job's end passed"}.get(
        str(job.result.get("removed_by")), "")  # fmt: skip
    return Gone(
        f"batch {job.id}'s result was removed"
        + (f" at {when}" if when else "")
        + (f" ({why})" if why else "")
        + "; submit the file again to score it anew"
    )


def csv_stream(parts: Iterator[pd.DataFrame]) -> Iterator[bytes]:
    header = True
    for part in parts:
        text = io.StringIO()
        part.to_csv(text, index=False, header=header, quoting=csv.QUOTE_MINIMAL)
        header = False
        yield text.getvalue().encode()


def parquet_file(parts: Iterator[pd.DataFrame], folder: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "result.parquet"
    writer = None
    try:
        for part in parts:
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    return path


def put_file(artifacts: ArtifactStore, key: str, path: Path) -> None:
    """Into the store without reading the file into memory where the store allows."""
    put = getattr(artifacts, "put_file", None)
    if put is not None:
        put(key, path)
    else:
        artifacts.put(key, path.read_bytes())


class Stopped(BaseException):
    """Raised by a test's CRASH_HOOK: the run ends as a killed process's would."""


class BatchRunner:
    """Runs batch jobs on one thread of this process (scoring uses the model's own threads) on
    the job engine, which beats for them; resumes the ones a dead process left."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        artifacts: ArtifactStore,
        predictors: PredictorCache,
        gate: Callable[[], Gate],
        clock: Callable[[], datetime],
        *,
        retention: timedelta = timedelta(days=7),
        dask_address: str | None = None,
        seen: Callable[[ModelVersion], Seen | None] | None = None,
    ) -> None:
        self._uow = uow
        self._artifacts = artifacts
        self._predictors = predictors
        self._gate = gate
        self._clock = clock
        self.retention = retention
        self.dask_address = dask_address  # set: the chunks are scored on that cluster
        self._seen = seen  # what a version's training rows showed: the rows' warnings
        self._runner = JobRunner(uow, clock, kind="batch", name="batch")

    def start(self, job_id: str) -> None:
        self._runner.start(job_id, self._work)

    def resume(self) -> list[str]:
        """Take over the batch jobs whose process is gone (this host's dead pid, or a stopped
        heartbeat anywhere); each resumes after its last committed chunk."""
        return self._runner.resume_gone(self._work)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        return self._runner.wait(job_id, timeout)

    def expire(self) -> int:
        """Remove the results of batches finished more than `retention` ago."""
        n = 0
        with self._uow() as uow:
            old = uow.jobs.finished_before("batch", self._clock() - self.retention)
        for job in old:
            if not job.result.get("expired"):
                _remove_files(self._artifacts, job)
                with self._uow() as uow:
                    uow.jobs.save(removed(job, self._clock(), "retention"))
                    uow.commit()
                n += 1
        return n

    def shutdown(self) -> None:
        """Stop taking chunks: a running batch stays running, for the next process to resume."""
        self._runner.shutdown(wait=False, cancel=False)

    def _work(self, run: Run) -> Outcome | None:
        try:
            return self._score_file(run)
        except JobCancelled:
            raise
        except Exception as exc:
            log.exception("batch %s failed", run.job.id)
            line = f"the batch failed: {str(exc)[:300]}"
            return Outcome("failed", line, error=line)

    def _score_file(self, run: Run) -> Outcome | None:
        """Score the chunks not yet committed; None when another process committed one first
        (the job is its now)."""
        job = run.job
        spec = job.spec
        version = resolve_version(self._uow(), spec["model"], int(spec["version"]))
        predictor = self._predictors.get(version)
        consumer = str(spec["account"]).removeprefix("consumer:")
        is_consumer = str(spec["account"]).startswith("consumer:")
        seen = None if self._seen is None else seen_with(predictor, self._seen)
        with tempfile.TemporaryDirectory() as folder, self._scorer(version) as score:
            path = _local(self._artifacts, spec["input"], Path(folder))
            start = int(job.result.get("chunks_done", 0))
            for k, chunk in enumerate(_chunks(path, spec["format"], int(spec["chunk_rows"]))):
                if k < start:
                    continue
                current = run.check()  # raises JobCancelled: the job stops before this chunk
                overage = 0
                if is_consumer:
                    overage, refusal = self._gate().reserve_rows(
                        consumer, len(chunk), spec["model"], int(spec["version"])
                    )
                    if refusal is not None:
                        done = int(current.result.get("rows_done", 0))
                        line = f"stopped after {done:,} of {int(spec['rows']):,} rows: {refusal}"
                        return Outcome("failed", line, error=line)
                started = time.perf_counter()
                said: dict[str, str | int | None] = {
                    "mlgate.model": version.model_name, "mlgate.version": version.number,
                    "mlgate.batch.chunk": k, "mlgate.rows": len(chunk),
                }  # fmt: skip
                with span("batch chunk", said) as traced:
                    scored, failed = (
                        score(chunk) if score else score_chunk(chunk, version, predictor.score)
                    )
                    if traced is not None:
                        traced.set_attribute("mlgate.batch.failed_rows", failed)
                scored[WARNINGS] = _warnings_column(seen, chunk, version, scored)
                part = f"{BATCHES}{job.id}/part-{k:05d}.parquet"
                buffer = io.BytesIO()
                scored.to_parquet(buffer, index=False)
                self._artifacts.put(part, buffer.getvalue())
                latency = (time.perf_counter() - started) * 1000
                if CRASH_HOOK is not None:
                    CRASH_HOOK(k)
                if not self._commit(current, k, part, len(chunk), failed, overage, latency):
                    return None  # another process committed this chunk: it has the job
        return Outcome("succeeded", "done")

    @contextlib.contextmanager
    def _scorer(self, version: ModelVersion) -> Iterator[Callable[[pd.DataFrame], Any] | None]:
        """On a Dask cluster: each chunk is sent to a worker and scored there with the version's
        artifact (loaded on the worker with the same sha256 and trust-list checks); None: here."""
        if not self.dask_address:
            yield None
            return
        from mlgate.training.distributed import connect

        with connect(self.dask_address) as client:
            blob = client.scatter(self._artifacts.get(version.artifact.key), broadcast=True)

            def score(chunk: pd.DataFrame) -> Any:
                return client.submit(_score_on_worker, chunk, version, blob, pure=False).result()

            yield score

    def _commit(self, job: Job, k: int, part: str, rows: int, failed: int, overage: int,
                latency: float) -> bool:  # fmt: skip
        spec = job.spec
        good = rows - failed
        event = UsageEvent(self._clock(), str(spec["account"]), str(spec["key_prefix"]),
                           str(spec["model"]), int(spec["version"]), status_of(ANSWERED),
                           good, latency,
                           overage_rows=min(overage, good))  # fmt: skip
        values = event.values
        values[0] = 1 if k == 0 else 0  # the batch is one request
        with self._uow() as uow:
            if not uow.usage.add_batch(f"batch:{job.id}:{k}", {event.key: values}, self._clock()):
                return False
            result = dict(job.result)
            result["rows_done"] = int(result.get("rows_done", 0)) + rows
            result["rows_failed"] = int(result.get("rows_failed", 0)) + failed
            result["chunks_done"] = k + 1
            result["parts"] = [*result.get("parts", []), part]
            stored = uow.jobs.get(job.id) or job
            uow.jobs.save(
                replace(
                    stored, result=result, progress=result["rows_done"] / max(1, int(spec["rows"]))
                )
            )
            uow.commit()  # fmt: skip
        return True


def _score_on_worker(
    chunk: pd.DataFrame, version: ModelVersion, data: bytes
) -> tuple[pd.DataFrame, int]:
    from mlgate.serving.offline import worker_predictor

    return score_chunk(chunk, version, worker_predictor(version, data).score)


def _chunks(path: Path, fmt: str, size: int) -> Iterator[pd.DataFrame]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=size)


def score_chunk(
    chunk: pd.DataFrame, version: ModelVersion, score: Callable[[Any], Any]
) -> tuple[pd.DataFrame, int]:
    """The chunk with its predictions, and how many of its rows failed (their prediction empty,
    their probabilities NaN). A chunk that cannot be scored whole is not rescored a row at a
    time (50,000 calls: 303 s for one bad value, against 0.14 s now; bench/bad_rows.py): the
    rows `schema.suspect_rows` flags are scored alone, as before, and the others together,
    halved only where a group still fails. Each row gets the prediction it would get alone;
    probabilities agree to a unit in the last place, as a clean chunk's always have."""
    out = chunk.reset_index(drop=True)
    labels = list(version.classes or ())
    predictions = np.full(len(out), None, dtype=object)
    matrix = np.full((len(out), len(labels)), np.nan)
    failed, with_probabilities = 0, bool(labels)
    for rows, scores in _scored_groups(out, version, score):
        if scores is None:
            failed += len(rows)
        elif scores.probabilities is None:
            predictions[rows] = scores.predictions
            with_probabilities = False
        else:
            predictions[rows] = scores.predictions
            matrix[rows] = np.asarray(scores.probabilities, dtype="float64")
    out[PREDICTION] = predictions.tolist()  # a list, so that pandas infers the column's type
    for i, label in enumerate(labels if with_probabilities else ()):
        out[f"probability_{label}"] = matrix[:, i]
    return out, failed


def _scored_groups(
    frame: pd.DataFrame, version: ModelVersion, score: Callable[[Any], Any]
) -> Iterator[tuple[np.ndarray, Any]]:
    """(row positions, their scores, or None for a row that cannot be scored): the whole frame
    in one call where it can be; else the suspect rows one by one and the rest together, a
    group that fails split in two until what fails is a row alone."""
    everything = np.arange(len(frame))
    whole = _try_score(frame, everything, version, score)
    if whole is not None:
        yield everything, whole
        return
    suspect = suspect_rows(frame, version.columns)
    clean = everything[~suspect]
    # The whole frame just failed: when none is suspect, its halves are tried at once.
    pending = _halves(clean) if len(clean) == len(frame) else [clean]
    pending += [everything[row : row + 1] for row in everything[suspect]]
    while pending:
        rows = pending.pop(0)
        if len(rows) == 0:
            continue
        scores = _try_score(frame, rows, version, score)
        if scores is not None or len(rows) == 1:
            yield rows, scores
        else:
            pending[:0] = _halves(rows)


def _halves(rows: np.ndarray) -> list[np.ndarray]:
    return [rows[: len(rows) // 2], rows[len(rows) // 2 :]]


def _try_score(
    frame: pd.DataFrame, rows: np.ndarray, version: ModelVersion, score: Callable[[Any], Any]
) -> Any:
    """The rows' scores, or None where they cannot be scored together."""
    if len(rows) == 0:
        return None
    try:
        return score(conform(frame.iloc[rows], version.columns))
    except (InvalidInput, ValueError, TypeError):
        return None


def _warnings_column(
    seen: Seen | None, chunk: pd.DataFrame, version: ModelVersion, scored: pd.DataFrame
) -> list[str]:
    """Each row's warnings as JSON ("" for none, for a row that failed, and for every row of a
    version without training rows to compare with: the column is there all the same, so that
    every part of a result has the same columns)."""
    column = [""] * len(chunk)
    if seen is None:
        return column
    failed = scored[PREDICTION].isna().to_numpy()
    for row, found in seen.check_read(chunk, version.columns).items():
        if not failed[row]:
            column[row] = orjson.dumps([w.to_json() for w in found]).decode()
    return column


def _local(artifacts: ArtifactStore, key: str, folder: Path) -> Path:
    path_of = getattr(artifacts, "path_of", None)
    if path_of is not None:
        found: Path = path_of(key)
        return found
    path = folder / Path(key).name
    path.write_bytes(artifacts.get(key))
    return path


def _remove_files(artifacts: ArtifactStore, job: Job) -> None:
    for key in [job.spec.get("input"), *job.result.get("parts", [])]:
        if key:
            artifacts.delete(str(key))
