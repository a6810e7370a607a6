"""MLflow's /invocations shapes and the Open Inference Protocol v2, through the whole app in
process: the same predictions as our own route, and each protocol's own error shape. Triton's
own HTTP client needs a socket: tests/e2e/test_triton.py."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e.helpers import admin_key, mlgate, quickstarted

FRAME = demo.churn_frame(n_rows=8).drop(columns=[demo.ID_COLUMN, demo.TARGET])
COLUMNS = list(FRAME.columns)
RECORDS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in FRAME.to_dict(orient="records")
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("protocols") / "home"
    quickstarted(home)
    mlgate(home, "models", "promote", "churn", "1", "--alias", "staging")
    headers = {"Authorization": f"Bearer {admin_key(home, 'predict', 'read')}"}
    services = make_services(home)
    with TestClient(create_app(services)) as client:
        yield client, headers
    services.close()


@pytest.fixture(scope="module")
def expected(served: tuple[TestClient, dict[str, str]]) -> dict[str, Any]:
    client, headers = served
    answer = client.post("/v1/models/churn/predict", headers=headers, json={"rows": RECORDS})
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
    served: tuple[TestClient, dict[str, str]], expected: dict[str, Any], body: dict[str, Any]
) -> None:
    client, headers = served
    answer = client.post("/v1/models/churn/invocations", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected["predictions"]}


def test_mlflow_csv_and_aliases(
    served: tuple[TestClient, dict[str, str]], expected: dict[str, Any]
) -> None:
    client, headers = served
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in RECORDS)
    answer = client.post(
        "/v1/models/churn@staging/invocations",
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
        # found by scripts/fuzz: a lone carriage return inside a cell was a 500
        ("$lsV\u00dd\r\U00022cc6\u0085".encode(), "text/csv", 400, "BAD_REQUEST", "unknown"),
        (b"a\n" + b"x" * 200_000, "text/csv", 400, "BAD_REQUEST", "cannot be read at line 2"),
    ],
)
def test_mlflow_errors_come_in_mlflow_shape(
    served: tuple[TestClient, dict[str, str]],
    body: Any,
    content_type: str,
    status: int,
    code: str,
    words: str,
) -> None:
    client, headers = served
    raw = body if isinstance(body, bytes) else None
    answer = client.post(
        "/v1/models/churn/invocations",
        headers={**headers, "Content-Type": content_type},
        content=raw if raw is not None else None,
        json=None if raw is not None else body,
    )
    assert answer.status_code == status
    assert set(answer.json()) == {"error_code", "message"}
    assert answer.json()["error_code"] == code and words in answer.json()["message"]
    assert "Traceback" not in answer.text


def test_mlflow_without_a_key_is_401_in_mlflow_shape(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = served
    answer = client.post("/v1/models/churn/invocations", json={"dataframe_records": RECORDS})
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_oip_health_server_and_model_metadata(served: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = served
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "mlgate"
    meta = client.get("/v2/models/churn", headers=headers).json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("tenure_months", "FP64"), ("monthly_charges", "FP64"), ("total_charges", "FP64"),
        ("contract", "BYTES"), ("internet_service", "BYTES"), ("payment_method", "BYTES"),
        ("senior_citizen", "FP64"), ("support_calls", "FP64"),
    ]  # fmt: skip
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    ready = client.get("/v2/models/churn/versions/1/ready", headers=headers)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    missing = client.get("/v2/models/nope/ready", headers=headers)
    assert missing.status_code == 404 and set(missing.json()) == {"error"}


def test_oip_one_tensor_and_outputs(
    served: tuple[TestClient, dict[str, str]], expected: dict[str, Any]
) -> None:
    client, headers = served
    data = [[r[c] for c in COLUMNS] for r in RECORDS]
    body = {
        "id": "batch-1",
        "inputs": [{"name": "rows", "shape": [8, len(COLUMNS)], "datatype": "BYTES", "data": data}],
    }
    wrong_type = client.post("/v2/models/churn/infer", headers=headers, json=body)
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
    answer = client.post("/v2/models/churn/versions/1/infer", headers=headers, json=body)
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
    served: tuple[TestClient, dict[str, str]], inputs: list[dict[str, Any]], words: str
) -> None:
    client, headers = served
    answer = client.post("/v2/models/churn/infer", headers=headers, json={"inputs": inputs})
    assert answer.status_code == 400 and set(answer.json()) == {"error"}
    assert words in answer.json()["error"]
    unknown = client.post("/v2/models/nope/infer", headers=headers, json={"inputs": inputs})
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}


def _triton_inputs(binary: bool, frame: pd.DataFrame = FRAME) -> list[Any]:
    """The churn rows as Triton's client builds them: one input per column."""
    import tritonclient.http as triton

    inputs = []
    for name in COLUMNS:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype="float64")
            if not binary:  # JSON has no NaN: that column goes without its missing value
                values = np.nan_to_num(values)
            tensor = triton.InferInput(name, [len(values)], "FP64")
        else:
            values = np.array([("" if v is None else v) for v in column], dtype=object)
            tensor = triton.InferInput(name, [len(values)], "BYTES")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _infer(
    client: TestClient, headers: dict[str, str], inputs: list[Any], outputs: Any = None
) -> Any:
    import tritonclient.http as triton

    body, json_size = triton.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id="req-9"
    )
    extra = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    answer = client.post("/v2/models/churn/infer", headers=headers | extra, content=body)
    assert answer.status_code == 200, answer.text
    length = answer.headers.get("inference-header-content-length")
    return triton.InferResult.from_response_body(
        answer.content, header_length=None if length is None else int(length)
    )


