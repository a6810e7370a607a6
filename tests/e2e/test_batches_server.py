"""Batch jobs against `mlgate serve`: the Python client and the CLI submit a file and fetch the
result over a socket; a server killed mid-job (SIGKILL) leaves the job to the next server on the
same home, which resumes it: every row scored once, and metered once."""

from __future__ import annotations

import os
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from mlgate.cli.main import app as cli
from mlgate.client import Client, errors
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import SERVERS, admin_key, mlgate, quickstarted, running_server


def _rows(n: int) -> pd.DataFrame:
    return demo.churn_frame(n_rows=n, seed=3).drop(columns=[demo.ID_COLUMN, demo.TARGET])


def _metered(home: Path) -> int:
    services = make_services(home)
    try:
        with services.uow() as uow:
            found = uow.usage.query(since=datetime(2000, 1, 1, tzinfo=UTC),
                                    until=datetime(2100, 1, 1, tzinfo=UTC), by="month")  # fmt: skip
        return sum(r.rows for r in found if r.status < 400 and r.account == "user:ops")
    finally:
        services.close()


def test_the_client_and_the_cli_score_a_file_on_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    quickstarted(home)
    token = admin_key(home, "predict", "read")
    source = tmp_path / "rows.parquet"
    _rows(30_000).to_parquet(source, index=False)
    with running_server(home) as base:
        with Client(base, token) as client:
            batch = client.predict_file("churn", source, output=tmp_path / "out.parquet")
        assert batch.state == "succeeded"
        out = pd.read_parquet(tmp_path / "out.parquet")
        assert len(out) == 30_000 and out["prediction"].notna().all()
        csv = tmp_path / "rows.csv"
        _rows(2_000).to_csv(csv, index=False)
        result = mlgate(home, "--url", base, "--token", token, "batches", "submit", "churn",
                        str(csv), "--output", str(tmp_path / "out.csv"))  # fmt: skip
        assert "succeeded, 2,000 of 2,000 rows" in result.stdout
        assert len(pd.read_csv(tmp_path / "out.csv")) == 2_000
        _cut_off_upload(base, token, csv.read_bytes())
        with Client(base, token) as client:  # the first batch's files go: its result is Gone
            assert client.batch(batch.id).cancel().data["result"] is None
            try:
                client.batch(batch.id).download(tmp_path / "again.parquet")
                raise AssertionError("a removed result was downloaded")
            except errors.Gone as gone:
                assert "result was removed at" in str(gone)
        # The CLI against the server, in this process: the server is the process that matters.
        again = CliRunner().invoke(cli, ["--url", base, "--token", token, "batches", "download",
                                         batch.id, str(tmp_path / "again.parquet")])  # fmt: skip
        assert again.exit_code == 1, again.output
        assert isinstance(again.exception, SystemExit)  # an error said, not a traceback
        assert "Error: 410 batch" in again.stderr and "result was removed at" in again.stderr
        time.sleep(1.0)
    assert _metered(home) == 32_000
    services = make_services(home)
    try:
        with services.uow() as uow:
            assert [j.kind for j in uow.jobs.unfinished()] == []  # no job for the cut upload
        kept = [k for k in services.artifacts.list_keys() if k.startswith("batches/")]
        assert len(kept) == 2  # the CSV batch's input and part: nothing of the cut upload
    finally:
        services.close()


def _cut_off_upload(base: str, token: str, body: bytes) -> None:
    """An upload that declares more than it sends, then hangs up."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(
            b"POST /v1/models/churn/batches HTTP/1.1\r\nHost: test\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: text/csv\r\n"
            + f"Content-Length: {len(body) * 10}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.3)


def test_a_server_killed_mid_job_leaves_it_to_the_next_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    quickstarted(home)
    token = admin_key(home, "predict", "read")
    n = 600_000
    source = tmp_path / "big.parquet"
    _rows(n).to_parquet(source, index=False)
    headers = {"Authorization": f"Bearer {token}"}
    with running_server(home) as base:
        with Client(base, token) as client:
            batch = client.predict_file("churn", source, wait=False)
            deadline = time.monotonic() + 120
            while batch.refresh().data["rows_done"] == 0:  # at least one chunk committed
                assert time.monotonic() < deadline, batch.data
                time.sleep(0.05)
            assert batch.state == "running", batch.data
        os.kill(SERVERS[base], signal.SIGKILL)
        time.sleep(0.5)
    with running_server(home) as base:
        deadline = time.monotonic() + 300
        while True:
            data = http.get(f"{base}/v1/batches/{batch.id}", headers=headers).json()
            if data["state"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.2)
        assert data["state"] == "succeeded", data
        assert data["rows_done"] == n and data["rows_failed"] == 0
        result = http.get(f"{base}/v1/batches/{batch.id}/result", headers=headers, timeout=120)
        out = tmp_path / "out.parquet"
        out.write_bytes(result.content)
    assert len(pd.read_parquet(out)) == n
    assert _metered(home) == n
