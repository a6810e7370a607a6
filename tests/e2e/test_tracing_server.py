"""Traces over the wire: `mlgate serve --workers 2` with the standard OTEL_* variables, sending
to a real OTLP/HTTP receiver (a small server here that decodes what arrives with
`opentelemetry-proto`, as a collector would). Every sampled call arrives, once, with the
caller's trace id, and nothing else does."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mlgate.sources import demo
from tests.e2e import http
from tests.e2e.helpers import TOKEN, quickstarted, redis_for_servers, running_server

pytestmark = pytest.mark.e2e
ROWS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in demo.churn_frame(n_rows=2)
    .drop(columns=[demo.ID_COLUMN, demo.TARGET])
    .to_dict(orient="records")
]


class Receiver:
    """An OTLP/HTTP traces endpoint: every span that arrives, decoded, with its resource."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.posts: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.took(self.path, self.headers.get("Content-Type", ""), body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def took(self, path: str, content_type: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self._lock:
            self.posts.append(f"{path} {content_type}")
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "resource": resource,
                        })  # fmt: skip

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def redis_env() -> Iterator[dict[str, str]]:
    with redis_for_servers() as env:
        yield env


def test_every_sampled_call_reaches_the_collector_once(
    tmp_path: Path, receiver: Receiver, redis_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    token = TOKEN.search(quickstarted(home))
    assert token is not None
    headers = {"Authorization": f"Bearer {token.group(0)}"}
    env = redis_env | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "churn-api",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.0",  # only the callers' sampled traces
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    sent: dict[str, bool] = {}
    with running_server(home, "--workers", "2", **env) as base:
        for i in range(16):  # a connection each (the workers share them); under 20 a second
            trace_id = f"{i + 1:032x}"
            sampled = i % 2 == 0
            flags = "01" if sampled else "00"
            answer = http.post(
                f"{base}/v1/models/churn/predict",
                headers={**headers, "traceparent": f"00-{trace_id}-{i + 1:016x}-{flags}"},
                json={"rows": ROWS},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["traceparent"].split("-")[1] == trace_id
            sent[trace_id] = sampled
        # the batch processors send within their delay; a clean stop flushes the rest
    deadline = time.monotonic() + 20
    wanted = {t for t, sampled in sent.items() if sampled}
    while time.monotonic() < deadline:
        servers = {s["trace_id"] for s in receiver.spans if s["kind"] == 2}  # SERVER
        if servers >= wanted:
            break
        time.sleep(0.2)
    servers_spans = [s for s in receiver.spans if s["kind"] == 2]
    assert {s["trace_id"] for s in servers_spans} == wanted  # every sampled one, nothing else
    assert len(servers_spans) == len(wanted)  # each once
    assert all(p.startswith("/v1/traces application/x-protobuf") for p in receiver.posts)
    instances = {s["resource"]["service.instance.id"] for s in servers_spans}
    assert 1 <= len(instances) <= 2  # a worker's own id (which worker took a call is the OS's)
    assert {s["resource"]["service.name"] for s in servers_spans} == {"churn-api"}
    for server in servers_spans:
        children = [c for c in receiver.spans if c["parent"] == server["span_id"]]
        assert {"authenticate", "authorize", "decode", "predict", "encode"} <= {
            c["name"] for c in children
        }
        assert server["attributes"]["mlgate.model"] == "churn"
        assert server["attributes"]["http.response.status_code"] == 200
        assert server["attributes"]["mlgate.consumer"] == "demo-customer"
