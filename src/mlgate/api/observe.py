"""What operators watch: a request id on every answer, one JSON access-log line per request,
Prometheus metrics (correct across worker processes: prometheus_client's multiprocess mode,
switched on by `mlgate serve --workers N` through PROMETHEUS_MULTIPROC_DIR), and, where tracing
is configured (tracing/setup.py), the call's trace: the caller's `traceparent` continued, ours on
the answer, the trace id in the access-log line and as the latency histogram's exemplar.
"""

from __future__ import annotations

import atexit
import bisect
import collections
import contextlib
import functools
import itertools
import logging
import os
import re
import secrets
import threading
import time
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.samples import Exemplar
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlgate.access import keys
from mlgate.access.model import Principal
from mlgate.outcomes import Answered, Outcome, status_of
from mlgate.tracing.calls import Call, Ended, enter, leave, stage_times, unflat
from mlgate.tracing.setup import active
from mlgate.tracing.sink import register_flush_hook

access_log = logging.getLogger("mlgate.access")

HTTP_REQUESTS = Counter(
    "mlgate_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "mlgate_http_request_duration_seconds",
    "Time to answer, by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PREDICTIONS = Counter(
    "mlgate_predictions_total",
    "Prediction calls (every protocol), by model, version and status",
    ["model", "version", "status"],
)
PREDICTED_ROWS = Counter(
    "mlgate_predicted_rows_total", "Rows scored, by model and version", ["model", "version"]
)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STAGE_SECONDS = Histogram(
    "mlgate_stage_duration_seconds",
    "Time in each stage of the traced calls (the sampled ones), by model and stage",
    ["model", "stage"],
    buckets=STAGE_BUCKETS,
)
FORCE_HEADER = b"x-mlgate-trace"  # an admin's "trace this call", whatever the sampler says


def configure_logging() -> None:
    """Access lines as JSON on standard error, written in batches (a serving process; tests
    leave logging alone)."""
    global _lines
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    if _lines is None:
        _lines = AccessLines(handler.stream)


class AccessLines:
    """The access log's lines, written together at most `interval` seconds after their answers
    (or at once past 64 KiB, and at exit): one write a few times a second instead of one per
    request. A line through `logging` with a write each cost ~60 us here, a fifth of a call."""

    def __init__(self, stream: Any, interval: float = 0.2) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, args=(interval,), daemon=True, name="access-log").start()
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        with self._lock:
            self._pending.append(line)
            self._size += len(line)
            full = self._size > 65_536
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._size = self._pending, [], 0
            with contextlib.suppress(ValueError, OSError):  # a closed stream at exit
                for chunk in _chunks(pending):
                    self._stream.write(chunk)
                    self._stream.flush()

    def _run(self, interval: float) -> None:
        while not self._wake.wait(interval):
            self.flush()


_lines: AccessLines | None = None


def flush_access_lines() -> None:
    """Write the access lines still pending (a server stopping)."""
    if _lines is not None:
        _lines.flush()


def _chunks(lines: list[str], limit: int = 4096) -> list[str]:
    """Whole lines joined into writes of at most `limit` bytes (PIPE_BUF): several workers
    writing to one pipe never cut into one another's lines."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode()) + 1
        if current and size + length > limit:
            out.append("".join(current))
            current, size = [], 0
        current.append(line + "\n")
        size += length
    if current:
        out.append("".join(current))
    return out


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def record_prediction(model: str, version: int, outcome: Outcome, rows: int) -> None:
    """Count a prediction call under the status it was answered with, and its rows if it was
    answered."""
    _predictions(model, version, status_of(outcome)).inc()
    if isinstance(outcome, Answered):
        _predicted_rows(model, version).inc(rows)


# The labelled children, kept: `labels()` builds and checks its key on every call, which showed
# in the prediction path's profile. Label values are few (routes, statuses, model versions).
@functools.lru_cache(maxsize=4096)
def _predictions(model: str, version: int, status: int) -> Any:
    return PREDICTIONS.labels(model, str(version), str(status))


@functools.lru_cache(maxsize=4096)
def _predicted_rows(model: str, version: int) -> Any:
    return PREDICTED_ROWS.labels(model, str(version))


@functools.lru_cache(maxsize=4096)
def _requests(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _seconds(route: str) -> Any:
    return HTTP_SECONDS.labels(route)


def metrics_text(accept: str | None = None, extra: bytes = b"") -> tuple[bytes, str]:
    """The exposition: this process's registry, or every worker's in multiprocess mode, then
    `extra` (more families in the same format). OpenMetrics where the scraper asks for it
    (`Accept: application/openmetrics-text`): the format that carries exemplars (trace ids on
    the latency histograms; one worker's only: prometheus_client's multiprocess mode keeps
    none), else Prometheus' text format."""
    from prometheus_client import REGISTRY
    from prometheus_client.openmetrics import exposition as openmetrics

    observe_stages()  # the traced calls answered so far, counted
    registry: Any = REGISTRY
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    if accept and "application/openmetrics-text" in accept:
        body: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return body.removesuffix(b"# EOF\n") + extra + b"# EOF\n", openmetrics.CONTENT_TYPE_LATEST
    return generate_latest(registry) + extra, CONTENT_TYPE_LATEST


