"""Consumers' batch jobs through the API (in process, a real artifact folder and SQLite): a
200,000-row Parquet file scored once per row, equal to scoring in process and metered exactly;
a hard row quota reached mid-job stops it with the count; a run killed between a chunk's result
and its commit resumes in another runner without metering a row twice; bad uploads leave
nothing behind."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.access import accounts
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.plans import service
from mlgate.processes import this_process
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.serving import batches
from mlgate.serving.batches import BatchRunner, Stopped
from mlgate.sources import demo
from tests.integration.shops import open_shop

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
N = 200_000
DEAD = this_process().rsplit(":", 1)[0] + ":999999"  # this host, a pid that is not running


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    return demo.churn_frame(n_rows=n, seed=seed).drop(columns=[demo.ID_COLUMN, demo.TARGET])


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


@pytest.fixture
def shop(services: Services, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A churn model; consumer acme on a plan with a hard quota of 120,000 rows a month."""
    plan = service.make_plan("bulk", NOW, rows_per_month=120_000)
    token = open_shop(services, tmp_path, plan, NOW)
    with TestClient(create_app(services)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def metered_rows(services: Services, account: str = "consumer:acme") -> int:
    with services.uow() as uow:
        found = uow.usage.query(since=datetime(2026, 11, 1, tzinfo=UTC),
                                until=datetime(2026, 12, 1, tzinfo=UTC), account=account,
                                by="month")  # fmt: skip
    return sum(r.rows for r in found if r.status < 400)


def test_a_large_batch_is_scored_once_per_row_and_metered_exactly(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    service.update_plan(services.uow(), "bulk", by=None, rows_per_month=1_000_000)
    services.gate.forget_subscriptions()
    frame = rows(N)
    answer = client.post(
        "/v1/models/churn/batches", headers={**headers, "Content-Type": batches.MEDIA["parquet"]},
        content=parquet(frame),
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.headers["location"] == f"/v1/batches/{job_id}"
    services.batches.wait(job_id, timeout=300)
    status = client.get(f"/v1/batches/{job_id}", headers=headers).json()
    assert status["state"] == "succeeded", status
    assert status["rows_done"] == N and status["rows_failed"] == 0
    got = client.get(f"/v1/batches/{job_id}/result", headers=headers)
    assert got.status_code == 200
    scored = pd.read_parquet(io.BytesIO(got.content))
    assert len(scored) == N
    version = resolve_version(services.uow(), "churn", None)
    expected = services.predictors.get(version).score(conform(frame, version.columns))
    assert scored["prediction"].tolist() == expected.predictions
    np.testing.assert_allclose(scored[[f"probability_{c}" for c in version.classes or ()]],
                               expected.probabilities, atol=0)  # fmt: skip
    assert metered_rows(services) == N
    assert services.artifacts.list_keys()  # the parts are kept until the retention ends
    services.clock.advance(days=8)  # type: ignore[attr-defined]
    assert services.batches.expire() == 1
    assert not [k for k in services.artifacts.list_keys() if k.startswith("batches/")]
    gone = client.get(f"/v1/batches/{job_id}/result", headers=headers)
    assert gone.status_code == 410, gone.text
    assert "removed at 2026-12-05T12:00:00+00:00 (the retention" in gone.json()["detail"]
    assert client.get(f"/v1/batches/{job_id}", headers=headers).json()["result"] is None


def test_a_hard_quota_stops_the_job_with_the_count(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    answer = client.post(
        "/v1/models/churn/batches", headers={**headers, "Content-Type": batches.MEDIA["parquet"]},
        content=parquet(rows(N)),
    )  # fmt: skip
    job_id = answer.json()["id"]
    services.batches.wait(job_id, timeout=300)
    status = client.get(f"/v1/batches/{job_id}", headers=headers).json()
    assert status["state"] == "failed" and status["rows_done"] == 100_000
    assert "stopped after 100,000 of 200,000 rows" in status["error"]
    assert "rows per month" in status["error"]
    assert metered_rows(services) == 100_000


def test_a_killed_run_resumes_without_metering_a_row_twice(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    service.update_plan(services.uow(), "bulk", by=None, rows_per_month=1_000_000)
    services.gate.forget_subscriptions()

    def crash(chunk: int) -> None:
        if chunk == 2:  # chunk 2's result is written, its usage not yet committed
            raise Stopped

    batches.CRASH_HOOK = crash
    try:
        answer = client.post(
            "/v1/models/churn/batches",
            headers={**headers, "Content-Type": batches.MEDIA["parquet"]},
            content=parquet(rows(N)),
        )
        job_id = answer.json()["id"]
        services.batches.wait(job_id, timeout=300)
    finally:
        batches.CRASH_HOOK = None
    with services.uow() as uow:
        job = uow.jobs.get(job_id)
        assert job is not None and job.state == "running" and job.result["chunks_done"] == 2
        uow.jobs.save(replace(job, owner=DEAD))  # its process died
        uow.commit()
    assert metered_rows(services) == 100_000
    other = BatchRunner(services.uow, services.artifacts, services.predictors,
                        lambda: services.gate, services.clock)  # fmt: skip
    assert other.resume() == [job_id]
    done = other.wait(job_id, timeout=300)
    assert done.state == "succeeded" and done.result["rows_done"] == N
    assert metered_rows(services) == N
    got = client.get(f"/v1/batches/{job_id}/result", headers=headers)
    assert len(pd.read_parquet(io.BytesIO(got.content))) == N


def test_csv_batches_count_failed_rows_and_come_back_as_csv(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    frame = rows(500).astype(object)
    frame.loc[7, "tenure_months"] = "seven"  # not a number: this row fails, the rest score
    frame.loc[9, "tenure_months"] = 10_000  # far outside what training saw: a warning
    body = frame.to_csv(index=False).encode()
    answer = client.post("/v1/models/churn/batches",
                         headers={**headers, "Content-Type": "text/csv"}, content=body)  # fmt: skip
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    services.batches.wait(job_id, timeout=120)
    status = client.get(f"/v1/batches/{job_id}", headers=headers).json()
    assert status["state"] == "succeeded" and status["rows_failed"] == 1
    got = client.get(f"/v1/batches/{job_id}/result", headers=headers)
    assert got.headers["content-type"].startswith("text/csv")
    back = pd.read_csv(io.StringIO(got.text))
    assert len(back) == 500 and pd.isna(back.loc[7, "prediction"])
    assert back["prediction"].notna().sum() == 499
    [warning] = json.loads(back.loc[9, "prediction_warnings"])
    assert (warning["column"], warning["kind"], warning["value"]) == (
        "tenure_months", "outside_range", 10_000)  # fmt: skip
    assert pd.isna(back.loc[7, "prediction_warnings"])  # a failed row: no prediction to doubt
    assert metered_rows(services) == 499


def test_a_finished_batch_cancelled_answers_gone_with_when_not_a_cut_connection(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    """A CSV result is streamed: its checks must come before the answer starts."""
    client, headers = shop
    answer = client.post("/v1/models/churn/batches",
                         headers={**headers, "Content-Type": "text/csv"},
                         content=rows(50).to_csv(index=False).encode())  # fmt: skip
    job_id = answer.json()["id"]
    services.batches.wait(job_id, timeout=60)
    link = client.get(f"/v1/batches/{job_id}", headers=headers).json()["result"]
    assert client.get(link, headers=headers).status_code == 200
    services.clock.advance(minutes=5)  # type: ignore[attr-defined]
    cancelled = client.delete(f"/v1/batches/{job_id}", headers=headers).json()
    assert cancelled["result"] is None
    assert cancelled["result_removed_at"] == "2026-11-27T12:05:00+00:00"
    for status in (cancelled, client.get(f"/v1/batches/{job_id}", headers=headers).json()):
        assert status["state"] == "succeeded" and status["result"] is None
    gone = client.get(link, headers=headers)
    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert gone.json()["detail"] == (
        f"batch {job_id}'s result was removed at 2026-11-27T12:05:00+00:00 (the batch was "
        "cancelled after it finished); submit the file again to score it anew"
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("application/json", b"{}", 415, "CSV"),
        ("text/csv", b"a,b\n1,2\n", 422, "lacks the column"),
        (
            "text/csv",
            rows(3).rename(columns={"tenure_months": "Tenure_Month"}).to_csv(index=False).encode(),
            422,
            "tenure_months (the file has 'Tenure_Month')",
        ),
        ("application/vnd.apache.parquet", b"PAR1 not really", 422, "not a readable parquet"),
        ("text/csv", b"x" * 5000, 413, "may hold"),
    ],
    ids=["not-a-table", "columns", "misspelled", "not-parquet", "too-large"],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    services: Services,
    shop: tuple[TestClient, dict[str, str]],
    content_type: str,
    body: bytes,
    status: int,
    words: str,
) -> None:
    client, headers = shop
    object.__setattr__(services.settings, "max_batch_bytes", 4096)
    answer = client.post(
        "/v1/models/churn/batches", headers={**headers, "Content-Type": content_type}, content=body
    )
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert not [k for k in services.artifacts.list_keys() if k.startswith("batches/")]
    assert metered_rows(services) == 0


def test_others_cannot_see_a_batch_and_a_cancelled_one_stops(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    batches.CRASH_HOOK = _stop_always
    try:
        answer = client.post("/v1/models/churn/batches",
                             headers={**headers, "Content-Type": "text/csv"},
                             content=rows(50).to_csv(index=False).encode())  # fmt: skip
        job_id = answer.json()["id"]
        services.batches.wait(job_id, timeout=60)
    finally:
        batches.CRASH_HOOK = None
    accounts.create_consumer(services.uow(), by=None, name="globex", description="", now=NOW)
    _, token = create_key(services.uow(), services.server_secret, by=None,
                          owner_kind="consumer", owner="globex", name="g", now=NOW)  # fmt: skip
    other = client.get(f"/v1/batches/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 404
    cancelled = client.delete(f"/v1/batches/{job_id}", headers=headers)
    assert cancelled.status_code == 200
    with services.uow() as uow:
        job = uow.jobs.get(job_id)
        assert job is not None and job.cancel_requested
        uow.jobs.save(replace(job, owner=DEAD))
        uow.commit()
    runner = BatchRunner(services.uow, services.artifacts, services.predictors,
                         lambda: services.gate, services.clock)  # fmt: skip
    runner.resume()
    assert runner.wait(job_id, timeout=60).state == "cancelled"
    assert metered_rows(services) == 0


def _stop_always(chunk: int) -> Any:
    raise Stopped


def test_a_plan_may_allow_smaller_files_than_the_server(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    service.update_plan(services.uow(), "bulk", by=None, max_batch_bytes=1_000)
    services.gate.forget_subscriptions()
    body = rows(100).to_csv(index=False).encode()
    answer = client.post("/v1/models/churn/batches",
                         headers={**headers, "Content-Type": "text/csv"}, content=body)  # fmt: skip
    assert answer.status_code == 413 and "1,000 bytes" in answer.json()["detail"]
    assert not [k for k in services.artifacts.list_keys() if k.startswith("batches/")]


def test_the_portal_uploads_a_file_shows_progress_and_downloads_the_result(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    import re

    client, _ = shop
    accounts.set_consumer_password(services.uow(), "acme", "first customer secret", by=None,
                                   now=NOW)  # fmt: skip
    browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/portal/login").text)
    assert token
    browser.post("/portal/login", data={"name": "acme", "password": "first customer secret",
                                        "csrf": token.group(1)})  # fmt: skip
    page = browser.get("/portal/models/churn")
    assert "Score a file" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    body = rows(300).to_csv(index=False).encode()
    sent = browser.post("/portal/models/churn/batches", data={"csrf": csrf.group(1)},
                        files={"file": ("rows.csv", body, "text/csv")})  # fmt: skip
    assert sent.status_code == 303, sent.text[:500]
    where = sent.headers["location"]
    services.batches.wait(where.rsplit("/", 1)[-1], timeout=60)
    shown = browser.get(where)
    assert "succeeded: 300 of 300 rows scored" in shown.text and "<progress" in shown.text
    result = browser.get(f"{where}/result")
    assert result.status_code == 200
    assert len(pd.read_csv(io.StringIO(result.text))) == 300
    assert "Download the result" in shown.text
    _, headers = shop
    client.delete(f"/v1/batches/{where.rsplit('/', 1)[-1]}", headers=headers)
    shown = browser.get(where)
    assert "Download the result" not in shown.text
    assert "Its result was removed at 2026-11-27T12:00:00+00:00." in shown.text
    assert browser.get(f"{where}/result").status_code == 410
    browser.close()


@pytest.mark.slow(reason="a local cluster of Dask worker processes starts, then scores")
def test_with_a_dask_cluster_the_chunks_are_scored_on_its_workers(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    import distributed

    client, headers = shop
    service.update_plan(services.uow(), "bulk", by=None, rows_per_month=1_000_000)
    services.gate.forget_subscriptions()
    frame = rows(120_000, seed=5)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")  # fmt: skip
    try:
        services.batches.dask_address = cluster.scheduler_address
        answer = client.post(
            "/v1/models/churn/batches",
            headers={**headers, "Content-Type": batches.MEDIA["parquet"]},
            content=parquet(frame),
        )
        job_id = answer.json()["id"]
        done = services.batches.wait(job_id, timeout=300)
        with distributed.Client(cluster) as dask:
            scored_there = sum(dask.run(lambda: len(batches_loaded())).values())
    finally:
        services.batches.dask_address = None
        cluster.close()
    assert done.state == "succeeded" and done.result["rows_done"] == 120_000
    assert scored_there == 1  # the worker loaded the version once and scored every chunk
    got = pd.read_parquet(io.BytesIO(client.get(f"/v1/batches/{job_id}/result",
                                                headers=headers).content))  # fmt: skip
    version = resolve_version(services.uow(), "churn", None)
    expected = services.predictors.get(version).score(conform(frame, version.columns))
    assert got["prediction"].tolist() == expected.predictions
    assert metered_rows(services) == 120_000


def batches_loaded() -> dict[str, Any]:
    from mlgate.serving import offline

    return offline._LOADED
