"""Recorded calls become spans here, in a thread, after their answers have gone.

The request path appends (call, name, end, attributes, status) to a bounded queue; every second
(OTEL_BSP_SCHEDULE_DELAY; at once past 512 calls) a thread builds each call's server span and
one child span per stage as the SDK's `ReadableSpan` and hands them to the span processor (the
SDK's batch processor and OTLP exporter). Built directly rather than through
`Tracer.start_span`/`Span.end`: measured here with a null exporter, the SDK's live spans cost
about 33 us for one server span and 270 us for a call of nine, which a saturated server pays out
of its answers even from a thread; a `ReadableSpan` costs about 7. A full queue drops calls
(counted in `dropped`) rather than slowing the answers.

With the OTLP exporter, calls skip the SDK's span objects and encoder altogether: otlp.py writes
their protobuf bytes (about 4 us a span here, against 62 through the SDK's encoder), and the
exporter's own HTTP client sends them.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlgate.tracing import otlp
from mlgate.tracing.calls import Ended, read

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor

log = logging.getLogger("mlgate.tracing")
CAPACITY = 10_000  # calls waiting to become spans
BATCH = 512  # calls an OTLP request
_hooks: list[Callable[[], None]] = []


def register_flush_hook(hook: Callable[[], None]) -> None:
    """`hook` runs in the sink's thread before each round of spans (api/observe.py counts the
    traced calls' stages in the per-stage histograms there, off the request path)."""
    if hook not in _hooks:
        _hooks.append(hook)


def _run_hooks() -> None:
    for hook in _hooks:
        try:
            hook()
        except Exception:  # a hook's failure must not stop the spans
            log.exception("a tracing flush hook failed")


class SpanSink:
    """`send`: where encoded OTLP requests go (the OTLP exporter's HTTP client); without it,
    spans are built as the SDK's and handed to `processor` (tests' in-memory exporter)."""

    def __init__(
        self,
        processor: SpanProcessor,
        resource: Resource,
        scope: Any,
        *,
        interval: float = 1.0,
        capacity: int = CAPACITY,
        send: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._send = send
        self.processor = processor
        self._resource = resource
        self._scope = scope
        self._capacity = capacity
        self._queue: deque[Ended] = deque()
        self._random = random.Random()
        self._lock = threading.Lock()  # one builder at a time: the thread or a flush
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.dropped = 0
        self.failed = 0  # OTLP requests the collector did not take (the exporter logs why)
        self._thread = threading.Thread(
            target=self._run, args=(interval,), daemon=True, name="mlgate-spans"
        )
        self._thread.start()

    def put(self, call: Ended) -> None:
        """An ended call (calls.ended: one flat tuple, out of the collector's sight)."""
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(call)
        if len(self._queue) >= BATCH:
            self._wake.set()

    def flush(self) -> None:
        _run_hooks()
        if self._send is not None:
            self._flush_encoded(self._send)
            return
        with self._lock:
            while self._queue:
                try:
                    ended = self._queue.popleft()
                except IndexError:
                    break
                try:
                    for built in self._spans(ended):
                        self.processor.on_end(built)
                except Exception:  # one odd call must not stop the others' spans
                    log.exception("a call's spans could not be built")

    def _flush_encoded(self, send: Callable[[bytes], bool]) -> None:
        """Up to BATCH calls an OTLP request, encoded here (otlp.py), sent by the exporter's
        client (its retries, compression and headers): the calls waiting when the flush began,
        not those that came while it sent. Draining those too, a saturated worker sent a
        request of a few calls every few milliseconds (1,850 requests of 17 calls in a bench
        run), each costing it ~1 ms of its CPU: at 100% sampling, more than the spans."""
        name = getattr(self._scope, "name", "mlgate")
        version = getattr(self._scope, "version", "") or ""
        with self._lock:
            waiting = len(self._queue)
            while waiting > 0 and self._queue:
                spans: list[bytes] = []
                taken = min(BATCH, waiting, len(self._queue))
                waiting -= taken
                for _ in range(taken):
                    try:
                        spans += otlp.call_spans(self._queue.popleft(), self._random)
                    except Exception:  # one odd call must not stop the others' spans
                        log.exception("a call's spans could not be encoded")
                if not spans:
                    continue
                request = otlp.request(dict(self._resource.attributes), (name, version), spans)
                if not send(request):
                    self.failed += 1

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self, interval: float) -> None:
        while not self._stopped.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            self.flush()

    def _spans(self, given: Ended) -> list[Any]:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
        from opentelemetry.trace.status import Status, StatusCode

        call = read(given)
        trace_id = call.trace_id
        flags = TraceFlags(TraceFlags.SAMPLED)
        state = TraceState.from_header([call.trace_state]) if call.trace_state else None
        own = SpanContext(trace_id, call.span_id, False, flags, state)
        parent = (
            SpanContext(trace_id, call.parent_span_id, call.remote_parent, flags, state)
            if call.parent_span_id is not None
            else None
        )
        merged = {**call.said, **call.attributes}
        failed = call.status >= 500
        if failed:
            merged["error.type"] = str(call.status)
        spans = [
            ReadableSpan(
                name=call.name,
                context=own,
                parent=parent,
                resource=self._resource,
                attributes=merged,
                kind=SpanKind.SERVER,
                status=Status(StatusCode.ERROR) if failed else Status(StatusCode.UNSET),
                start_time=call.start_ns,
                end_time=call.end_ns,
                instrumentation_scope=self._scope,
            )
        ]
        drawn = otlp.stage_span_ids(self._random, len(call.stages))  # as otlp.py draws them
        for stage_id, (name, start, end, said, error) in zip(drawn, call.stages, strict=True):
            if error is not None:
                said = {**said, "error.type": error}
            spans.append(
                ReadableSpan(
                    name=name,
                    context=SpanContext(
                        trace_id, int.from_bytes(stage_id, "big"), False, flags, state
                    ),
                    parent=own,
                    resource=self._resource,
                    attributes=said,
                    kind=SpanKind.INTERNAL,
                    # a stage that raised is an error where the call failed (5xx); where it
                    # refused the caller (4xx) it says why (error.type) without counting as one
                    status=Status(StatusCode.ERROR)
                    if error and failed
                    else Status(StatusCode.UNSET),
                    start_time=start,
                    end_time=end,
                    instrumentation_scope=self._scope,
                )
            )
        return spans
