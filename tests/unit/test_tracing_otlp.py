"""Our OTLP bytes say what the SDK's encoder says of the same spans: both decoded with
opentelemetry-proto, compared field by field."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mlgate.tracing import otlp
from mlgate.tracing.calls import Call, Stage, ended
from mlgate.tracing.sink import SpanSink

pytestmark = pytest.mark.fast
T0 = 1_765_000_000_000_000_000


def a_call(*, parent: bool) -> Call:
    call = Call(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7,
        parent_span_id=0x1234 if parent else None, sampled=True, remote_parent=parent,
        trace_state="vendor=abc" if parent else "", start_ns=T0,
    )  # fmt: skip
    call.stages += [
        Stage("authenticate", T0 + 10, T0 + 30, {"mlgate.actor": "consumer:acme"}),
        Stage("predict", T0 + 40, T0 + 900, {"mlgate.scorer": "fast", "mlgate.rows": 3}),
        Stage("encode", T0 + 910, T0 + 950, {}, error="ValueError"),
    ]
    call.attributes.update({
        "mlgate.model": "churn", "mlgate.version": 2, "mlgate.alias": "prod",
        "mlgate.forced": True, "mlgate.ratio": 0.25, "mlgate.neg": -3,
    })  # fmt: skip
    return call


def decoded(data: bytes) -> list[dict[str, Any]]:
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    out = []
    for resource_spans in message.resource_spans:
        resource = {a.key: a.value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                fields = {f.name: v for f, v in span.ListFields() if f.name != "attributes"}
                fields["attributes"] = {a.key: a.value for a in span.attributes}
                fields["scope"] = (scope_spans.scope.name, scope_spans.scope.version)
                fields["resource"] = resource
                out.append(fields)
    return out


@pytest.mark.parametrize("parent", [False, True], ids=["new-trace", "continued"])
@pytest.mark.parametrize("status", [200, 503])
def test_our_bytes_decode_as_the_sdks_do(parent: bool, status: int) -> None:
    resource = Resource.create({"service.name": "churn-api", "service.version": "1.2.3"})
    scope = InstrumentationScope("mlgate", "1.2.3")
    said = {"http.request.method": "POST", "http.response.status_code": status,
            "http.route": "/v1/models/{name}/predict"}  # fmt: skip
    sink = SpanSink(SimpleSpanProcessor(InMemorySpanExporter()), resource, scope)
    try:
        sink._random = random.Random(7)
        readable = sink._spans(ended(a_call(parent=parent), "POST /x", T0 + 1000, said, status))
    finally:
        sink.stop()
    theirs = decoded(encode_spans(readable).SerializeToString())
    ours = decoded(otlp.request(
        dict(resource.attributes), ("mlgate", "1.2.3"),
        otlp.call_spans(ended(a_call(parent=parent), "POST /x", T0 + 1000, said, status),
                        random.Random(7)),
    ))  # fmt: skip
    assert len(ours) == len(theirs) == 4
    assert ours == theirs


def test_a_flush_sends_the_calls_waiting_when_it_began_in_full_batches() -> None:
    """Calls that come while a request is sent wait for the next round: draining them too, a
    busy worker sent a request of a few calls every few milliseconds."""
    from mlgate.tracing import sink as sinks

    resource = Resource.create({"service.name": "churn-api"})
    sent: list[int] = []
    sink: SpanSink

    def send(data: bytes) -> bool:
        sent.append(len(decoded(data)) // 4)  # a_call has a server span and three stages
        sink.put(ended(a_call(parent=False), "POST /x", T0 + 1000, {}, 200))  # came meanwhile
        return True

    sink = SpanSink(
        SimpleSpanProcessor(InMemorySpanExporter()), resource,
        InstrumentationScope("mlgate", "1"), interval=3600, send=send,
    )  # fmt: skip
    sink._stopped.set()  # its thread ends: this test flushes
    sink._wake.set()
    sink._thread.join()
    try:
        for _ in range(sinks.BATCH + 88):
            sink.put(ended(a_call(parent=False), "POST /x", T0 + 1000, {}, 200))
        sink.flush()
        assert sent == [sinks.BATCH, 88]
        assert len(sink._queue) == 2  # the calls put while sending wait for the next round
    finally:
        sink._send = None  # the last flush at stop: in-memory, no send
        sink.stop()