# Request ids need to be unique, not secret: a random prefix per process and a counter (a
# system call for 8 random bytes on every request showed in the profile).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class RequestLog:
    """X-Request-Id (the caller's, when it is a sane token, else a new one) on every answer;
    metrics and a JSON access-log line once the answer is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = begin_request(scope)
        call = begin_call(scope)
        token = enter(call) if call is not None else None
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if call is not None:
                    headers.append(traceparent_header(scope, call))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            end_request(scope, status, started, request_id, call)
            if token is not None:
                leave(token)


def begin_request(scope: Scope) -> str:
    """The request's id (the caller's X-Request-Id when it is a sane token, else a new one),
    kept on the scope's state for the handlers."""
    given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
    request_id = given if _REQUEST_ID.match(given) else _new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def begin_call(scope: Scope) -> Call | None:
    """The request's trace, where tracing is on: the caller's `traceparent` continued (its
    sampled flag honoured by a parent-based sampler), and `X-Mlgate-Trace: 1` recorded for an
    admin's key whatever the sampler says (decided at the end, once the caller is known)."""
    tracing = active()
    if tracing is None:
        return None
    traceparent = tracestate = None
    forced = False
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            traceparent = value.decode("latin-1")
        elif name == b"tracestate":
            tracestate = value.decode("latin-1")
        elif name == FORCE_HEADER:
            forced = value.strip().lower() in (b"1", b"true", b"force")
    call = tracing.begin(traceparent, tracestate, forced)
    scope.setdefault("state", {})["call"] = call
    return call


def traceparent_header(scope: Scope, call: Call) -> tuple[bytes, bytes]:
    """The answer's `traceparent`: this call's span, sampled as it will be exported."""
    return b"traceparent", call.traceparent(_exported(scope, call)).encode()


def _exported(scope: Scope, call: Call) -> bool:
    if call.sampled:
        return True
    principal = scope.get("state", {}).get("principal")
    return call.forced and isinstance(principal, Principal) and principal.is_admin


def end_request(
    scope: Scope, status: int, started: float, request_id: str, call: Call | None = None
) -> None:
    """Metrics, the access-log line and the trace of an answered request."""
    elapsed = time.perf_counter() - started
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    _requests(scope["method"], route, status).inc()
    traced = call is not None and _finish(scope, call, route, status)
    if traced:
        assert call is not None
        _seconds(route).observe(elapsed, {"trace_id": call.trace_hex})
    else:
        _seconds(route).observe(elapsed)
    if access_log.isEnabledFor(logging.INFO):
        line = _line(scope, route, status, elapsed, request_id, call, traced)
        if _lines is not None:
            _lines.write(line)
        else:
            access_log.info(line)


def _finish(scope: Scope, call: Call, route: str, status: int) -> bool:
    """Hand a recorded call to tracing with its HTTP attributes; its stages' times to the
    per-stage histograms. False where the call is not exported."""
    tracing = active()
    if tracing is None or not _exported(scope, call):
        return False
    state: dict[str, Any] = scope.get("state", {})
    principal = state.get("principal")
    attributes: dict[str, Any] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"][:200],
        "url.scheme": scope.get("scheme", "http"),
        "http.response.status_code": status,
        "mlgate.request_id": state.get("request_id", ""),
    }
    if route != "unmatched":  # semantic conventions: no route, no http.route
        attributes["http.route"] = route
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")[:200]
            break
    if isinstance(principal, Principal):  # who, and the key's public prefix; never a secret
        attributes["mlgate.actor"] = principal.actor
        if principal.kind == "consumer":
            attributes["mlgate.consumer"] = principal.name
        if principal.key_prefix:
            attributes["mlgate.key_prefix"] = principal.key_prefix
    if call.forced and not call.sampled:
        attributes["mlgate.forced"] = True
    name = f"{scope['method']} {route}" if route != "unmatched" else scope["method"]
    ended = tracing.finish(call, name, time.time_ns(), attributes, status=status, admitted=True)
    if ended is not None and "mlgate.model" in call.attributes:
        _unobserved.append(ended)  # its stages' histograms: observe_stages, off this path
    return ended is not None


# Traced calls whose stages the per-stage histograms have not counted yet: counted by the span
# sink's thread (a hook it runs before making spans) and by /metrics before it answers, so a
# scrape counts every call answered before it. Eleven `observe()` calls with an exemplar each
# cost a call ~20 us on the request path; here a batch's stages are summed per histogram and
# bucket first, and each bucket takes its count in one addition.
_unobserved: collections.deque[Ended] = collections.deque()
_observing = threading.Lock()
_BOUNDS = (*STAGE_BUCKETS, float("inf"))  # a value's bucket: the first bound not below it
EXEMPLAR_EVERY = 1.0  # seconds: a bucket's exemplar is replaced at most this often


