"""Tracing's configuration: the standard `OTEL_*` variables, read once per process.

Tracing is on when a traces endpoint is named (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT`) or `OTEL_TRACES_EXPORTER` asks for `otlp` or `console`; it is off
when none is set, when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Spans go over
OTLP/HTTP with protobuf (the SDK's exporter, which reads its own `OTEL_EXPORTER_OTLP_*`
variables: headers, timeout, compression, certificates). The sampler is the SDK's, named by
`OTEL_TRACES_SAMPLER[_ARG]` (default `parentbased_always_on`). A configuration that cannot work
(an unknown sampler or exporter, a ratio outside 0–1, gRPC asked for, an endpoint that is not an
http(s) URL) turns tracing off with one warning: the server always starts.

Unset, the OpenTelemetry packages are not even imported, and the request path pays one global
read per call (`active()`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlgate.tracing.calls import AttributeValue, Call, Ended, current, ended

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

    from mlgate.tracing.sink import SpanSink

log = logging.getLogger("mlgate.tracing")
SCOPE = "mlgate"
SAMPLERS = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)  # fmt: skip


# W3C trace context, read as the SDK's TraceContextTextMapPropagator reads it (the same
# pattern, length bound and invalid values): calls carrying one pay a regular expression here
# rather than the propagator's context objects.
_TRACEPARENT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$"
)
_TRACESTATE_LIMIT = 512  # the SDK's _TRACECONTEXT_MAXIMUM_TRACESTATE_LENGTH
_LOW64 = (1 << 64) - 1

# A sampler's decision for one case (no parent, a sampled parent, an unsampled parent), as the
# SDK's would make it: True (always), False (never), or a TraceIdRatioBased bound (the trace
# id's low 64 bits below it).
Rule = bool | int


def parse_traceparent(header: str) -> tuple[int, int, bool] | None:
    """(trace id, span id, sampled flag) of a valid `traceparent`, else None."""
    if len(header) > 512:
        return None
    found = _TRACEPARENT.match(header)
    if found is None:
        return None
    version, trace_hex, span_hex, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def _rules(sampler: Sampler) -> tuple[Rule, Rule, Rule] | None:
    """The SDK sampler's decisions for a call (root, remote parent sampled, remote parent not
    sampled) as rules applied without its objects; None for a sampler this does not know,
    which then decides each call itself."""
    from opentelemetry.sdk.trace import sampling

    def leaf(given: Sampler) -> Rule | None:
        if type(given) in (sampling.StaticSampler, sampling._AlwaysOn, sampling._AlwaysOff):
            decision = given._decision  # type: ignore[attr-defined]
            return bool(decision is sampling.Decision.RECORD_AND_SAMPLE)
        if type(given) is sampling.TraceIdRatioBased:
            return int(given.bound)
        return None

    own = leaf(sampler)
    if own is not None:  # a ratio reads the trace id whatever the parent said, as the SDK's
        return own, own, own
    if type(sampler) not in (
        sampling.ParentBased, sampling.ParentBasedTraceIdRatio,
        sampling._ParentBasedAlwaysOn, sampling._ParentBasedAlwaysOff,
    ):  # fmt: skip
        return None
    parts = (
        leaf(sampler._root),  # type: ignore[attr-defined]
        leaf(sampler._remote_parent_sampled),  # type: ignore[attr-defined]
        leaf(sampler._remote_parent_not_sampled),  # type: ignore[attr-defined]
    )
    if any(part is None for part in parts):
        return None
    return parts  # type: ignore[return-value]


def _decide(rule: Rule, trace_id: int) -> bool:
    if rule is True or rule is False:
        return rule
    return trace_id & _LOW64 < rule


class Tracing:
    """One process's tracing: the SDK's provider (for spans of background work), the sampler
    for calls, and the sink that makes spans of recorded calls.

    A call's sampling is decided here from its trace id, by the rule of the configured SDK
    sampler (`_rules`): the same decisions as the SDK's `should_sample` (a trace's spans of
    background work, which go through the SDK, agree with its call's), without the context,
    span context and result objects it builds for every call, sampled out or not."""

    def __init__(self, provider: TracerProvider, sink: SpanSink) -> None:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        from opentelemetry.trace.span import TraceState

        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)
        self.sink = sink
        self._propagator = TraceContextTextMapPropagator()
        self._server_kind = SpanKind.SERVER
        self._trace_state = TraceState
        self._bits = random.Random().getrandbits
        self._rules: tuple[Rule, Rule, Rule] | None = None
        self.sampler = provider.sampler

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    @sampler.setter
    def sampler(self, chosen: Sampler) -> None:
        self._sampler = chosen
        self._rules = _rules(chosen)

    def begin(self, traceparent: str | None, tracestate: str | None, forced: bool) -> Call:
        """A new call: the caller's trace continued where its `traceparent` is valid (and its
        sampled flag honoured by a parent-based sampler), else a new trace."""
        parent = parse_traceparent(traceparent) if traceparent else None
        rules = self._rules
        if parent is None:
            trace_id = self._bits(128) or 1
            if rules is not None:
                sampled = _decide(rules[0], trace_id)
            else:
                sampled = self._sdk_decision(None, trace_id)
            return Call(trace_id, self._bits(64) or 1, None, sampled, forced, False, "",
                        time.time_ns())  # fmt: skip
        trace_id, parent_span_id, parent_sampled = parent
        if rules is not None:
            sampled = _decide(rules[1] if parent_sampled else rules[2], trace_id)
        else:
            sampled = self._sdk_decision(traceparent, trace_id, tracestate)
        state = ""
        # only a recorded call's spans carry it; one past the limit is dropped, as the SDK does
        if tracestate and (sampled or forced) and len(tracestate) <= _TRACESTATE_LIMIT:
            state = self._trace_state.from_header([tracestate]).to_header()
        return Call(trace_id, self._bits(64) or 1, parent_span_id, sampled, forced, True, state,
                    time.time_ns())  # fmt: skip

    def _sdk_decision(
        self, traceparent: str | None, trace_id: int, tracestate: str | None = None
    ) -> bool:
        """A sampler `_rules` does not know decides through the SDK's own interface."""
        context = None
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            context = self._propagator.extract(carrier)
        decision = self._sampler.should_sample(context, trace_id, "call", self._server_kind)
        return bool(decision.decision.is_sampled())  # type: ignore[no-untyped-call]

    def finish(
        self,
        call: Call,
        name: str,
        end_ns: int,
        attributes: Mapping[str, AttributeValue],
        *,
        status: int,
        admitted: bool,
    ) -> Ended | None:
        """Hand an ended call to the sink when it is to be exported: sampled, or forced by an
        admin (`admitted`). What was handed (calls.ended), or None."""
        if not (call.sampled or (call.forced and admitted)):
            return None
        done = ended(call, name, end_ns, attributes, status)
        self.sink.put(done)
        return done

    def shutdown(self) -> None:
        self.sink.stop()
        self.provider.shutdown()

    def stop(self, grace: float) -> None:
        """A stopping server's last spans: the calls recorded so far made spans and sent,
        waiting at most `grace` seconds for the collector. The SDK's own flush waits for every
        batch (up to the export timeout, 10 s, per batch of 512, retrying all the while), so a
        collector that is down held a stopping server for half a minute and more. The calls'
        own requests (sink.py's encoded path) retry as long: they get `grace` too."""
        started = time.monotonic()
        last = threading.Thread(target=self.sink.flush, daemon=True, name="mlgate-spans-last")
        last.start()
        last.join(grace)
        grace = max(0.5, grace - (time.monotonic() - started))
        batch = getattr(self.sink.processor, "_batch_processor", None)
        if batch is None:  # the span processor exports as spans end (tests): nothing waits
            self.provider.force_flush()
            return
        # Waits for the processor's thread up to `grace`, then shuts the exporter down,
        # which ends its retries; later calls' spans are dropped: the process is ending.
        batch.shutdown(timeout_millis=grace * 1000)


