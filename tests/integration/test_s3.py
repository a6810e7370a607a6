"""The artifact store contract, on the local folder and on an S3-compatible server (moto's,
started here, spoken to over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlgate.errors import ArtifactError, InvalidInput
from mlgate.registry.doctor import check_registry
from mlgate.registry.s3 import S3ArtifactStore
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore, LocalArtifactStore
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to
from tests.e2e.helpers import free_port

CREDENTIALS = {
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
    "region_name": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_endpoint")
    client = s3_client(endpoint)
    bucket = f"b{tmp_path.name.lower().replace('_', '-')[-40:]}"
    client.create_bucket(Bucket=bucket)
    return S3ArtifactStore(f"s3://{bucket}/mlgate", client=client)


def test_the_store_contract(store: ArtifactStore) -> None:
    store.put("churn/a.skops", b"first")
    store.put("churn/a.skops", b"second")
    store.put("churn/b.report.html", b"<html>")
    assert store.get("churn/a.skops") == b"second"
    assert store.list_keys() == ["churn/a.skops", "churn/b.report.html"]
    store.delete("churn/a.skops")
    with pytest.raises(ArtifactError, match="missing"):
        store.get("churn/a.skops")
    with pytest.raises(InvalidInput, match="outside"):
        store.put("../escape", b"x")


def test_mlgate_runs_on_s3_artifacts(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3_client(s3_endpoint).create_bucket(Bucket="models")
    from mlgate.bootstrap import bootstrap
    from mlgate.settings import Settings

    services = bootstrap(
        Settings.from_env(
            {
                "MLGATE_HOME": str(tmp_path / "home"),
                "MLGATE_ARTIFACT_URL": "s3://models/prod",
                "MLGATE_S3_ENDPOINT_URL": s3_endpoint,
            }
        )
    )
    try:
        assert isinstance(services.artifacts, S3ArtifactStore)
        demo.churn_frame(n_rows=300).to_csv(tmp_path / "c.csv", index=False)
        add_source_to(services, "c", str(tmp_path / "c.csv"), cwd=tmp_path)
        spec = TrainSpec("churn", "c", demo.TARGET, "xgboost", table="c", drop=(demo.ID_COLUMN,))
        version = train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        ).version
        keys = s3_client(s3_endpoint).list_objects_v2(Bucket="models", Prefix="prod/")["Contents"]
        assert {k["Key"] for k in keys} == {f"prod/{version.artifact.key}"} | {
            f"prod/{e['key']}" for e in (version.report or {})["attachments"].values()
        }
        assert services.predictors.get(resolve_version(services.uow(), "churn", 1)) is not None
        assert check_registry(services.uow(), services.artifacts)[1] == []
        s3_client(s3_endpoint).put_object(
            Bucket="models", Key=f"prod/{version.artifact.key}", Body=b"changed"
        )
        services.predictors.clear()
        with pytest.raises(ArtifactError, match="does not match the sha256"):
            services.predictors.get(version)
    finally:
        services.close()