def observe_stages() -> None:
    """Count the stages of the traced calls waiting in `_unobserved` in the per-stage
    histograms, with a trace id as the exemplar of each bucket they reached.

    A bucket keeps one exemplar, the latest, and a scrape reads it every few seconds: a
    bucket's exemplar is replaced by the batch's latest call in it where the one it has is
    older than EXEMPLAR_EVERY (a slow bucket's rare calls always bring theirs)."""
    with _observing:
        summed: dict[tuple[str, str], tuple[list[float], list[int], dict[int, tuple[int, float]]]]
        summed = {}
        while _unobserved:
            try:
                call = _unobserved.popleft()
            except IndexError:
                break
            trace_id = call[0]
            model = str(unflat(call[10]).get("mlgate.model"))
            for stage_name, start, end in stage_times(call):
                seconds = (end - start) / 1e9
                entry = summed.get((model, stage_name))
                if entry is None:
                    entry = summed[model, stage_name] = ([0.0], [0] * len(_BOUNDS), {})
                bucket = bisect.bisect_left(_BOUNDS, seconds)
                entry[0][0] += seconds
                entry[1][bucket] += 1
                entry[2][bucket] = (trace_id, seconds)
        now = time.monotonic()
        for (model, stage_name), (total, counts, latest) in summed.items():
            child, shown = _stage_seconds(model, stage_name)
            exemplars = {}
            for bucket, (trace_id, seconds) in latest.items():
                if now - shown[bucket] >= EXEMPLAR_EVERY:
                    shown[bucket] = now
                    exemplars[bucket] = (f"{trace_id:032x}", seconds)
            _add(child, total[0], counts, exemplars)


def _add(
    child: Any, total: float, counts: list[int], exemplars: dict[int, tuple[str, float]]
) -> None:
    """What `observe()` does for each of `sum(counts)` values, once: the sum, each bucket's
    count, its exemplar. prometheus_client's histogram child keeps a value per bucket
    (`_buckets`, +Inf last) and `_sum` (every release since 0.1); a child without them (a
    later release) is given one observation per value instead, at its bucket's bound."""
    buckets = getattr(child, "_buckets", None)
    added = getattr(child, "_sum", None)
    if buckets is None or added is None or len(buckets) != len(counts):
        for bucket, count in enumerate(counts):
            for _ in range(count):
                shown = exemplars.pop(bucket, None)
                child.observe(_BOUNDS[bucket] if shown is None else shown[1],
                              {"trace_id": shown[0]} if shown else None)  # fmt: skip
        return
    added.inc(total)
    for bucket, count in enumerate(counts):
        if count:
            buckets[bucket].inc(count)
    for bucket, (trace_hex, seconds) in exemplars.items():
        buckets[bucket].set_exemplar(Exemplar({"trace_id": trace_hex}, seconds, time.time()))


@functools.lru_cache(maxsize=4096)
def _stage_seconds(model: str, stage: str) -> tuple[Any, list[float]]:
    """A (model, stage) histogram and when each of its buckets last got an exemplar."""
    return STAGE_SECONDS.labels(model, stage), [-EXEMPLAR_EVERY] * len(_BOUNDS)


register_flush_hook(observe_stages)


@functools.lru_cache(maxsize=4)
def _timestamp(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def _line(
    scope: Scope,
    route: str,
    status: int,
    elapsed: float,
    request_id: str,
    call: Call | None = None,
    traced: bool = False,
) -> str:
    state: dict[str, Any] = scope.get("state", {})
    principal = state.get("principal")
    entry = {
        "ts": _timestamp(int(time.time())),
        "request_id": request_id,
        "method": scope["method"],
        "route": route,
        "path": scope["path"][:200],
        "status": status,
        "ms": round(elapsed * 1000, 2),
        "client": (scope.get("client") or ("",))[0],
    }
    if isinstance(principal, Principal):  # who, and the key's public prefix; never a secret
        entry["actor"] = principal.actor
        if principal.key_prefix:
            entry["key"] = principal.key_prefix
    elif status == 401:  # which key was refused (its public id) is what an operator asks first
        presented = _presented_key(scope)
        if presented:
            entry["key"] = presented
    refusal = state.get("refusal")
    if refusal and status >= 400:
        entry["refusal"] = refusal
    if call is not None:  # the trace this call belongs to; `traced`: its spans were exported
        entry["trace_id"] = call.trace_hex
        entry["traced"] = traced
    return orjson.dumps(entry).decode()


def _presented_key(scope: Scope) -> str | None:
    """The public id (`mlg_<12 hex>`) of the API key a refused call presented, if it is shaped
    like one; never any part of its secret."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            _, _, raw = value.decode("latin-1").strip().partition(" ")
            token = keys.parse_token(raw.strip())
            return None if token is None else token.prefix
    return None
