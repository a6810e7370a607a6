"""Traces of calls, in process: the SDK's in-memory exporter behind the whole app, so every
span, its parent, its attributes and the absence of secrets are read as a collector would get
them. Over a socket to a real OTLP/HTTP receiver from `mlgate serve --workers 2`:
tests/e2e/test_tracing_server.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.sources import demo
from mlgate.tracing import setup
from tests.conftest import make_services
from tests.e2e.helpers import TOKEN, admin_key, mlgate, quickstarted

ROWS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in demo.churn_frame(n_rows=3)
    .drop(columns=[demo.ID_COLUMN, demo.TARGET])
    .to_dict(orient="records")
]
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("tracing") / "home"
    printed = quickstarted(home)
    consumer = TOKEN.search(printed)
    assert consumer is not None
    admin = admin_key(home, "admin", "predict", "read", "train")
    services = make_services(home)
    exporter = InMemorySpanExporter()
    setup.install(exporter, ALWAYS_ON)
    try:
        with TestClient(create_app(services)) as client:
            yield {
                "client": client,
                "exporter": exporter,
                "admin": {"Authorization": f"Bearer {admin}"},
                "consumer": {"Authorization": f"Bearer {consumer.group(0)}"},
                "secrets": [admin, consumer.group(0)],
                "services": services,
                "home": home,
            }
    finally:
        setup.reset()
        services.close()


@pytest.fixture
def sampler(app: dict[str, Any]) -> Iterator[Any]:
    """Set the process's sampler for one test; back to always-on after it."""
    tracing = setup.active()
    assert tracing is not None

    def use(chosen: Any) -> None:
        tracing.sampler = chosen

    yield use
    tracing.sampler = ALWAYS_ON


def spans_of(app: dict[str, Any]) -> list[ReadableSpan]:
    setup.flush()
    exporter: InMemorySpanExporter = app["exporter"]
    found = list(exporter.get_finished_spans())
    exporter.clear()
    return found


def one_trace(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans]
    server = servers[0]
    children = [s for s in spans if s is not server]
    for child in children:
        assert child.context.trace_id == server.context.trace_id
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert server.start_time <= child.start_time <= child.end_time <= server.end_time
    return server, children


def test_a_prediction_is_one_server_span_with_a_child_per_stage(app: dict[str, Any]) -> None:
    spans_of(app)
    answer = app["client"].post(
        "/v1/models/churn/predict", headers=app["consumer"], json={"rows": ROWS}
    )
    assert answer.status_code == 200
    server, children = one_trace(spans_of(app))
    assert server.name == "POST /v1/models/{name}/predict"
    names = [c.name for c in sorted(children, key=lambda c: c.start_time)]
    assert names == [
        "authenticate", "authorize", "plan", "resolve", "decode", "admit", "predict", "meter",
        "log_sample", "encode",
    ]  # fmt: skip
    said = dict(server.attributes or {})
    assert said["http.request.method"] == "POST"
    assert said["http.route"] == "/v1/models/{name}/predict"
    assert said["http.response.status_code"] == 200
    assert said["mlgate.model"] == "churn"
    assert said["mlgate.version"] == answer.json()["version"]
    assert said["mlgate.rows"] == 3
    assert said["mlgate.consumer"] == "demo-customer"
    assert said["mlgate.plan"] == "starter"
    assert said["mlgate.key_prefix"] in app["consumer"]["Authorization"]
    predict = next(c for c in children if c.name == "predict")
    assert str((predict.attributes or {})["mlgate.scorer"]).endswith(("fast", "library"))
    # the answer names the trace; the access-log and the ids agree
    header = answer.headers["traceparent"]
    assert header == f"00-{server.context.trace_id:032x}-{server.context.span_id:016x}-01"


def test_no_span_holds_a_secret(app: dict[str, Any]) -> None:
    spans_of(app)
    for headers in (app["consumer"], app["admin"]):
        app["client"].post("/v1/models/churn/predict", headers=headers, json={"rows": ROWS})
    app["client"].get("/v1/models", headers=app["admin"])
    exported = spans_of(app)
    assert len(exported) > 10
    text = json.dumps([s.to_json() for s in exported])
    for secret in app["secrets"]:
        assert secret not in text
        assert secret.split("_")[-1] not in text  # not even the secret half alone


