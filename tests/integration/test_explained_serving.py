"""Explanations over every protocol, through the whole app in process: our JSON (`explain`,
`{"top": N}`), MLflow's `/invocations` (`params.explain`), the Open Inference Protocol (an
`explanation` output, as JSON and as binary data); each gives the same contributions as the
explainer, adding up to the raw output; a plan decides whether its consumers may ask."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.plans.service import bill_csv, create_plan, make_plan, subscribe, usage_csv
from mlgate.registry.service import resolve_version
from mlgate.schema import rows_to_table
from mlgate.serving import binary_tensors
from tests.conftest import admin_token
from tests.integration.test_explanations import CASES, table, trained, world  # noqa: F401

MODELS = CASES  # every (algorithm, task) pair of the catalogue that scores rows
ROWS = table(6, seed=3).drop(columns=["binary", "three", "value"])
RECORDS = [
    {k: (None if v != v else v) for k, v in r.items()} for r in ROWS.to_dict(orient="records")
]


@pytest.fixture(scope="module")
def served(world: Services) -> Iterator[tuple[TestClient, dict[str, str], list[str]]]:  # noqa: F811
    names = [trained(world, a, t) for a, t in MODELS]
    names.append(names[[a for a, _ in MODELS].index("logistic_regression")])  # the plan test's
    headers = {"Authorization": f"Bearer {admin_token(world, 'predict', 'read')}"}
    with TestClient(create_app(world)) as client:
        yield client, headers, names


def expected(world: Services, name: str) -> Any:  # noqa: F811
    version = resolve_version(world.uow(), name, None)
    rows = rows_to_table(RECORDS, version.columns, max_rows=100)
    return world.explainer(version).explain(rows)


@pytest.mark.parametrize("model", range(len(MODELS)), ids=[f"{a}-{t}" for a, t in MODELS])
def test_every_protocol_explains_alike(
    world: Services,  # noqa: F811
    served: tuple[TestClient, dict[str, str], list[str]],
    model: int,
) -> None:
    client, headers, names = served
    name = names[model]
    want = expected(world, name)
    ours = client.post(f"/v1/models/{name}/predict", headers=headers,
                       json={"rows": RECORDS, "explain": True})  # fmt: skip
    assert ours.status_code == 200, ours.text
    body = ours.json()
    assert body["explanation"]["method"] == want.method
    assert body["explanation"]["scale"] == want.scale
    for i, row in enumerate(body["explanations"]):
        got = [row["contributions"][c] for c in want.columns]
        np.testing.assert_allclose(got, want.values[i], rtol=1e-12, atol=1e-12)
        assert row["value"] == pytest.approx(row["base"] + sum(got), abs=1e-9)
    top = client.post(f"/v1/models/{name}/predict", headers=headers,
                      json={"rows": RECORDS, "explain": {"top": 1}}).json()  # fmt: skip
    for row, full in zip(top["explanations"], body["explanations"], strict=True):
        assert set(row["contributions"]) <= {*want.columns, "other"}
        assert sum(row["contributions"].values()) == pytest.approx(
            sum(full["contributions"].values()), abs=1e-9
        )

    explain = {"dataframe_records": RECORDS, "params": {"explain": True}}
    mlflow = client.post(f"/v1/models/{name}/invocations", headers=headers, json=explain)
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json()["explanations"] == body["explanations"]

    inputs = [
        {"name": c, "shape": [len(RECORDS)], "datatype": "FP64" if c in ("x1", "x2") else "BYTES",
         "data": [r[c] for r in RECORDS]}
        for c in want.columns
    ]  # fmt: skip
    oip = client.post(f"/v2/models/{name}/infer", headers=headers,
                      json={"inputs": inputs, "outputs": [{"name": "predict"},
                                                          {"name": "explanation"}]})  # fmt: skip
    assert oip.status_code == 200, oip.text
    tensor = next(o for o in oip.json()["outputs"] if o["name"] == "explanation")
    assert tensor["shape"] == [len(RECORDS), len(want.columns) + 1]
    assert tensor["parameters"]["columns"] == [*want.columns, "base"]
    matrix = np.asarray(tensor["data"]).reshape(tensor["shape"])
    np.testing.assert_allclose(matrix[:, :-1], want.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matrix[:, -1], want.base, rtol=1e-12, atol=1e-12)

    as_bytes = [{"name": "explanation", "parameters": {"binary_data": True}}]
    binary = client.post(f"/v2/models/{name}/infer", headers=headers,
                         json={"inputs": inputs, "outputs": as_bytes})  # fmt: skip
    assert binary.status_code == 200, binary.text
    length = int(binary.headers[binary_tensors.HEADER])
    header = json.loads(binary.content[:length])
    out = header["outputs"][0]
    values = np.frombuffer(binary.content[length:], dtype="<f8").reshape(out["shape"])
    np.testing.assert_allclose(values[:, :-1], want.values, rtol=1e-12, atol=1e-12)


def test_a_plan_decides_whether_its_consumers_may_ask(
    world: Services,  # noqa: F811
    served: tuple[TestClient, dict[str, str], list[str]],
) -> None:
    client, _, names = served
    now = world.clock()
    create_plan(world.uow(), make_plan("plain", now), by=None)
    insight = make_plan("insight", now, explain=True, price_per_1k_rows="1",
                        price_per_1k_explained_rows="4")  # fmt: skip
    create_plan(world.uow(), insight, by=None)
    tokens = {}
    for consumer, plan in (("plain-co", "plain"), ("insight-co", "insight")):
        create_consumer(world.uow(), by=None, name=consumer, description="", now=now)
        subscribe(world.uow(), by=None, consumer=consumer, plan=plan, now=now)
        add_grant(world.uow(), by=None, subject_kind="consumer", subject=consumer,
                  target=names[-1], role="consumer", now=now, actor="test")  # fmt: skip
        _, tokens[consumer] = create_key(world.uow(), world.server_secret, by=None,
                                         owner_kind="consumer", owner=consumer, name=consumer,
                                         now=now)  # fmt: skip
    ask = {"rows": RECORDS[:2], "explain": True}
    refused = client.post(f"/v1/models/{names[-1]}/predict", json=ask,
                          headers={"Authorization": f"Bearer {tokens['plain-co']}"})  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["code"] == "plan_excludes_explanations"
    assert "explain" in refused.json()["detail"]
    plain = client.post(f"/v1/models/{names[-1]}/predict", json={"rows": RECORDS[:2]},
                        headers={"Authorization": f"Bearer {tokens['plain-co']}"})  # fmt: skip
    assert plain.status_code == 200 and "explanations" not in plain.json()
    allowed = client.post(f"/v1/models/{names[-1]}/predict", json=ask,
                          headers={"Authorization": f"Bearer {tokens['insight-co']}"})  # fmt: skip
    assert allowed.status_code == 200 and len(allowed.json()["explanations"]) == 2
    plain = client.post(f"/v1/models/{names[-1]}/predict", json={"rows": RECORDS[:3]},
                        headers={"Authorization": f"Bearer {tokens['insight-co']}"})  # fmt: skip
    assert plain.status_code == 200
    world.flusher.flush()
    month = now.strftime("%Y-%m")
    bill = list(csv.DictReader(io.StringIO(
        bill_csv(world.uow(), by=None, consumer="insight-co", month=month))))  # fmt: skip
    assert [(b["rows"], b["explained_rows"]) for b in bill] == [("5", "2")]
    assert Decimal(bill[0]["amount"]) == Decimal("0.01")  # (5 x 1 + 2 x 4) / 1000, rounded
    ledger = list(csv.DictReader(io.StringIO(
        usage_csv(world.uow(), by=None, month=month, consumer="insight-co"))))  # fmt: skip
    assert sum(int(r["explained_rows"]) for r in ledger) == 2
    refused_rows = list(csv.DictReader(io.StringIO(
        usage_csv(world.uow(), by=None, month=month, consumer="plain-co"))))  # fmt: skip
    assert all(r["explained_rows"] == "0" for r in refused_rows)
    assert {r["status"] for r in refused_rows} == {"200", "403"}


@pytest.mark.parametrize(
    "explain", [1, "yes", {"top": 0}, {"top": 2.5}, {"first": 3}, None], ids=repr
)
def test_a_malformed_explain_is_a_named_422(
    served: tuple[TestClient, dict[str, str], list[str]], explain: Any
) -> None:
    client, headers, names = served
    answer = client.post(f"/v1/models/{names[0]}/predict", headers=headers,
                         json={"rows": RECORDS[:1], "explain": explain})  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "explain" in answer.json()["detail"]


def test_the_models_openapi_document_describes_explanations(
    served: tuple[TestClient, dict[str, str], list[str]],
) -> None:
    client, headers, names = served
    document = client.get(f"/v1/models/{names[0]}/openapi.json", headers=headers).json()
    operation = next(iter(document["paths"].values()))["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "explain" in body["properties"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    contributions = answer["properties"]["explanations"]["items"]["properties"]["contributions"]
    assert set(contributions["properties"]) == {"x1", "x2", "color", "size", "other"}
