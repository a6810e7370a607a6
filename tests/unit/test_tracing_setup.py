"""Tracing's configuration from the standard OTEL_* variables: off when unset (and nothing of
OpenTelemetry imported), on with an endpoint, off with one warning for what cannot work."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlgate.tracing import annotate, calls, setup, stage

pytestmark = pytest.mark.fast


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    setup.reset()
    yield
    setup.reset()


def test_unset_means_off() -> None:
    assert setup.configure({}) is None
    assert setup.active() is None


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    ],
    ids=["endpoint", "sdk-disabled", "exporter-none"],
)
def test_an_endpoint_turns_it_on_unless_disabled(env: dict[str, str]) -> None:
    tracing = setup.configure(env)
    on = "OTEL_SDK_DISABLED" not in env and env.get("OTEL_TRACES_EXPORTER") != "none"
    assert (tracing is not None) is on
    if tracing is not None:
        from opentelemetry.sdk.trace.sampling import ParentBased

        assert isinstance(tracing.sampler, ParentBased)  # parentbased_always_on by default
        assert tracing.provider.resource.attributes["service.name"] == "mlgate"


def test_the_sampler_is_the_one_named() -> None:
    tracing = setup.configure({
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    })  # fmt: skip
    assert tracing is not None
    assert "0.01" in tracing.sampler.get_description()  # type: ignore[no-untyped-call]
    sampled = sum(tracing.begin(None, None, False).sampled for _ in range(20_000))
    assert 100 <= sampled <= 320  # 1% of 20,000 is 200; this band is > 6 sigma wide


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": ""}, "AlwaysOn"),
        ({"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "x"}, "AlwaysOn"),
        ({"OTEL_TRACES_SAMPLER": "", "OTEL_TRACES_SAMPLER_ARG": ""}, "ParentBased"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": ""}, "1.0"),
    ],
    ids=["empty-arg", "arg-not-read", "empty-sampler", "empty-ratio"],
)
def test_an_empty_variable_is_unset_and_only_a_ratio_sampler_reads_the_argument(
    env: dict[str, str], kind: str
) -> None:
    """(A compose file's `OTEL_TRACES_SAMPLER_ARG:` left blank beside `always_on` once turned
    tracing off: "could not convert string to float".)"""
    tracing = setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"} | env)
    assert tracing is not None
    assert kind in tracing.sampler.get_description()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "5"}, "0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, "0 to 1"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "4318"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "otlp or console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "not an http(s) URL"),
    ],
    ids=["sampler", "ratio-range", "ratio-text", "grpc", "exporter", "endpoint"],
)
def test_a_bad_configuration_turns_tracing_off_with_one_warning(
    env: dict[str, str], said: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"} | env
    with caplog.at_level(logging.WARNING, logger="mlgate.tracing"):
        assert setup.configure(env) is None
        assert setup.configure(env) is None  # asked again: still one warning
    warnings = [r for r in caplog.records if r.name == "mlgate.tracing"]
    assert len(warnings) == 1
    assert "tracing is off" in warnings[0].getMessage() and said in warnings[0].getMessage()


def test_off_means_nothing_recorded_and_nothing_imported() -> None:
    """(FastAPI imports OpenTelemetry's API where it is installed; the SDK, which does the
    work, stays out.)"""
    with stage("predict") as timed:
        timed.set("mlgate.scorer", "fast")
    annotate("mlgate.model", "churn")
    assert calls.current() is None
    code = (
        "import sys; from mlgate.api.app import create_app; from mlgate.bootstrap import bootstrap;"
        "from mlgate.settings import Settings; import tempfile, pathlib;"
        "home = pathlib.Path(tempfile.mkdtemp());"
        "create_app(bootstrap(Settings.from_env({'MLGATE_HOME': str(home)})));"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.exporter'))))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_recorded_call_keeps_its_stages_and_attributes() -> None:
    call = calls.Call(trace_id=1, span_id=2, parent_span_id=None, sampled=True)
    token = calls.enter(call)
    try:
        with stage("decode") as timed:
            timed.set("mlgate.rows", 3)
        with pytest.raises(ValueError), stage("predict"):
            raise ValueError("the model raised")
        annotate("mlgate.model", "churn")
        annotate("mlgate.alias", None)  # nothing said: nothing kept
    finally:
        calls.leave(token)
    assert [s.name for s in call.stages] == ["decode", "predict"]
    assert call.stages[0].attributes == {"mlgate.rows": 3}
    assert call.stages[1].error == "ValueError"
    assert all(s.start_ns <= s.end_ns for s in call.stages)
    assert call.attributes == {"mlgate.model": "churn"}
    assert call.traceparent() == f"00-{1:032x}-{2:016x}-01"


def test_a_stopping_server_does_not_wait_on_a_collector_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holding, release = threading.Event(), threading.Event()

    class Stuck(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # takes the batch and never answers (until the test ends)
            self.rfile.read(int(self.headers["Content-Length"]))
            holding.set()
            release.wait(120)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Stuck)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "120")  # the exporter would wait that long
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    try:
        assert setup.configure() is not None
        with setup.span("job training"):
            pass
        assert holding.wait(30)  # the batch is with the collector, unanswered
        stopper = threading.Thread(target=setup.stop, kwargs={"grace": 0.2})
        stopper.start()
        stopper.join(60)  # far less than the exporter's 120 s
        assert not stopper.is_alive()
    finally:
        release.set()
        collector.shutdown()
        collector.server_close()


def test_the_exporters_complaints_are_shown_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is not None
    exporter_log = logging.getLogger(setup.EXPORTER_LOGGER)
    assert any(isinstance(f, setup.Quieter) for f in exporter_log.filters)
    now = [0.0]
    log = logging.getLogger("mlgate.tests.quieter")
    quieter = setup.Quieter(60, clock=lambda: now[0])
    log.addFilter(quieter)
    try:
        with caplog.at_level(logging.WARNING, logger=log.name):
            for _ in range(5):
                log.warning("Transient error %s, retrying in %.2fs.", "refused", 1.0)
                now[0] += 2
            log.error("Failed to export batch")
            now[0] += 60
            log.warning("Transient error %s, retrying in %.2fs.", "refused", 2.0)
    finally:
        log.removeFilter(quieter)
    assert [r.getMessage() for r in caplog.records] == [
        "Transient error refused, retrying in 1.00s.",
        "Failed to export batch",
        "Transient error refused, retrying in 2.00s. (4 more like it not shown in 60 s)",
    ]


def test_the_operators_resource_attributes_win(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.instance.id=pod-7,service.version=2026.12,deployment.environment.name=prod",
    )
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    said = dict(setup.install(InMemorySpanExporter()).provider.resource.attributes)
    assert said["service.instance.id"] == "pod-7"
    assert said["service.version"] == "2026.12"
    assert said["deployment.environment.name"] == "prod"
    assert said["service.name"] == "mlgate"  # ours, where the operator names none
    monkeypatch.setenv("OTEL_SERVICE_NAME", "churn-api")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    said = dict(setup.install(InMemorySpanExporter()).provider.resource.attributes)
    assert said["service.name"] == "churn-api"
    assert str(said["service.instance.id"]).endswith(f"-{os.getpid()}")


def _sdk_samplers() -> list[object]:
    from opentelemetry.sdk.trace import sampling

    return [
        sampling.ALWAYS_ON, sampling.ALWAYS_OFF, sampling.TraceIdRatioBased(0.3),
        sampling.ParentBased(sampling.ALWAYS_ON), sampling.ParentBased(sampling.ALWAYS_OFF),
        sampling.ParentBasedTraceIdRatio(0.01), sampling.ParentBasedTraceIdRatio(0.5),
        sampling.ParentBased(  # any combination of the known ones
            sampling.TraceIdRatioBased(0.2), remote_parent_sampled=sampling.TraceIdRatioBased(0.7),
            remote_parent_not_sampled=sampling.ALWAYS_ON,
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("sampler", _sdk_samplers(), ids=lambda s: s.get_description())  # type: ignore[attr-defined]
def test_calls_are_sampled_as_the_sdks_sampler_decides(sampler: object) -> None:
    """The call's decision, taken from its trace id without the SDK's objects, is the SDK's
    `should_sample` for the same trace id and parent: new traces, and parents sampled or not
    (ids drawn around the ratio's bound too)."""
    import random

    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    tracing = setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing is not None
    tracing.sampler = sampler  # type: ignore[assignment]
    assert tracing._rules is not None  # decided by our rules, not the SDK's fallback
    draw = random.Random(39)
    propagator = TraceContextTextMapPropagator()
    bound = getattr(sampler, "bound", None) or round(0.01 * 2**64)
    for i in range(600):
        low = draw.getrandbits(64) if i % 3 else (bound + draw.randint(-2, 2)) % 2**64
        trace_id = draw.getrandbits(64) << 64 | low
        for flag in (None, "01", "00"):
            header = f"00-{trace_id:032x}-{draw.getrandbits(64) | 1:016x}-{flag}" if flag else None
            context = propagator.extract({"traceparent": header}) if header else None
            # a new trace's id is ours: decide for the drawn one through the same path
            theirs = sampler.should_sample(context, trace_id, "call", SpanKind.SERVER)  # type: ignore[attr-defined]
            if header is None:
                tracing._bits = lambda bits, t=trace_id: t if bits == 128 else 5  # type: ignore[misc]
            call = tracing.begin(header, None, False)
            assert call.trace_id == trace_id
            assert call.sampled is theirs.decision.is_sampled(), (sampler, header, trace_id)
            tracing._bits = draw.getrandbits


def test_a_sampler_of_its_own_decides_through_the_sdk() -> None:
    from opentelemetry.sdk.trace import sampling

    class EveryOther(sampling.Sampler):
        def __init__(self) -> None:
            self.seen = 0

        def should_sample(self, *args: object, **kwargs: object) -> sampling.SamplingResult:
            self.seen += 1
            decision = (
                sampling.Decision.RECORD_AND_SAMPLE if self.seen % 2 else sampling.Decision.DROP
            )
            return sampling.SamplingResult(decision)

        def get_description(self) -> str:
            return "every other"

    tracing = setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing is not None
    tracing.sampler = EveryOther()
    assert tracing._rules is None
    assert [tracing.begin(None, None, False).sampled for _ in range(4)] == [True, False] * 2


@pytest.mark.parametrize(
    "header",
    [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        " \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-next",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00: no more
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff: invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-zz-not-a-trace", "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + "x" * 600,  # too long
    ],
)  # fmt: skip
def test_a_traceparent_is_read_as_the_sdks_propagator_reads_it(header: str) -> None:
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    found = get_current_span(TraceContextTextMapPropagator().extract({"traceparent": header}))
    theirs = found.get_span_context()
    ours = setup.parse_traceparent(header)
    if not theirs.is_valid:
        assert ours is None
    else:
        assert ours == (theirs.trace_id, theirs.span_id, theirs.trace_flags.sampled)


def test_a_recorded_continued_call_keeps_the_callers_trace_state() -> None:
    tracing = setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing is not None
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    call = tracing.begin(
        parent, "vendor=abc,other=x y", False
    )  # a bad pair: all dropped, as the SDK does
    assert call.sampled and call.remote_parent and call.parent_span_id == 0x00F067AA0BA902B7
    from opentelemetry.trace.span import TraceState

    assert call.trace_state == TraceState.from_header(["vendor=abc,other=x y"]).to_header()
    assert tracing.begin(parent, "vendor=abc", False).trace_state == "vendor=abc"
    unsampled = tracing.begin(parent[:-2] + "00", "vendor=abc", False)
    assert not unsampled.sampled and unsampled.trace_state == ""  # never exported: not read