def test_the_callers_traceparent_is_continued(app: dict[str, Any]) -> None:
    spans_of(app)
    incoming = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
    answer = app["client"].post(
        "/v1/models/churn/predict",
        headers={**app["consumer"], "traceparent": incoming, "tracestate": "vendor=abc"},
        json={"rows": ROWS[:1]},
    )
    assert answer.status_code == 200
    server, _ = one_trace(spans_of(app))
    assert f"{server.context.trace_id:032x}" == PARENT_TRACE
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT_SPAN
    assert server.parent.is_remote
    assert answer.headers["traceparent"].startswith(f"00-{PARENT_TRACE}-")
    assert server.context.trace_state.get("vendor") == "abc"


def test_a_malformed_traceparent_starts_a_new_trace(app: dict[str, Any]) -> None:
    spans_of(app)
    answer = app["client"].post(
        "/v1/models/churn/predict",
        headers={**app["consumer"], "traceparent": "00-zz-not-a-trace"},
        json={"rows": ROWS[:1]},
    )
    assert answer.status_code == 200
    server, _ = one_trace(spans_of(app))
    assert server.parent is None
    assert answer.headers["traceparent"].split("-")[1] == f"{server.context.trace_id:032x}"


def test_an_unsampled_parent_is_honoured_and_only_an_admin_can_force(
    app: dict[str, Any], sampler: Any
) -> None:
    sampler(ParentBased(ALWAYS_ON))
    spans_of(app)
    unsampled = f"00-{PARENT_TRACE}-{PARENT_SPAN}-00"
    calls = [
        (app["consumer"], {}),  # parent says no
        (app["consumer"], {"X-Mlgate-Trace": "1"}),  # a consumer cannot force
        (app["admin"], {"X-Mlgate-Trace": "1"}),  # an admin can
    ]
    answers = []
    for auth, extra in calls:
        answer = app["client"].post(
            "/v1/models/churn/predict",
            headers={**auth, **extra, "traceparent": unsampled},
            json={"rows": ROWS[:1]},
        )
        assert answer.status_code == 200
        answers.append(answer.headers["traceparent"])
    assert answers[0].endswith("-00") and answers[1].endswith("-00")
    assert answers[2].endswith("-01")
    server, children = one_trace(spans_of(app))  # the forced one only
    assert (server.attributes or {})["mlgate.forced"] is True
    assert (server.attributes or {})["mlgate.actor"] == "user:ops"
    assert {"authenticate", "predict", "encode"} <= {c.name for c in children}


def test_sampled_out_calls_export_nothing(app: dict[str, Any], sampler: Any) -> None:
    sampler(ALWAYS_OFF)
    spans_of(app)
    for _ in range(3):
        answer = app["client"].post(
            "/v1/models/churn/predict", headers=app["consumer"], json={"rows": ROWS[:1]}
        )
        assert answer.status_code == 200
        assert answer.headers["traceparent"].endswith("-00")
    assert spans_of(app) == []


def test_a_refusal_is_named_on_its_span(app: dict[str, Any]) -> None:
    spans_of(app)
    bad = {"Authorization": "Bearer mlg_000000000000_" + "x" * 30}
    refused = app["client"].post("/v1/models/churn/predict", headers=bad, json={"rows": ROWS})
    assert refused.status_code == 401
    server, children = one_trace(spans_of(app))
    said = dict(server.attributes or {})
    assert said["http.response.status_code"] == 401
    assert said["mlgate.refusal"] == refused.json()["code"]
    authenticate = next(c for c in children if c.name == "authenticate")
    assert (authenticate.attributes or {})["error.type"] == "Unauthenticated"
    # the caller's mistake, not the server's: no span of the call counts as an error
    assert all(s.status.status_code == StatusCode.UNSET for s in [server, *children])

    unknown = app["client"].post(
        "/v1/models/churn/predict", headers=app["consumer"], json={"rows": [{"nope": 1}]}
    )
    assert unknown.status_code == 422
    server, children = one_trace(spans_of(app))
    assert "decode" in {c.name for c in children}
    assert (server.attributes or {})["mlgate.refusal"]


