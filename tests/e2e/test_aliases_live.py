"""Aliases on a running server: moves take effect with no failed request, and every answer comes
from a version the alias pointed at while that request was in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import admin_key, mlgate, quickstarted, running_server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("aliases")
    quickstarted(home)
    services = make_services(home)
    for algorithm in ("random_forest", "naive_bayes"):  # v2 and v3
        spec = TrainSpec(
            "churn",
            "demo",
            demo.TARGET,
            algorithm,
            table=demo.TABLE,
            drop=(demo.ID_COLUMN,),
            report=False,
        )
        train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        )
    services.close()
    return home


@pytest.fixture(scope="module")
def base(home: Path) -> Iterator[str]:
    with running_server(home) as url:
        yield url


@pytest.fixture(scope="module")
def headers(home: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key(home, 'train', 'predict', 'read')}"}


ROW = demo.churn_frame().drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[0].to_dict()
BODY = {
    "rows": [{k: (None if v != v else getattr(v, "item", lambda v=v: v)()) for k, v in ROW.items()}]
}


def promote(
    base: str, headers: dict[str, str], version: int, alias: str = "production"
) -> httpx.Response:
    return http.post(
        f"{base}/v1/models/churn/aliases/{alias}",
        headers=headers,
        json={"version": version, "reason": "test"},
    )


def test_alias_moves_under_load_fail_no_request(base: str, headers: dict[str, str]) -> None:
    assert promote(base, headers, 1).status_code == 200
    answers: list[tuple[float, float, int, int]] = []
    moves: list[tuple[float, float, int]] = [(0.0, 0.0, 1)]
    stop = threading.Event()

    def load() -> None:
        with http.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                response = client.post("/v1/models/churn@production/predict", json=BODY)
                finished = time.monotonic()
                version = int(response.headers.get("x-model-version", 0))
                answers.append((started, finished, response.status_code, version))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(20):
            target = [2, 3, 1][i % 3]
            started = time.monotonic()
            assert promote(base, headers, target).status_code == 200
            moves.append((started, time.monotonic(), target))
            time.sleep(0.4)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert len(answers) > 40
    assert {status for _, _, status, _ in answers} == {200}
    # Every worker follows a move within LAG seconds (after loading the new version), so an
    # answer may come from any target in force from LAG before the request to its end.
    lag = 1.0
    for started, finished, _, version in answers:
        in_force = [t for _, done, t in moves if done <= started - lag][-1]
        moving = {t for begun, done, t in moves if begun <= finished and done >= started - lag}
        assert version in {in_force} | moving, (started, finished, version)
    served = {version for *_, version in answers}
    assert served == {1, 2, 3}


def test_lifecycle_over_http(base: str, headers: dict[str, str]) -> None:
    assert promote(base, headers, 2, "staging").status_code == 200
    assert promote(base, headers, 3, "staging").status_code == 200
    back = http.post(f"{base}/v1/models/churn/aliases/staging/rollback", headers=headers, json={})
    assert back.status_code == 200 and back.json()["to_version"] == 2
    predicted = http.post(f"{base}/v1/models/churn@staging/predict", headers=headers, json=BODY)
    assert predicted.headers["x-model-version"] == "2" and predicted.json()["version"] == 2
    history = http.get(f"{base}/v1/models/churn/aliases/staging/history", headers=headers).json()
    assert [e["kind"] for e in history] == ["promote", "promote", "rollback"]
    assert history[0]["actor"].startswith("user:ops (key mlg_")
    listing = http.get(f"{base}/v1/models/churn/aliases", headers=headers).json()
    assert listing["staging"] == 2
    assert http.get(f"{base}/v1/models/churn", headers=headers).json()["aliases"]["staging"] == 2

    def problem(response: httpx.Response, status: int, words: str) -> None:
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]

    problem(promote(base, headers, 9), 404, "no version 9")
    problem(promote(base, headers, 1, "Bad%20Alias"), 422, "alias names are")
    problem(
        http.post(f"{base}/v1/models/churn/aliases/none/rollback", headers=headers, json={}),
        404,
        "no alias 'none'",
    )
    problem(
        http.post(f"{base}/v1/models/churn/versions/2/archive", headers=headers),
        409,
        "target of staging",
    )
    problem(
        http.post(f"{base}/v1/models/churn@nope/predict", headers=headers, json=BODY),
        404,
        "no alias 'nope'",
    )
    assert http.post(f"{base}/v1/models/churn/aliases/x", json={"version": 1}).status_code == 401


def test_a_version_whose_artifact_fails_its_checks_is_not_promoted(
    base: str, headers: dict[str, str], home: Path
) -> None:
    services = make_services(home)
    try:  # a new version the server has never loaded, then one byte of it changed on disk
        spec = TrainSpec(
            "churn",
            "demo",
            demo.TARGET,
            "decision_tree",
            table=demo.TABLE,
            drop=(demo.ID_COLUMN,),
            report=False,
        )
        version = train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        ).version
        path = services.settings.artifact_dir / version.artifact.key
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    finally:
        services.close()
    response = promote(base, headers, version.number, "canary")
    assert response.status_code == 500
    assert "does not match the sha256" in response.json()["detail"]
    assert "canary" not in http.get(f"{base}/v1/models/churn/aliases", headers=headers).json()


def test_compare_and_guarded_promotion_over_http(base: str, headers: dict[str, str]) -> None:
    staging = http.get(f"{base}/v1/models/churn/aliases", headers=headers).json()["staging"]
    result = http.post(
        f"{base}/v1/models/churn/compare", headers=headers, json={"a": staging, "b": 3}
    )
    assert result.status_code == 200, result.text
    verdict = result.json()
    assert verdict["metric"] == "accuracy" and "McNemar" in verdict["test"]
    low, high = verdict["interval"]
    assert low <= verdict["difference"] <= high
    guarded = http.post(
        f"{base}/v1/models/churn/aliases/staging",
        headers=headers,
        json={"version": 3, "require_better": True},
    )
    if verdict["verdict"] == "v3 is better":
        assert guarded.status_code == 200
    else:
        assert guarded.status_code == 409 and "not significantly better" in guarded.json()["detail"]
        now = http.get(f"{base}/v1/models/churn/aliases", headers=headers).json()["staging"]
        assert now == staging
    bad = http.post(f"{base}/v1/models/churn/compare", headers=headers, json={"a": 1, "b": 1})
    assert bad.status_code == 422 and "two different versions" in bad.json()["detail"]


def test_export_and_import_over_http(base: str, headers: dict[str, str]) -> None:
    bundle = http.get(f"{base}/v1/models/churn/versions/2/export", headers=headers)
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    imported = http.post(
        f"{base}/v1/models/churn-copy/import", headers=headers, content=bundle.content
    )
    assert imported.status_code == 201 and imported.json() == {"model": "churn-copy", "version": 1}
    served = http.post(f"{base}/v1/models/churn-copy/predict", headers=headers, json=BODY)
    assert served.status_code == 200
    broken = http.post(
        f"{base}/v1/models/churn-copy/import", headers=headers, content=bundle.content[:-200]
    )
    assert broken.status_code == 422 and "bundle is not a readable zip" in broken.json()["detail"]


def test_a_move_made_by_another_process_is_followed(
    base: str, headers: dict[str, str], home: Path
) -> None:
    def served() -> int:
        response = http.post(
            f"{base}/v1/models/churn@production/predict", headers=headers, json=BODY
        )
        return int(response.headers["x-model-version"])

    before = served()
    target = 1 if before != 1 else 2
    mlgate(home, "models", "promote", "churn", str(target), "--alias", "production")
    deadline = time.monotonic() + 10
    while served() != target:
        assert time.monotonic() < deadline, "the server never followed the move"
        time.sleep(0.05)