_tracing: Tracing | None = None
_configured = False
_lock = threading.Lock()


def active() -> Tracing | None:
    """This process's tracing, or None when it is off."""
    return _tracing


def configure(environ: Mapping[str, str] | None = None) -> Tracing | None:
    """Tracing from the environment, once per process (later calls answer the first's)."""
    global _tracing, _configured
    with _lock:
        if _configured:
            return _tracing
        _configured = True
        env = os.environ if environ is None else environ
        problem, exporter_name = _check(env)
        if exporter_name is None:
            return None
        if problem:
            log.warning("tracing is off: %s", problem)
            return None
        try:
            _tracing = _build(env, exporter_name)
        except Exception as exc:  # the SDK refused something: say so once, serve on
            log.warning("tracing is off: %s", exc)
            _tracing = None
        return _tracing


def install(exporter: SpanExporter, sampler: Sampler | None = None) -> Tracing:
    """Tracing into `exporter` (tests: the SDK's in-memory exporter), whatever the environment
    says; `reset()` turns it off again."""
    global _tracing, _configured
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    with _lock:
        if _tracing is not None:
            _tracing.shutdown()
        _tracing = _make(exporter, sampler or ALWAYS_ON, batch=False)
        _configured = True
        return _tracing


def reset() -> None:
    """Tracing off, its spans flushed, and the environment read again by the next configure."""
    global _tracing, _configured
    with _lock:
        if _tracing is not None:
            _tracing.shutdown()
        _tracing, _configured = None, False


