"""Bounded numbers everywhere: every integer a route takes (path, query, body, nested schemas; the
pages' routes too) declares its bounds in the OpenAPI document, so a number out of range gets a
422 naming its field before a database sees it. The bounds live in api/schemas.py.

Issue 33: `GET /v1/models/{name}/rollouts/9223372036854775808` answered 500 (SQLite cannot bind
an integer past 2**63 - 1); the routes added after `VersionNumber` took bare `int`s.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.api.schemas import MAX_NUMBER
from tests.conftest import admin_token, make_services

SQL_BIGINT_PAST = 2**63  # 9223372036854775808: what schemathesis sent
BOUNDS = ("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")


def unbounded_integers(doc: dict[str, Any]) -> list[str]:
    """Where a request of `doc` may carry an integer without a lower or an upper bound: the
    parameters and request bodies of every operation, through $refs, properties, items,
    additionalProperties and anyOf/oneOf/allOf."""
    components = doc.get("components", {}).get("schemas", {})
    found: list[str] = []

    def walk(schema: Any, where: str, refs: frozenset[str]) -> None:
        if isinstance(schema, list):
            for i, item in enumerate(schema):
                walk(item, f"{where}[{i}]", refs)
            return
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref not in refs:
            walk(components[ref.rsplit("/", 1)[-1]], f"{where}<{ref.rsplit('/', 1)[-1]}>",
                 refs | {ref})  # fmt: skip
        kinds = schema.get("type")
        if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
            missing = [b[0] for b in BOUNDS if not any(k in schema for k in b)]
            if missing:
                found.append(f"{where}: no {' and no '.join(missing)}")
        for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            if key in schema:
                walk(schema[key], f"{where}.{key}", refs)
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{where}.{name}", refs)

    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                walk(parameter.get("schema"), f"{label} {parameter['in']} {parameter['name']}",
                     frozenset())  # fmt: skip
            for kind, content in operation.get("requestBody", {}).get("content", {}).items():
                walk(content.get("schema"), f"{label} body ({kind})", frozenset())
    return found


def every_route_documented(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with the routes it leaves out (the pages) put in."""
    routes = []
    for context in iter_route_contexts(app.routes):  # through the included routers
        route = context.original_route
        if isinstance(route, APIRoute):
            route = copy.copy(route)
            route.include_in_schema = True
            routes.append(route)
    return get_openapi(title="every route", version="0", routes=routes)


class Inner(BaseModel):
    count: int


class Outer(BaseModel):
    inner: Inner
    bounded: Annotated[int, Field(ge=1, le=9)] = 1
    pins: dict[str, int] = {}


@pytest.mark.in_process
def test_the_walk_finds_an_unbounded_integer_wherever_a_request_carries_one() -> None:
    app = FastAPI()

    @app.post("/things/{thing_id}", include_in_schema=False)
    def post(thing_id: int, body: Outer, page: int | None = None) -> None: ...

    assert unbounded_integers(app.openapi()) == []  # the page-like route is hidden
    found = unbounded_integers(every_route_documented(app))
    assert len(found) == 4, found
    assert any(f.startswith("POST /things/{thing_id} path thing_id:") for f in found)
    assert any(" query page" in f for f in found)
    assert any(f.endswith("<Inner>.count: no minimum and no maximum") for f in found)
    assert any(".pins.additionalProperties:" in f for f in found)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    services = make_services(tmp_path_factory.mktemp("bounds") / "home")
    yield create_app(services)
    services.close()


@pytest.mark.in_process
def test_every_integer_of_every_route_and_page_is_bounded(app: FastAPI) -> None:
    doc = every_route_documented(app)
    assert any(p.startswith("/ui/") for p in doc["paths"]) and len(doc["paths"]) > 100
    assert unbounded_integers(doc) == []


@pytest.mark.in_process
def test_the_served_document_states_the_bounds(app: FastAPI) -> None:
    """What clients and schemathesis read."""
    served = app.openapi()
    parameters = served["paths"]["/v1/models/{name}/rollouts/{rollout_id}"]["get"]["parameters"]
    rollout_id = next(p for p in parameters if p["name"] == "rollout_id")["schema"]
    assert (rollout_id["minimum"], rollout_id["maximum"]) == (1, MAX_NUMBER)
    assert unbounded_integers(served) == []


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The whole app in process over each metadata database, with an admin's key."""
    url = None if request.param == "sqlite" else request.getfixturevalue(f"{request.param}_url")
    services = make_services(tmp_path / "home", url)
    token = admin_token(services, "read", "admin", "predict", "generate", "train")
    with TestClient(create_app(services), raise_server_exceptions=False) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        yield http
    services.close()


ID_ROUTES = [  # (method, path with {id}, the field, a body)
    ("GET", "/v1/models/m/rollouts/{id}", "path.rollout_id", None),
    ("POST", "/v1/models/m/rollouts/{id}/decide", "path.rollout_id", None),
    ("POST", "/v1/models/m/rollouts/{id}/stop", "path.rollout_id", {}),
    ("DELETE", "/v1/models/m/schedules/{id}", "path.schedule_id", None),
    ("DELETE", "/v1/grants/{id}", "path.grant_id", None),
]
OUT_OF_RANGE = [str(SQL_BIGINT_PAST), str(2**63 - 1), str(MAX_NUMBER + 1), "0", "-1",
                "-9223372036854775809"]  # fmt: skip


