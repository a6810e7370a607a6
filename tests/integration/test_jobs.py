"""Training over HTTP, through the whole app in process: a job outlives its request, reports
progress, can be cancelled, and a failed or cancelled job registers nothing; a job left running
by a process that died is failed when the app starts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.jobs.model import Job
from tests.conftest import admin_token, make_services
from tests.e2e.helpers import quickstarted


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("jobs")
    quickstarted(home)
    return home


@pytest.fixture(scope="module")
def stale_job(home: Path) -> str:
    """A job row left "running" by a process that died: the next server start must fail it."""
    services = make_services(home)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    job = Job(id="f" * 32, kind="train", state="running", spec={}, created_at=services.clock())
    with services.uow() as uow:
        owner = f"{socket.gethostname()}:{dead}"  # a server process of this host, now gone
        uow.jobs.add(replace(job, log=("started",), owner=owner, heartbeat_at=job.created_at))
        uow.commit()
    services.close()
    return job.id


@pytest.fixture(scope="module")
def served(home: Path, stale_job: str) -> Iterator[tuple[TestClient, Services]]:
    services = make_services(home)
    with TestClient(create_app(services)) as client:  # its start fails the stale job
        yield client, services
    services.close()


@pytest.fixture(scope="module")
def base(served: tuple[TestClient, Services]) -> TestClient:
    return served[0]


def key(served: tuple[TestClient, Services], *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(served[1], *scopes)}"}


def wait(
    served: tuple[TestClient, Services], headers: dict[str, str], job_id: str
) -> dict[str, Any]:
    """The job as the API shows it once its run in the app's runner has ended."""
    served[1].jobs.wait(job_id, timeout=120)
    job: dict[str, Any] = served[0].get(f"/v1/jobs/{job_id}", headers=headers).json()
    return job


BODY = {"source": "demo", "table": "customers", "target": "churned", "drop": ["customer_id"]}


def test_a_job_trains_a_new_version_that_then_serves(
    served: tuple[TestClient, Services], base: TestClient
) -> None:
    headers = key(served, "train", "predict", "read")
    response = base.post(
        "/v1/models/churn/train",
        headers=headers,
        json={**BODY, "algorithm": "random_forest"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running")
    done = wait(served, headers, job["id"])
    assert done["state"] == "succeeded", done
    assert done["result"]["model"] == "churn" and done["result"]["version"] == 2
    assert done["progress"] == 1.0 and any("fitting random_forest" in line for line in done["log"])
    detail = base.get("/v1/models/churn", headers=headers).json()
    assert [v["algorithm"] for v in detail["versions"]] == ["logistic_regression", "random_forest"]
    assert detail["versions"][1]["trained_by"] == f"user:ops (key {headers['Authorization'][7:23]})"


def test_a_cancelled_job_registers_nothing(
    served: tuple[TestClient, Services], base: TestClient
) -> None:
    headers = key(served, "train", "predict", "read")
    body = {**BODY, "algorithm": "random_forest", "tune": "trials=500"}
    job = base.post("/v1/models/slow/train", headers=headers, json=body).json()
    deadline = time.monotonic() + 60
    while base.get(f"/v1/jobs/{job['id']}", headers=headers).json()["stage"] != "tune":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancel = base.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"]
    done = wait(served, headers, job["id"])
    assert done["state"] == "cancelled"
    assert base.get("/v1/models/slow", headers=headers).status_code == 404


def test_a_failing_job_says_why_and_registers_nothing(
    served: tuple[TestClient, Services], base: TestClient
) -> None:
    headers = key(served, "train", "predict", "read")
    body = {**BODY, "target": "no_such_column"}
    job = base.post("/v1/models/broken/train", headers=headers, json=body).json()
    done = wait(served, headers, job["id"])
    assert done["state"] == "failed"
    assert "no column 'no_such_column' to predict" in done["error"]
    assert base.get("/v1/models/broken", headers=headers).status_code == 404


def test_a_job_left_running_by_a_dead_server_is_marked_failed(
    served: tuple[TestClient, Services], base: TestClient, stale_job: str
) -> None:
    done = base.get(f"/v1/jobs/{stale_job}", headers=key(served, "train")).json()
    assert done["state"] == "failed" and "server stopped" in done["error"]


def test_training_needs_the_train_scope_and_a_sound_body(
    served: tuple[TestClient, Services], base: TestClient
) -> None:
    predict_only = key(served, "predict")
    response = base.post("/v1/models/churn/train", headers=predict_only, json=BODY)
    assert response.status_code == 403 and "'train' scope" in response.json()["detail"]
    headers = key(served, "train")
    bad = base.post("/v1/models/churn/train", headers=headers, json={"target": "x"})
    assert bad.status_code == 422
    assert any(e["field"].endswith("source") for e in bad.json()["errors"])
    extra = base.post("/v1/models/churn/train", headers=headers, json={**BODY, "colour": 1})
    assert extra.status_code == 422
    tune = base.post("/v1/models/churn/train", headers=headers, json={**BODY, "tune": "lots"})
    assert tune.status_code == 422 and "trials=" in tune.json()["detail"]
    assert base.get("/v1/jobs/nope", headers=headers).status_code == 404
    assert base.post("/v1/models/churn/train", json=BODY).status_code == 401


def test_a_job_can_fit_on_every_row_with_the_folds_it_names(
    served: tuple[TestClient, Services], base: TestClient
) -> None:
    headers = key(served, "train", "read")
    body = {**BODY, "algorithm": "logistic_regression", "test_size": 0, "cv": 3, "report": False}
    response = base.post("/v1/models/every/train", headers=headers, json=body)
    assert response.status_code == 202, response.text
    done = wait(served, headers, response.json()["id"])
    assert done["state"] == "succeeded", done
    report = base.get("/v1/models/every/versions/1/report.json", headers=headers).json()
    assert report["evaluation"]["method"] == "3-fold cross-fitted predictions"
    assert report["evaluation"]["n_holdout"] == report["n_train"]  # every row, predicted once
    refused = base.post("/v1/models/every/train", headers=headers, json={**body, "cv": 1})
    assert refused.status_code == 422 and "cv" in refused.text