def test_oip_binary_tensors_as_tritons_client_sends_them_by_default(
    served: tuple[TestClient, dict[str, str]], expected: dict[str, Any]
) -> None:
    """Binary inputs and binary outputs: the request body and the answer are built and read by
    tritonclient's own code."""
    client, headers = served
    result = _infer(client, headers, _triton_inputs(binary=True))
    response = result.get_response()
    assert response["id"] == "req-9"
    assert all("data" not in o and o["parameters"]["binary_data_size"] > 0
               for o in response["outputs"])  # fmt: skip
    predicted = result.as_numpy("predict")
    meta = client.get("/v2/models/churn", headers=headers).json()
    announced = {o["name"]: o["datatype"] for o in meta["outputs"]}
    assert {o["name"]: o["datatype"] for o in response["outputs"]} == announced
    labels = [v.decode() if isinstance(v, bytes) else v for v in predicted.tolist()]
    assert labels == expected["predictions"]
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected["probabilities"],
                               atol=1e-12)  # fmt: skip


def test_oip_outputs_each_binary_or_json_as_asked(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    import tritonclient.http as triton

    client, headers = served
    outputs = [triton.InferRequestedOutput("predict", binary_data=False),
               triton.InferRequestedOutput("predict_proba", binary_data=True)]  # fmt: skip
    json_inputs = _infer(client, headers, _triton_inputs(binary=False), outputs)
    mixed = json_inputs.get_response()["outputs"]
    assert "data" in mixed[0] and "parameters" not in mixed[0]
    assert "data" not in mixed[1] and mixed[1]["parameters"]["binary_data_size"] == 8 * 2 * 8
    # All JSON: no Inference-Header-Content-Length, and the same numbers.
    outputs = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
    plain = _infer(client, headers, _triton_inputs(binary=False), outputs)
    np.testing.assert_array_equal(plain.as_numpy("predict_proba"),
                                  json_inputs.as_numpy("predict_proba"))  # fmt: skip


@pytest.mark.parametrize(
    ("declared", "tail", "header", "words"),
    [
        (63, 63, None, "63 bytes for shape [8] of FP64 (64 expected"),
        (64, 72, None, "8 bytes follow the binary tensors"),
        (80, 72, None, "declares 80 bytes of binary data but only 72"),
        (64, 64, "999999", "Inference-Header-Content-Length is '999999'"),
        (64, 64, "abc", "Inference-Header-Content-Length is 'abc'"),
    ],
    ids=["short", "left-over", "past-the-end", "header-past-the-body", "header-not-a-number"],
)
def test_oip_binary_bodies_that_do_not_add_up_are_400(
    served: tuple[TestClient, dict[str, str]],
    declared: int,
    tail: int,
    header: str | None,
    words: str,
) -> None:
    client, headers = served
    tensor = {"name": "tenure_months", "shape": [8], "datatype": "FP64",
              "parameters": {"binary_data_size": declared}}  # fmt: skip
    head = json.dumps({"inputs": [tensor]}).encode()
    answer = client.post(
        "/v2/models/churn/infer",
        headers=headers | {"Inference-Header-Content-Length": header or str(len(head))},
        content=head + b"\x00" * tail,
    )
    assert answer.status_code == 400 and set(answer.json()) == {"error"}, answer.text
    assert words in answer.json()["error"]


def test_oip_binary_infinity_is_refused_and_nan_is_a_missing_value(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    import tritonclient.http as triton

    client, headers = served
    inputs = _triton_inputs(binary=True)
    values = FRAME["tenure_months"].to_numpy(dtype="float64").copy()
    values[2] = np.nan  # JSON cannot carry it: /v1 says null for the same row
    inputs[0] = triton.InferInput("tenure_months", [len(values)], "FP64")
    inputs[0].set_data_from_numpy(values)
    result = _infer(client, headers, inputs)
    rows = [dict(r, tenure_months=None) if i == 2 else r for i, r in enumerate(RECORDS)]
    ours = client.post("/v1/models/churn/predict", headers=headers, json={"rows": rows}).json()
    np.testing.assert_allclose(result.as_numpy("predict_proba"), ours["probabilities"],
                               atol=1e-12)  # fmt: skip
    values[3] = np.inf
    inputs[0].set_data_from_numpy(values)
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs)
    answer = client.post(
        "/v2/models/churn/infer",
        headers=headers | {"Inference-Header-Content-Length": str(json_size)},
        content=body,
    )
    assert answer.status_code == 400 and "infinite value" in answer.json()["error"]


# A row within what training saw, and one with a number far outside its range and a category
# it never saw: each protocol answers warnings for the second alone (training/seen.py).
WITHIN = {**RECORDS[0], "total_charges": 100.0}
OUTSIDE = {**WITHIN, "tenure_months": 10_000, "contract": "weekly"}
WARNED = {"1": [("tenure_months", "outside_range", 10_000), ("contract", "unseen_category",
                                                              "weekly")]}  # fmt: skip


def _kinds(found: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[str, str, Any]]]:
    return {row: [(w["column"], w["kind"], w["value"]) for w in ws] for row, ws in found.items()}


