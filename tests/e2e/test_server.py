"""`mlgate serve` in a subprocess, called over real HTTP on a free port."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mlgate.access import keys
from mlgate.registry.service import resolve_version
from mlgate.schema import rows_to_frame
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import admin_key, mlgate, quickstarted, running_server

MAX_ROWS = 50
MAX_BODY = 20_000


def a_row(i: int = 0) -> dict[str, Any]:
    row = demo.churn_frame().drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[i].to_dict()
    return {
        k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    quickstarted(home)
    return home


@pytest.fixture(scope="module")
def base(home: Path) -> Iterator[str]:
    with running_server(
        home, MLGATE_MAX_ROWS=str(MAX_ROWS), MLGATE_MAX_BODY_BYTES=str(MAX_BODY)
    ) as url:
        yield url


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    return admin_key(home)


@pytest.fixture
def client(base: str, token: str) -> Iterator[httpx.Client]:
    with http.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        yield c


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    for word in words:
        assert word in text, f"{word!r} not in {text}"
    return body


def test_a_prediction_equals_the_in_process_one(client: httpx.Client, home: Path) -> None:
    rows = [a_row(i) for i in range(5)]
    response = client.post("/v1/models/churn/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "churn" and body["version"] == 1
    assert response.headers["x-model-version"] == "1"
    assert body["classes"] == [0, 1]

    services = make_services(home)
    try:
        version = resolve_version(services.uow(), "churn", None)
        expected = services.predictors.get(version).score(
            rows_to_frame(rows, version.columns, max_rows=10)
        )
    finally:
        services.close()
    assert body["predictions"] == expected.predictions
    np.testing.assert_allclose(body["probabilities"], expected.probabilities, rtol=0, atol=1e-12)


def test_columnar_bodies_and_version_urls_give_the_same_answer(client: httpx.Client) -> None:
    rows = [a_row(i) for i in range(3)]
    names = list(rows[0])
    by_rows = client.post("/v1/models/churn/predict", json={"rows": rows}).json()
    columnar = client.post(
        "/v1/models/churn/versions/1/predict",
        json={"columns": names, "data": [[r[n] for n in names] for r in rows]},
    ).json()
    assert columnar == by_rows


def test_models_are_listed_with_their_schema(client: httpx.Client, home: Path) -> None:
    assert [m["name"] for m in client.get("/v1/models").json()] == ["churn"]
    schema = client.get("/v1/models/churn/schema").json()
    assert {c["name"] for c in schema["input_schema"]} == set(a_row())
    # Versions and metrics need the read scope, which a predict key lacks.
    denied = client.get("/v1/models/churn")
    assert denied.status_code == 403 and denied.json()["code"] == "missing_scope"
    reader = {"Authorization": f"Bearer {admin_key(home, 'read', user='reader')}"}
    detail = client.get("/v1/models/churn", headers=reader).json()
    assert detail["versions"][0]["metrics"]["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda r: r.pop("contract"), "rows[0].contract", ["missing column 'contract'"]),
        (
            lambda r: r.update(tenure_months="TWELVE"),
            "rows[0].tenure_months",
            ["expected a number"],
        ),
        (
            lambda r: r.update(favourite_colour="red"),
            "rows[0].favourite_colour",
            ["unknown column"],
        ),
    ],
)
def test_rows_that_do_not_fit_get_422_naming_the_field(
    client: httpx.Client, change: Any, field: str, words: list[str]
) -> None:
    row = a_row()
    change(row)
    body = assert_problem(
        client.post("/v1/models/churn/predict", json={"rows": [row]}), 422, *words
    )
    assert body["errors"][0]["field"] == field
    assert "TWELVE" not in str(body)  # the input is never echoed


def test_limits_and_unreadable_bodies(client: httpx.Client) -> None:
    url = "/v1/models/churn/predict"
    assert_problem(client.post(url, json={"rows": []}), 422, "at least one row")
    assert_problem(client.post(url, json={"rows": [a_row()] * (MAX_ROWS + 1)}), 413, f"{MAX_ROWS}")
    assert_problem(client.post(url, json={"rows": [a_row()] * 200}), 413, "bytes allowed")
    assert_problem(
        client.post(url, content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "not valid JSON",
    )
    assert_problem(
        client.post(url, content=b"a,b\n1,2", headers={"Content-Type": "text/csv"}),
        415,
        "send JSON",
    )
    assert_problem(client.post(url, json={"instances": [a_row()]}), 422, "accepted shapes")


def test_unknown_models_and_versions_get_404(client: httpx.Client) -> None:
    assert_problem(client.post("/v1/models/nope/predict", json={"rows": [a_row()]}), 404, "nope")
    assert_problem(
        client.post("/v1/models/churn/versions/9/predict", json={"rows": [a_row()]}),
        404,
        "no version 9",
    )
    assert_problem(
        client.post("/v1/models/churn/versions/x/predict", json={"rows": [a_row()]}), 404
    )
    assert_problem(client.get("/v1/models/nope/schema"), 404)


def test_without_a_valid_key_every_model_route_is_401(base: str, token: str) -> None:
    typo = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    wrong = str(keys.with_new_secret(token[:16]))  # well formed, the key's id, not its secret
    for headers, code in [
        ({}, "missing_credentials"),
        ({"Authorization": "Bearer nonsense"}, "malformed_credentials"),
        ({"Authorization": f"Bearer {typo}"}, "bad_checksum"),
        ({"Authorization": f"Bearer {wrong}"}, "invalid_credentials"),
        ({"Authorization": token}, "missing_credentials"),  # no "Bearer": not a credential
    ]:
        for method, path in [
            ("POST", "/v1/models/churn/predict"),
            ("GET", "/v1/models"),
            ("GET", "/v1/models/churn"),
        ]:
            response = http.request(method, base + path, headers=headers, json={"rows": [a_row()]})
            assert assert_problem(response, 401)["code"] == code
            challenge = response.headers["www-authenticate"]
            if code == "missing_credentials":
                assert challenge == "Bearer"
            else:
                assert challenge == f'Bearer error="invalid_token", error_description="{code}"'


def test_a_revoked_key_gets_401(base: str, home: Path) -> None:
    token = admin_key(home, user="short-lived")
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        http.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": [a_row()]}
        ).status_code
        == 200
    )
    mlgate(home, "keys", "revoke", token.split("_")[0] + "_" + token.split("_")[1])
    # Revoked by another process (the CLI): the server's one-second cache of keys lets it
    # through for at most that second, then never again.
    deadline = time.monotonic() + 3
    while True:
        response = http.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": [a_row()]}
        )
        if response.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert_problem(response, 401, "revoked")
    for _ in range(5):
        again = http.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": [a_row()]}
        )
        assert again.status_code == 401


def test_health_readiness_and_docs(base: str) -> None:
    assert http.get(f"{base}/healthz").json() == {"status": "ok"}
    assert http.get(f"{base}/readyz").json()["status"] == "ready"
    spec = http.get(f"{base}/openapi.json").json()
    assert "/v1/models/{name}/predict" in spec["paths"]
    assert "/v1/models/{name}/versions/{version}/predict" in spec["paths"]
    assert http.get(f"{base}/docs").status_code == 200
    assert_problem(http.get(f"{base}/no/such/thing"), 404, "no such endpoint")


def test_request_ids_access_log_and_metrics(base: str, token: str, home: Path) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    given = http.post(
        f"{base}/v1/models/churn/predict",
        headers={**headers, "X-Request-Id": "trace-abc-123"},
        json={"rows": [a_row()]},
    )
    assert given.headers["x-request-id"] == "trace-abc-123"
    made = http.get(f"{base}/healthz").headers["x-request-id"]
    assert len(made) == 16 and made != "trace-abc-123"
    bad = http.get(f"{base}/healthz", headers={"X-Request-Id": "bad id\twith junk"})
    assert bad.headers["x-request-id"] != "bad id\twith junk"
    # One JSON line per request in the server's log, with who called, never the token; lines
    # are written in batches, at most 0.2 s after their answers.
    log_path = next(home.parent.glob(f"serve-{base.rsplit(':', 1)[1]}.log"))
    deadline = time.monotonic() + 5
    while "trace-abc-123" not in (log := log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    line = next(x for x in lines if x.get("request_id") == "trace-abc-123")
    assert line["route"] == "/v1/models/{name}/predict" and line["status"] == 200
    assert line["actor"] == "user:ops" and line["key"] == token[:16]
    assert token not in log
    # Metrics need an admin's key with the admin scope.
    assert http.get(f"{base}/metrics").status_code == 401
    assert http.get(f"{base}/metrics", headers=headers).status_code == 403
    admin = {"Authorization": f"Bearer {admin_key(home, 'admin', user='watcher')}"}
    before = _counter(http.get(f"{base}/metrics", headers=admin).text)
    for _ in range(3):
        http.post(
            f"{base}/v1/models/churn/predict", headers=headers, json={"rows": [a_row(), a_row(1)]}
        )
    http.post(f"{base}/v1/models/churn/predict", headers=headers, json={"rows": [{}]})
    after = _counter(http.get(f"{base}/metrics", headers=admin).text)
    assert after[("churn", "1", "200")] - before.get(("churn", "1", "200"), 0) == 3
    assert after[("churn", "1", "422")] - before.get(("churn", "1", "422"), 0) == 1


def _counter(text: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("mlgate_predictions_total{"):
            labels = dict(
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            key = tuple(labels[k].strip('"') for k in ("model", "version", "status"))
            out[key] = float(line.rsplit(" ", 1)[1])  # type: ignore[index]
    return out  # type: ignore[return-value]


def test_each_model_has_an_openapi_document_of_its_own(client: httpx.Client) -> None:
    import jsonschema
    import schemathesis

    doc = client.get("/v1/models/churn/openapi.json").json()
    schemathesis.openapi.from_dict(doc)  # a valid OpenAPI document, or this raises
    operation = doc["paths"]["/v1/models/churn/predict"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(request)
    body = {"rows": [a_row(), a_row(1)]}
    assert not list(validator.iter_errors(body))
    assert list(
        validator.iter_errors({"rows": [{k: v for k, v in a_row().items() if k != "contract"}]})
    )
    assert list(validator.iter_errors({"rows": [{**a_row(), "tenure_months": "twelve"}]}))
    assert list(validator.iter_errors({"rows": [{**a_row(), "colour": "red"}]}))
    predicted = client.post("/v1/models/churn/predict", json=body).json()
    jsonschema.validate(predicted, answer)
    assert answer["properties"]["predictions"]["items"]["enum"] == [0, 1]
    assert client.get("/v1/models/nope/openapi.json").status_code == 404
