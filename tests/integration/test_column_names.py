"""Column names are opaque strings everywhere: names holding a slash (wine's real
`od280/od315_of_diluted_wines`), spaces, quotes, dots, non-ASCII letters and SQL keywords (and
names that become the same identifier, or the names of a graph's own outputs) go through every
surface: training from a table and from a query in SQLite and PostgreSQL, our JSON, MLflow's
/invocations and the Open Inference Protocol, explanations, batches, ONNX export (whose graph
inputs keep the names) and its import, and the export bundle and its import."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.exports.service import TOLERANCE, export_onnx
from mlgate.imports.files import identify
from mlgate.imports.service import ImportRequest, import_model
from mlgate.registry.bundles import export_bundle, import_bundle
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, admin_token, make_services

# a_b is a.b once made an identifier; label and probabilities are an ONNX graph's own outputs
ODD = ["od280/od315_of_diluted_wines", "with space", "it's", 'say "hi"', "a.b", "größe", "年龄",
       "select", "order", "a_b", "label", "label1", "probabilities"]  # fmt: skip
CATEGORY = "colour/kind"
BOOSTERS = {"xgboost": {"n_estimators": 20}, "lightgbm": {"n_estimators": 20}}
MODELS = ["by-table", *BOOSTERS]  # a linear model, and boosters that see the names too


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({k: rng.normal(size=n) for k in ODD})
    out[CATEGORY] = rng.choice(["red", "blue", "it's"], size=n).astype(object)
    signal = out[ODD[0]] + out["年龄"] - out["select"] + (out[CATEGORY] == "red")
    out["class"] = np.where(signal > 0, "yes", "no")
    return out


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


QUERY = "SELECT " + ", ".join(quoted(c) for c in [*ODD, CATEGORY, "class"]) + ' FROM "odd table"'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("names")
    services = make_services(root / "home")
    demo.write_sqlite(root / "odd.db", frame(), table="odd table")
    add_source_to(services, "odd", f"sqlite:///{root / 'odd.db'}", cwd=root)
    for name, algorithm, table, query in (
        ("by-table", "logistic_regression", "odd table", None),
        ("by-query", "logistic_regression", None, QUERY),
        *((a, a, "odd table", None) for a in BOOSTERS),
    ):
        spec = TrainSpec(name, "odd", "class", algorithm, table=table, query=query,
                         params=BOOSTERS.get(algorithm), report=False)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
    yield services
    services.close()


@pytest.fixture(scope="module")
def client(world: Services) -> Iterator[TestClient]:
    """One app for the module: leaving it stops its batch runner for good."""
    with TestClient(create_app(world)) as client:
        yield client


def records(n: int = 6) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame(n, seed=4).drop(columns=["class"]).to_dict("records")
    return rows


def test_training_reads_the_names_by_table_and_by_query(world: Services) -> None:
    for name in ("by-table", "by-query", *BOOSTERS):
        version = resolve_version(world.uow(), name, None)
        assert [c.name for c in version.columns] == [*ODD, CATEGORY]


def test_postgresql_tables_and_queries_with_such_names(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    frame().to_sql("odd table", engine, index=False)
    engine.dispose()
    services = make_services(tmp_path / "home")
    try:
        add_source_to(services, "pg", postgres_url, cwd=tmp_path)
        for name, table, query in (("pg-table", "odd table", None), ("pg-query", None, QUERY)):
            spec = TrainSpec(name, "pg", "class", "logistic_regression", table=table,
                             query=query, report=False)  # fmt: skip
            train_model(services.uow(), services.artifacts, services.open_source, spec,
                        now=services.clock)  # fmt: skip
            version = resolve_version(services.uow(), name, None)
            assert [c.name for c in version.columns] == [*ODD, CATEGORY]
    finally:
        services.close()


@pytest.mark.parametrize("model", MODELS)
def test_every_serving_protocol_and_explain_take_the_names(
    world: Services, client: TestClient, model: str
) -> None:
    token = admin_token(world, "predict", "read", "train", user=f"ops-{model}")
    headers = {"Authorization": f"Bearer {token}"}
    rows = records()
    ours = client.post(f"/v1/models/{model}/predict", headers=headers,
                       json={"rows": rows, "explain": True})  # fmt: skip
    assert ours.status_code == 200, ours.text
    body = ours.json()
    for row, probabilities in zip(body["explanations"], body["probabilities"], strict=True):
        assert set(row["contributions"]) == {*ODD, CATEGORY}
        assert row["base"] + sum(row["contributions"].values()) == pytest.approx(row["value"])
        if body["explanation"]["scale"] != "probability":  # log-odds of the explained class
            p = probabilities[body["classes"].index(row["class"])]
            assert row["value"] == pytest.approx(np.log(p / (1 - p)), abs=1e-5)
    predictions = body["predictions"]
    mlflow = client.post(f"/v1/models/{model}/invocations", headers=headers,
                         json={"dataframe_records": rows})  # fmt: skip
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json()["predictions"] == predictions
    oip = client.post(f"/v2/models/{model}/infer", headers=headers, json={
        "parameters": {"content_type": "pd"},
        "inputs": [{"name": c, "shape": [len(rows)],
                    "datatype": "BYTES" if c == CATEGORY else "FP64",
                    "data": [r[c] for r in rows]} for c in [*ODD, CATEGORY]],
    })  # fmt: skip
    assert oip.status_code == 200, oip.text
    outputs = {o["name"]: o["data"] for o in oip.json()["outputs"]}
    assert outputs["predict"] == predictions
    batch = client.post(f"/v1/models/{model}/batches",
                        headers={**headers, "Content-Type": "text/csv"},
                        content=pd.DataFrame(rows).to_csv(index=False).encode())  # fmt: skip
    assert batch.status_code == 202, batch.text
    job = batch.json()["id"]
    world.batches.wait(job, timeout=60)
    scored = client.get(f"/v1/batches/{job}/result", headers=headers)
    assert scored.status_code == 200, scored.text
    assert pd.read_csv(io.BytesIO(scored.content))["prediction"].tolist() == predictions
    onnx = client.get(f"/v1/models/{model}/versions/1/export?format=onnx", headers=headers)
    assert onnx.status_code == 200, onnx.text


@pytest.mark.parametrize("model", ["by-query", *BOOSTERS])
def test_onnx_export_keeps_the_names_and_imports_back(world: Services, model: str) -> None:
    import onnx

    done = export_onnx(world.uow(), world.artifacts, world.predictors, model, None)
    assert done.max_difference <= TOLERANCE
    graph = onnx.load_from_string(done.data)
    assert [i.name for i in graph.graph.input] == [*ODD, CATEGORY]
    back = import_model(world.uow(), world.artifacts,
                        ImportRequest(f"{model}-onnx", identify("m.onnx", done.data)),
                        now=world.clock())  # fmt: skip
    assert [c.name for c in back.columns] == [*ODD, CATEGORY]
    original = resolve_version(world.uow(), model, None)
    rows = pd.DataFrame(records(20))
    ours = world.predictors.get(original).score(conform(rows, original.columns))
    theirs = world.predictors.get(back).score(conform(rows, back.columns))
    assert theirs.predictions == ours.predictions


def test_the_bundle_exports_and_imports_with_the_names(world: Services) -> None:
    data = export_bundle(world.uow(), world.artifacts, "by-table", 1, now=world.clock())
    back = import_bundle(world.uow(), world.artifacts, data, model_name="by-table-copy",
                         now=world.clock())  # fmt: skip
    assert [c.name for c in back.columns] == [*ODD, CATEGORY]
    rows = conform(pd.DataFrame(records()), back.columns)
    original = resolve_version(world.uow(), "by-table", None)
    assert (world.predictors.get(back).score(rows).predictions
            == world.predictors.get(original).score(rows).predictions)  # fmt: skip