def test_explanations_and_every_protocol_are_traced(app: dict[str, Any]) -> None:
    client = app["client"]
    spans_of(app)
    explained = client.post(  # the demo's plan has no explanations; an admin needs none
        "/v1/models/churn/predict",
        headers=app["admin"],
        json={"rows": ROWS, "explain": True},
    )
    assert explained.status_code == 200
    server, children = one_trace(spans_of(app))
    explain = next(c for c in children if c.name == "explain")
    assert (explain.attributes or {})["mlgate.explained_rows"] == 3
    assert (server.attributes or {})["mlgate.explained_rows"] == 3

    mlflow = client.post(
        "/v1/models/churn/invocations",
        headers=app["consumer"],
        json={"dataframe_records": ROWS},
    )
    assert mlflow.status_code == 200
    server, children = one_trace(spans_of(app))
    assert server.name == "POST /v1/models/{name}/invocations"
    assert {"decode", "predict", "encode"} <= {c.name for c in children}

    columns = [c for c in ROWS[0]]
    inputs = [
        {"name": c, "shape": [1], "datatype": "BYTES" if isinstance(ROWS[0][c], str) else "FP64",
         "data": [ROWS[0][c]]}
        for c in columns if ROWS[0][c] is not None
    ]  # fmt: skip
    oip = client.post("/v2/models/churn/infer", headers=app["consumer"], json={"inputs": inputs})
    assert oip.status_code == 200, oip.text
    server, children = one_trace(spans_of(app))
    assert server.name == "POST /v2/models/{name}/infer"
    assert {"decode", "predict", "encode"} <= {c.name for c in children}


def test_admin_routes_are_traced_through_the_middleware(app: dict[str, Any]) -> None:
    spans_of(app)
    listed = app["client"].get("/v1/models", headers=app["admin"])
    assert listed.status_code == 200
    assert listed.headers["traceparent"].endswith("-01")
    server, children = one_trace(spans_of(app))
    assert server.name == "GET /v1/models"
    assert (server.attributes or {})["mlgate.actor"] == "user:ops"
    assert "authenticate" in {c.name for c in children}


def test_a_path_no_route_matches_has_no_http_route(app: dict[str, Any]) -> None:
    spans_of(app)
    missing = app["client"].get("/no/such/path", headers=app["admin"])
    assert missing.status_code == 404
    server, _ = one_trace(spans_of(app))
    assert server.name == "GET"  # the method alone, as the conventions name it
    said = dict(server.attributes or {})
    assert "http.route" not in said
    assert said["url.path"] == "/no/such/path"
    assert said["http.response.status_code"] == 404