BODIES = [  # (method, path, body or query, the field named): numbers in bodies and queries
    ("POST", "/v1/models/m/schedules", {"json": {"new_rows": 10**20}}, "body.new_rows"),
    ("POST", "/v1/models/m/generate", {"json": {"n": 5, "seed": -1}}, "body.seed"),
    ("POST", "/v1/models/m/generate", {"json": {"n": 2**63}}, "body.n"),
    ("POST", "/v1/models/m/feedback",
     {"json": {"feedback": [{"request_id": "x", "row": 2**63, "label": 1}]}},
     "body.feedback.0.row"),
    ("POST", "/v1/plans", {"json": {"name": "p", "thresholds": [80, 2**63]}},
     "body.thresholds.1"),
    ("POST", "/v1/consumers/c/subscriptions", {"json": {"plan": "p", "pins": {"m": 2**63}}},
     "body.pins.m"),
    ("PUT", "/v1/models/m/monitoring/settings", {"json": {"min_rows": None}}, "body.min_rows"),
    ("GET", "/v1/audit", {"params": {"since": "0.0"}}, "query.since"),
    # found by scripts/fuzz: a number in scientific notation was read as seconds since 1970
    ("GET", "/v1/audit", {"params": {"since": "-2.225073858507203e-309"}}, "query.since"),
    ("GET", "/v1/audit", {"params": {"until": "1e9"}}, "query.until"),
    ("GET", "/v1/models/m/monitoring", {"params": {"version": str(2**63)}}, "query.version"),
    ("POST", "/v1/models/m/batches", {"params": {"version": "-1"}, "content": b"a\n1\n"},
     "query.version"),
]  # fmt: skip


def test_numbers_out_of_range_get_422_naming_the_field_on_every_database(
    client: TestClient,
) -> None:
    for method, path, field, body in ID_ROUTES:
        for value in OUT_OF_RANGE:
            answer = client.request(method, path.format(id=value), json=body)
            assert answer.status_code == 422, (method, path, value, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            fields = [e["field"] for e in answer.json()["errors"]]
            assert fields == [field], (method, path, value, fields)
        # the largest id in range reaches the database and is simply not there
        answer = client.request(method, path.format(id=MAX_NUMBER), json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    for method, path, kwargs, field in BODIES:
        answer = client.request(method, path, **kwargs)
        assert answer.status_code == 422, (method, path, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], (path, answer.text)


@pytest.mark.in_process
def test_a_browser_gets_an_out_of_range_or_unknown_page_as_a_page(app: FastAPI) -> None:
    """The dashboard and the portal answer a bad id or an unknown path as every other error
    there: an HTML page naming the field; an API client still gets problem+json."""
    with TestClient(app, raise_server_exceptions=False) as http:
        html = {"Accept": "text/html,application/xhtml+xml"}
        page = http.get(f"/ui/models/m/rollouts/{2**63}", headers=html)
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert "rollout_id: Input should be less than or equal to" in page.text
        missing = http.get("/portal/no/such/page", headers=html)
        assert missing.status_code == 404 and "no such page: /portal/no/such/page" in missing.text
        api = http.get(f"/ui/models/m/rollouts/{2**63}")
        assert api.status_code == 422 and api.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in api.json()["errors"]] == ["path.rollout_id"]
        assert http.get("/v1/nothing", headers=html).headers["content-type"] == (
            "application/problem+json"
        )


@pytest.mark.in_process
def test_each_models_own_document_bounds_its_integers_as_the_server_does() -> None:
    """`/v1/models/{name}/openapi.json` (generated per model, not by FastAPI) states the same
    bounds: explain's top, generate's n and seed; and a top past its bound is refused."""
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from mlgate.errors import InvalidInput
    from mlgate.serving.openapi import model_openapi
    from mlgate.serving.service import Ask
    from tests.unit.test_fit_every_row import World

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40)})
    frame["y"] = (frame["x"] > 0).map({True: "a", False: "b"})
    version = World(frame).train("y", "logistic_regression")
    for task in ("classification", "generation", "forecast"):
        document = model_openapi(replace(version, task=task), path_name="m")
        assert unbounded_integers(document) == [], task
    with pytest.raises(InvalidInput, match="from 1 to 2,147,483,647"):
        Ask().read({"top": 2**63}, "explain")
    ask = Ask()
    ask.read({"top": MAX_NUMBER}, "explain")
    assert ask.top == MAX_NUMBER


def _integer_fields(model: type[BaseModel]) -> list[str]:
    import typing

    def holds_int(hint: Any) -> bool:
        return hint is int or any(holds_int(a) for a in typing.get_args(hint))

    return [n for n, f in model.model_fields.items() if holds_int(f.annotation)]


@pytest.mark.in_process
def test_no_json_body_reads_true_or_a_string_as_an_integer(app: FastAPI) -> None:
    # schemathesis found `{"seed": true}` accepted by POST …/generate (read as seed 1):
    # pydantic's lax mode reads true and "5" as integers; every body's integers are strict now
    checked: list[str] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        body = getattr(route, "body_field", None) if isinstance(route, APIRoute) else None
        model = body.field_info.annotation if body is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for field in _integer_fields(model):
            for wrong in (True, "5"):
                try:
                    model.model_validate({field: wrong})
                    refused = False
                except ValueError as exc:
                    errors = getattr(exc, "errors", lambda: [])()
                    refused = any(e["loc"] and e["loc"][0] == field for e in errors)
                assert refused, f"{model.__name__}.{field} reads {wrong!r} as an integer"
            checked.append(f"{model.__name__}.{field}")
    assert len(checked) >= 15, checked  # the walk reached the bodies