def stop(grace: float = 5.0) -> None:
    """A server stopping: its last calls' spans exported, waiting at most `grace` seconds
    for the collector (one that is down or slow must not hold the stop)."""
    if _tracing is not None:
        _tracing.stop(grace)


def flush() -> None:
    """Export what is recorded so far (a test about to look)."""
    if _tracing is not None:
        _tracing.sink.flush()
        _tracing.provider.force_flush()


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, AttributeValue | None] | None = None) -> Iterator[Any]:
    """A span around work that is not a request (a training job, a batch chunk, a rollout's
    look, an export), child of the current one; yields the SDK's span (`set_attribute`) or
    None when tracing is off. An exception marks it failed and goes on."""
    tracing = _tracing
    if tracing is None:
        yield None
        return
    from opentelemetry import trace

    context = None
    call = current()
    if call is not None:  # inside a request: a child of its span, sampled as it is
        if not call.sampled:
            yield None
            return
        parent = trace.SpanContext(
            call.trace_id, call.span_id, False, trace.TraceFlags(trace.TraceFlags.SAMPLED)
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    given = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracing.tracer.start_as_current_span(name, context, attributes=given) as started:
        yield started


def _check(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(what is wrong, the exporter asked for): exporter None when tracing is not asked for."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None, None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter == "none" or (not exporter and not endpoint):
        return None, None
    exporter = exporter or "otlp"
    if exporter not in ("otlp", "console"):
        return f"OTEL_TRACES_EXPORTER={exporter!r}: mlgate exports with otlp or console", exporter
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )  # fmt: skip
    if exporter == "otlp" and protocol != "http/protobuf":
        why = (f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: mlgate sends OTLP over HTTP "
               "(http/protobuf); point it at the collector's HTTP port (4318)")  # fmt: skip
        return why, exporter
    if exporter == "otlp" and endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return (f"the OTLP endpoint {endpoint!r} is not an http(s) URL, e.g. "
                    "http://collector:4318", exporter)  # fmt: skip
    sampler = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    if sampler not in SAMPLERS:
        return f"OTEL_TRACES_SAMPLER={sampler!r}: one of {', '.join(SAMPLERS)}", exporter
    if sampler.endswith("traceidratio"):
        given = env.get("OTEL_TRACES_SAMPLER_ARG") or "1.0"  # empty: unset, as OTel says
        try:
            ratio = float(given)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            return f"OTEL_TRACES_SAMPLER_ARG={given!r}: a ratio from 0 to 1, e.g. 0.01", exporter
    return None, exporter


def _sampler(env: Mapping[str, str]) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    name = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    # the argument is read only by the ratio samplers (_check has judged it there)
    ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG") or "1.0") if "ratio" in name else 1.0
    return {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBasedTraceIdRatio(ratio),
    }[name]()  # type: ignore[no-untyped-call]


EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class Quieter(logging.Filter):
    """Each kind of line at most once per `interval` seconds, the next one saying how many
    were held back. For the exporter, which while the collector is away logs a warning per
    retry and an error per batch: some 1,400 lines an hour per worker, saying the same."""

    def __init__(self, interval: float = 60.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._shown: dict[tuple[int, str], float] = {}
        self._held: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            shown = self._shown.get(key)
            if shown is not None and now - shown < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._shown[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it not shown in {self._interval:g} s)"
        return True


def _build(env: Mapping[str, str], exporter_name: str) -> Tracing:
    exporter: SpanExporter
    if exporter_name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # its own OTEL_EXPORTER_OTLP_* (endpoint, headers, …)
        complaints = logging.getLogger(EXPORTER_LOGGER)
        if not any(isinstance(f, Quieter) for f in complaints.filters):
            complaints.addFilter(Quieter())
    return _make(exporter, _sampler(env), batch=True, interval=_delay(env))


DELAY = 1.0  # seconds between the calls' span requests (sooner past sink.BATCH calls waiting)


def _delay(env: Mapping[str, str]) -> float:
    """How often recorded calls are sent: OTEL_BSP_SCHEDULE_DELAY (milliseconds), as the SDK's
    batch processor reads it, else DELAY. Each request has a fixed cost (~1 ms of the worker's
    CPU through the exporter's HTTP client, more on a busy host): at 1% sampling, five a
    second were most of what tracing cost a worker."""
    given = (env.get("OTEL_BSP_SCHEDULE_DELAY") or "").strip()
    try:
        milliseconds = float(given) if given else DELAY * 1000
    except ValueError:
        log.warning("OTEL_BSP_SCHEDULE_DELAY=%r is not a number of milliseconds", given)
        milliseconds = DELAY * 1000
    return min(max(milliseconds, 10.0), 60_000.0) / 1000


def _make(
    exporter: SpanExporter, sampler: Sampler, *, batch: bool, interval: float = DELAY
) -> Tracing:
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from mlgate import __version__
    from mlgate.tracing.sink import SpanSink

    defaults: dict[str, Any] = {
        "service.name": "mlgate",
        "service.version": __version__,
        # this process: several workers and replicas report as one service, told apart here
        "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
    }
    # ours only where the operator's OTEL_RESOURCE_ATTRIBUTES (or OTEL_SERVICE_NAME) says
    # nothing: Resource.create lets the attributes it is given win over the environment's
    given = OTELResourceDetector().detect().attributes
    attributes = {key: value for key, value in defaults.items() if key not in given}
    provider = TracerProvider(sampler=sampler, resource=Resource.create(attributes))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer(SCOPE)
    scope = getattr(tracer, "_instrumentation_scope", None)
    sink = SpanSink(processor, provider.resource, scope, interval=interval, send=_sender(exporter))
    return Tracing(provider, sink)


def _sender(exporter: SpanExporter) -> Callable[[bytes], bool] | None:
    """The OTLP exporter's HTTP client, for requests encoded by otlp.py (its endpoint, headers,
    compression, certificates and retries as the OTEL_* variables set them); None for any other
    exporter, whose spans go through the SDK's pipeline."""
    client = getattr(exporter, "_client", None)
    export = getattr(client, "export", None)
    if export is None or type(exporter).__name__ != "OTLPSpanExporter":
        return None

    def send(data: bytes) -> bool:
        return bool(getattr(export(data), "success", False))

    return send