def test_our_route_warns_of_the_rows_outside_what_training_saw(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = served
    answer = client.post("/v1/models/churn/predict", headers=headers,
                         json={"rows": [WITHIN, OUTSIDE]}).json()  # fmt: skip
    assert _kinds(answer["warnings"]) == WARNED
    [outside, unseen] = answer["warnings"]["1"]
    low, high = outside["seen"]  # the months training saw
    assert low <= WITHIN["tenure_months"] <= high < 10_000
    assert "month-to-month" in unseen["seen"] and "weekly" in unseen["message"]
    alone = client.post("/v1/models/churn/predict", headers=headers, json={"rows": [WITHIN]})
    assert "warnings" not in alone.json()  # an answer within the range is as it always was
    assert set(alone.json()) == {"model", "version", "predictions", "classes", "probabilities"}
    described = client.get("/v1/models/churn/openapi.json", headers=headers).json()
    assert "warnings" in json.dumps(described)


def test_mlflow_keeps_its_predictions_and_adds_warnings_beside_them(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = served
    answer = client.post("/v1/models/churn/invocations", headers=headers,
                         json={"dataframe_records": [WITHIN, OUTSIDE]}).json()  # fmt: skip
    assert set(answer) == {"predictions", "warnings"} and len(answer["predictions"]) == 2
    assert _kinds(answer["warnings"]) == WARNED
    alone = client.post("/v1/models/churn/invocations", headers=headers,
                        json={"dataframe_records": [WITHIN]}).json()  # fmt: skip
    assert set(alone) == {"predictions"}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_oip_answers_warnings_as_a_json_string_parameter(
    served: tuple[TestClient, dict[str, str]], binary: bool
) -> None:
    """Read back by tritonclient's own code, as JSON tensors and as Triton's binary ones."""
    client, headers = served
    result = _infer(client, headers, _triton_inputs(binary, pd.DataFrame([WITHIN, OUTSIDE])))
    response = result.get_response()
    assert result.as_numpy("predict").shape == (2,)
    assert _kinds(json.loads(response["parameters"]["mlgate_warnings"])) == WARNED
    alone = _infer(client, headers, _triton_inputs(binary, pd.DataFrame([WITHIN])))
    assert "parameters" not in alone.get_response()
