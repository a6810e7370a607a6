"""MLflow's /invocations shapes and the Open Inference Protocol v2 against a real `mlgate serve`:
the same predictions as our own route, each protocol's own error shape, and Triton's own HTTP
client (tritonclient) talking to mlgate unmodified."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton

from mlgate.sources import demo
from tests.e2e.helpers import admin_key, mlgate, quickstarted, running_server

FRAME = demo.churn_frame(n_rows=8).drop(columns=[demo.ID_COLUMN, demo.TARGET])
COLUMNS = list(FRAME.columns)
RECORDS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in FRAME.to_dict(orient="records")
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("protocols") / "home"
    quickstarted(home)
    mlgate(home, "models", "promote", "churn", "1", "--alias", "staging")
    headers = {"Authorization": f"Bearer {admin_key(home, 'predict', 'read')}"}
    with running_server(home) as base:
        yield base, headers


@pytest.fixture(scope="module")
def expected(served: tuple[str, dict[str, str]]) -> dict[str, Any]:
    base, headers = served
    answer = httpx.post(f"{base}/v1/models/churn/predict", headers=headers, json={"rows": RECORDS})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize(
    "body",
    [
        {
            "dataframe_split": {
                "columns": COLUMNS,
                "data": [[r[c] for c in COLUMNS] for r in RECORDS],
            }
        },
        {
            "dataframe_split": {
                "index": list(range(8)),
                "columns": COLUMNS,
                "data": [[r[c] for c in COLUMNS] for r in RECORDS],
            }
        },
        {"dataframe_records": RECORDS},
        {"instances": RECORDS},
        {"instances": [[r[c] for c in COLUMNS] for r in RECORDS]},
        {"inputs": {c: [r[c] for r in RECORDS] for c in COLUMNS}},
        {"inputs": RECORDS, "params": {"ignored": True}},
    ],
    ids=[
        "split",
        "split-index",
        "records",
        "instances",
        "instances-lists",
        "inputs-columns",
        "inputs-params",
    ],
)
def test_mlflow_shapes_predict_what_our_route_predicts(
    served: tuple[str, dict[str, str]], expected: dict[str, Any], body: dict[str, Any]
) -> None:
    base, headers = served
    answer = httpx.post(f"{base}/v1/models/churn/invocations", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected["predictions"]}


def test_mlflow_csv_and_aliases(
    served: tuple[str, dict[str, str]], expected: dict[str, Any]
) -> None:
    base, headers = served
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in RECORDS)
    answer = httpx.post(
        f"{base}/v1/models/churn@staging/invocations",
        headers={**headers, "Content-Type": "text/csv"},
        content=text.getvalue().encode(),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected["predictions"]
    assert answer.headers["x-model-version"] == "1"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "words"),
    [
        (
            {"dataframe_records": RECORDS, "instances": RECORDS},
            "application/json",
            400,
            "BAD_REQUEST",
            "exactly one",
        ),
        ({"records": RECORDS}, "application/json", 400, "BAD_REQUEST", "exactly one"),
        (
            {"dataframe_records": [{"tenure_months": 3}]},
            "application/json",
            400,
            "BAD_REQUEST",
            "missing column",
        ),
        (b"<xml/>", "application/xml", 415, "BAD_REQUEST", "text/csv"),
        (b"{not json", "application/json", 400, "MALFORMED_REQUEST", "not valid JSON"),
    ],
)
def test_mlflow_errors_come_in_mlflow_shape(
    served: tuple[str, dict[str, str]],
    body: Any,
    content_type: str,
    status: int,
    code: str,
    words: str,
) -> None:
    base, headers = served
    raw = body if isinstance(body, bytes) else None
    answer = httpx.post(
        f"{base}/v1/models/churn/invocations",
        headers={**headers, "Content-Type": content_type},
        content=raw if raw is not None else None,
        json=None if raw is not None else body,
    )
    assert answer.status_code == status
    assert set(answer.json()) == {"error_code", "message"}
    assert answer.json()["error_code"] == code and words in answer.json()["message"]
    assert "Traceback" not in answer.text


def test_mlflow_without_a_key_is_401_in_mlflow_shape(served: tuple[str, dict[str, str]]) -> None:
    base, _ = served
    answer = httpx.post(f"{base}/v1/models/churn/invocations", json={"dataframe_records": RECORDS})
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_oip_health_server_and_model_metadata(served: tuple[str, dict[str, str]]) -> None:
    base, headers = served
    assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{base}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{base}/v2").json()["name"] == "mlgate"
    meta = httpx.get(f"{base}/v2/models/churn", headers=headers).json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("tenure_months", "FP64"), ("monthly_charges", "FP64"), ("total_charges", "FP64"),
        ("contract", "BYTES"), ("internet_service", "BYTES"), ("payment_method", "BYTES"),
        ("senior_citizen", "FP64"), ("support_calls", "FP64"),
    ]  # fmt: skip
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    ready = httpx.get(f"{base}/v2/models/churn/versions/1/ready", headers=headers)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    missing = httpx.get(f"{base}/v2/models/nope/ready", headers=headers)
    assert missing.status_code == 404 and set(missing.json()) == {"error"}


def test_oip_tabular_infer_through_tritons_own_client(
    served: tuple[str, dict[str, str]], expected: dict[str, Any]
) -> None:
    base, headers = served
    client = triton.InferenceServerClient(url=base.removeprefix("http://"))
    try:
        assert client.is_server_live(headers=headers) and client.is_server_ready(headers=headers)
        assert client.is_model_ready("churn", headers=headers)
        inputs = []
        for name, column in FRAME.items():
            if not pd.api.types.is_numeric_dtype(column):
                values = np.array([("" if v is None else v) for v in column], dtype=object)
                tensor = triton.InferInput(name, [len(values)], "BYTES")
            else:
                values = column.to_numpy(dtype="float64")
                tensor = triton.InferInput(name, [len(values)], "FP64")
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        # total_charges holds NaN, which JSON cannot carry: send that column without it.
        inputs[2] = triton.InferInput("total_charges", [8], "FP64")
        inputs[2].set_data_from_numpy(
            FRAME["total_charges"].fillna(0.0).to_numpy(), binary_data=False
        )
        outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
        result = client.infer("churn", inputs, outputs=outputs, request_id="req-7", headers=headers)
        response = result.get_response()
        assert response["id"] == "req-7" and response["model_version"] == "1"
        predicted = result.as_numpy("predict")
        assert predicted is not None and predicted.shape == (8,)
        rows = [
            dict(r, total_charges=r["total_charges"] if r["total_charges"] is not None else 0.0)
            for r in RECORDS
        ]
        ours = httpx.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": rows}
        ).json()
        assert predicted.tolist() == ours["predictions"]
    finally:
        client.close()


def test_oip_one_tensor_and_outputs(
    served: tuple[str, dict[str, str]], expected: dict[str, Any]
) -> None:
    base, headers = served
    data = [[r[c] for c in COLUMNS] for r in RECORDS]
    body = {
        "id": "batch-1",
        "inputs": [{"name": "rows", "shape": [8, len(COLUMNS)], "datatype": "BYTES", "data": data}],
    }
    wrong_type = httpx.post(f"{base}/v2/models/churn/infer", headers=headers, json=body)
    assert wrong_type.status_code == 400 and "BYTES but holds" in wrong_type.json()["error"]
    # Mixed columns go as one input per column; an all-number tensor needs a numeric model.
    body = {
        "id": "batch-2",
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": c,
                "shape": [8, 1],
                "datatype": "BYTES" if isinstance(RECORDS[0][c], str) else "FP64",
                "data": [r[c] for r in RECORDS],
            }
            for c in COLUMNS
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    answer = httpx.post(f"{base}/v2/models/churn/versions/1/infer", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["id"] == "batch-2" and [o["name"] for o in out["outputs"]] == ["predict_proba"]
    proba = out["outputs"][0]
    assert proba["shape"] == [8, 2] and proba["datatype"] == "FP64"
    np.testing.assert_allclose(
        np.array(proba["data"]).reshape(8, 2), expected["probabilities"], atol=1e-12
    )


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        (
            [{"name": "contract", "shape": [2], "datatype": "BYTES", "data": ["a"]}],
            "1 values for shape [2]",
        ),
        (
            [{"name": "contract", "shape": [1], "datatype": "STRING", "data": ["a"]}],
            "datatype 'STRING'",
        ),
        ([{"name": "contract", "shape": [1], "datatype": "BYTES", "data": ["a"]}], "tenure_months"),
        ([{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}], "takes 8"),
    ],
)
def test_oip_errors_come_as_error_objects_with_400(
    served: tuple[str, dict[str, str]], inputs: list[dict[str, Any]], words: str
) -> None:
    base, headers = served
    answer = httpx.post(f"{base}/v2/models/churn/infer", headers=headers, json={"inputs": inputs})
    assert answer.status_code == 400 and set(answer.json()) == {"error"}
    assert words in answer.json()["error"]
    unknown = httpx.post(f"{base}/v2/models/nope/infer", headers=headers, json={"inputs": inputs})
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