def test_the_latency_histograms_carry_trace_ids_as_exemplars(app: dict[str, Any]) -> None:
    client = app["client"]
    answer = client.post("/v1/models/churn/predict", headers=app["consumer"], json={"rows": ROWS})
    trace_id = answer.headers["traceparent"].split("-")[1]
    metrics = client.get(
        "/metrics",
        headers={**app["admin"], "Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("application/openmetrics-text")
    text = metrics.text
    assert text.rstrip().endswith("# EOF")
    latency = [
        line for line in text.splitlines()
        if line.startswith("mlgate_http_request_duration_seconds_bucket")
        and 'route="/v1/models/{name}/predict"' in line and "trace_id" in line
    ]  # fmt: skip
    assert latency, "no exemplar on the prediction route's latency"
    assert any(f'trace_id="{trace_id}"' in line for line in latency)
    stages = [
        line for line in text.splitlines()
        if line.startswith("mlgate_stage_duration_seconds_count")
    ]  # fmt: skip
    assert {'stage="predict"' in line and 'model="churn"' in line for line in stages} >= {True}
    plain = client.get("/metrics", headers=app["admin"])  # Prometheus' own text format
    assert plain.headers["content-type"].startswith("text/plain")
    assert "# EOF" not in plain.text and "mlgate_stage_duration_seconds" in plain.text


def test_the_access_log_line_names_the_trace(
    app: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mlgate.access"):
        answer = app["client"].post(
            "/v1/models/churn/predict", headers=app["consumer"], json={"rows": ROWS[:1]}
        )
    trace_id = answer.headers["traceparent"].split("-")[1]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mlgate.access"]
    mine = [line for line in lines if line.get("trace_id") == trace_id]
    assert mine and mine[0]["traced"] is True and mine[0]["request_id"]


def test_work_behind_the_calls_is_traced(app: dict[str, Any]) -> None:
    """A batch job (its chunks inside it), and an export as a child of the call that asked."""
    client, services = app["client"], app["services"]
    frame = demo.churn_frame(n_rows=30).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    spans_of(app)
    answer = client.post(
        "/v1/models/churn/batches",
        headers={**app["admin"], "Content-Type": "text/csv"},
        content=frame.to_csv(index=False).encode(),
    )
    assert answer.status_code == 202, answer.text
    services.batches.wait(answer.json()["id"], timeout=60)
    spans = spans_of(app)
    [job] = [s for s in spans if s.name == "job batch"]
    assert (job.attributes or {})["mlgate.job.state"] == "succeeded"
    chunks = [s for s in spans if s.name == "batch chunk"]
    assert chunks and all(c.parent is not None and c.parent.span_id == job.context.span_id
                          for c in chunks)  # fmt: skip
    assert sum(int((c.attributes or {})["mlgate.rows"]) for c in chunks) == 30  # type: ignore[arg-type]

    exported = client.get(
        "/v1/models/churn/versions/1/export", params={"format": "onnx"}, headers=app["admin"]
    )
    assert exported.status_code == 200
    server, children = one_trace(spans_of(app))
    assert server.name == "GET /v1/models/{name}/versions/{version}/export"
    [export] = [c for c in children if c.name == "export onnx"]
    assert (export.attributes or {})["mlgate.model"] == "churn"


def test_a_logged_prediction_names_its_trace(app: dict[str, Any]) -> None:
    services = app["services"]
    services.monitor.configure("churn", sample_rate=1.0)
    services.recorder.forget()
    try:
        answer = app["client"].post(
            "/v1/models/churn/predict", headers=app["consumer"], json={"rows": ROWS[:1]}
        )
        assert answer.status_code == 200
        trace_id = answer.headers["traceparent"].split("-")[1]
        services.recorder.flush()
        with services.uow() as uow:
            logged = uow.monitoring.logged_requests([answer.headers["x-request-id"]])
        assert logged[answer.headers["x-request-id"]].trace_id == trace_id
    finally:
        services.monitor.configure("churn", sample_rate=0.0)
        services.recorder.forget()


def test_a_line_of_the_bill_names_traced_calls(app: dict[str, Any]) -> None:
    """(A key of its own: a line names the first three traced calls of its hour.)"""
    client, services = app["client"], app["services"]
    key = mlgate(app["home"], "keys", "create", "--consumer", "demo-customer", "--name", "bill",
                 "-q").stdout.strip()  # fmt: skip
    answer = client.post(
        "/v1/models/churn/predict", headers={"Authorization": f"Bearer {key}"},
        json={"rows": ROWS[:1]},
    )  # fmt: skip
    assert answer.status_code == 200
    trace_id = answer.headers["traceparent"].split("-")[1]
    services.flusher.flush()
    month = datetime.now(UTC).strftime("%Y-%m")  # a call at a month's end: see the retry
    rows = client.get(
        "/v1/usage", params={"month": month, "by": "hour"}, headers=app["consumer"]
    ).json()
    named = [r for r in rows if trace_id in r["trace_ids"]]
    assert len(named) == 1
    assert named[0]["account"] == "consumer:demo-customer" and named[0]["status"] == 200
    assert named[0]["key_prefix"] in key and named[0]["trace_ids"] == [trace_id]


def test_every_call_of_a_busy_run_has_its_start_and_all_its_stages(app: dict[str, Any]) -> None:
    spans_of(app)
    for _ in range(30):  # an admin's calls: no plan's rate limit in the way
        answer = app["client"].post(
            "/v1/models/churn/predict", headers=app["admin"], json={"rows": ROWS}
        )
        assert answer.status_code == 200
    traces: dict[int, list[ReadableSpan]] = {}
    for found in spans_of(app):
        traces.setdefault(found.context.trace_id, []).append(found)
    assert len(traces) == 30
    for spans in traces.values():
        server, children = one_trace(spans)
        assert server.start_time is not None and server.end_time is not None
        # the server span starts when the call came in, not at 1970
        assert 0 < min(c.start_time or 0 for c in children) - server.start_time < 10**9
        assert {"predict", "meter", "log_sample", "encode"} <= {c.name for c in children}


def test_a_refusal_before_the_body_is_read_has_its_authorize_stage(app: dict[str, Any]) -> None:
    spans_of(app)
    refused = app["client"].post("/v1/plans", headers=app["consumer"], json={"name": "free"})
    assert refused.status_code == 403
    server, children = one_trace(spans_of(app))
    [authorize] = [c for c in children if c.name == "authorize"]
    assert (authorize.attributes or {})["error.type"] == "PermissionDenied"
    assert (server.attributes or {})["mlgate.refusal"] == refused.json()["code"]
