"""Archives are read within bounds (issue 33): a crafted bundle or zipped MLflow directory sent
to the import routes gets 413 (a limit, named with its setting) or 422 (a name that climbs
out), with nothing written and no process memory spent on unpacking it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from tests.archive_makers import bomb, claiming_entries, zipped
from tests.conftest import admin_token, make_services

pytestmark = pytest.mark.in_process

Served = tuple[Services, TestClient, dict[str, str]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("archives") / "home"
    services = make_services(home, MLGATE_ARCHIVE_MAX_ENTRIES="20")
    token = admin_token(services, "train", "read")
    with TestClient(create_app(services)) as client:
        yield services, client, {"Authorization": f"Bearer {token}"}
    services.close()


def refused(served: Served, answer: object, status: int, *words: str) -> dict[str, object]:
    services, client, headers = served
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    problem: dict[str, object] = answer.json()  # type: ignore[attr-defined]
    for word in words:
        assert word in str(problem["detail"]), problem
    assert "Traceback" not in answer.text  # type: ignore[attr-defined]
    assert services.artifacts.list_keys() == []  # nothing written
    assert client.get("/v1/models/evil", headers=headers).status_code == 404
    return problem


def bundle(files: dict[str, bytes], *, listed: dict[str, bytes] | None = None) -> bytes:
    """An mlgate bundle's shape: a manifest listing `listed` (default `files`) by sha256."""
    names = listed if listed is not None else files
    manifest = {"bundle_format": 1, "files": {n: hashlib.sha256(d).hexdigest()
                                              for n, d in names.items()}}  # fmt: skip
    return zipped({"manifest.json": json.dumps(manifest).encode(),
                   **{f"files/{n}": d for n, d in files.items()}},
                  compression=zipfile.ZIP_STORED)  # fmt: skip


def upload(served: Served, name: str, data: bytes) -> object:
    _, client, headers = served
    return client.post("/v1/models/evil/import-file", headers=headers,
                       files=[("file", (name, data))])  # fmt: skip


def test_a_bundle_that_is_a_zip_bomb_gets_413_naming_the_ratio(served: Served) -> None:
    _, client, headers = served
    data = bomb("files/model", extra={"manifest.json": b"{}"})
    answer = client.post("/v1/models/evil/import", headers=headers, content=data)
    problem = refused(served, answer, 413, "expands", "MLGATE_ARCHIVE_MAX_RATIO")
    assert problem["code"] == "archive_limit"


def test_a_bundle_claiming_a_million_entries_gets_413(served: Served) -> None:
    _, client, headers = served
    data = claiming_entries(bundle({"model": b"x"}), 1_000_000)
    answer = client.post("/v1/models/evil/import", headers=headers, content=data)
    refused(served, answer, 413, "1,000,000 entries", "MLGATE_ARCHIVE_MAX_ENTRIES")


def test_a_bundle_whose_model_is_a_bomb_itself_gets_413(served: Served) -> None:
    _, client, headers = served  # the outer zip is honest; the model inside is a skops bomb
    data = bundle({"model": bomb("schema.json", size=8 << 20)})
    answer = client.post("/v1/models/evil/import", headers=headers, content=data)
    refused(served, answer, 413, "the bundle's model", "MLGATE_ARCHIVE_MAX_RATIO")


def test_a_bundle_naming_files_outside_gets_422(served: Served) -> None:
    _, client, headers = served
    data = bundle({}, listed={"../../../escape": b"x"})
    answer = client.post("/v1/models/evil/import", headers=headers, content=data)
    refused(served, answer, 422, "'../../../escape'", "relative paths")


def test_a_zipped_mlflow_directory_that_is_a_bomb_gets_413(served: Served) -> None:
    data = bomb("model/model.xgb", extra={"model/MLmodel": b"flavors: {}"})
    refused(served, upload(served, "model.zip", data), 413, "model.zip", "expands")


def test_the_entry_limit_is_the_servers_setting(served: Served) -> None:
    files = {"model/MLmodel": b"flavors: {}", **{f"model/f{i}": b"" for i in range(20)}}
    answer = upload(served, "many.zip", zipped(files))
    refused(served, answer, 413, "21 entries", "at most 20", "MLGATE_ARCHIVE_MAX_ENTRIES")


def test_a_zipped_mlflow_directory_climbing_out_gets_422(served: Served) -> None:
    data = zipped({"model/MLmodel": b"flavors: {}", "model/../../../etc/cron.d/x": b"x"})
    refused(served, upload(served, "model.zip", data), 422, "relative paths")


def test_the_limits_are_settings(tmp_path: Path) -> None:
    from mlgate.archives import ArchiveLimits
    from mlgate.settings import Settings

    settings = Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_ARCHIVE_MAX_BYTES": "5",
                                  "MLGATE_ARCHIVE_MAX_RATIO": "7"})  # fmt: skip
    assert ArchiveLimits.of(settings) == ArchiveLimits(max_bytes=5, max_ratio=7)
    assert ArchiveLimits.of(Settings.from_env({"MLGATE_HOME": str(tmp_path)})) == ArchiveLimits()
