"""A call's trace, as the request path sees it: begun by the edge, its stages timed where they
run, ended by the edge once the answer is sent.

Nothing here builds a span. A recorded call keeps its stages as `Stage` records (two
`time_ns()` reads each); `sink.py` makes spans of them in a thread after the answer has gone.
Measured with the SDK's own `start_span`/`end` (bench figures in the module doc of sink.py), a
call of nine spans cost the request about 270 us here, a third of a one-row prediction; this
way the request pays for the clock reads and one queue append.

A call that is not recorded (tracing off, or sampled out) costs one context-variable read per
stage: `stage()` answers a shared object whose enter and exit do nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, NamedTuple

AttributeValue = str | bool | int | float
_time_ns = time.time_ns


class Stage:
    """One stage a call ran: its name, times (ns since the epoch) and attributes; timed as the
    `with` block that `stage()` answers (itself: one object a stage)."""

    __slots__ = ("name", "start_ns", "end_ns", "attributes", "error", "_call")

    def __init__(
        self,
        name: str,
        start_ns: int,
        end_ns: int = 0,
        attributes: dict[str, AttributeValue] | None = None,
        error: str | None = None,  # the exception's type, where the stage raised
    ) -> None:
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes: dict[str, AttributeValue] = {} if attributes is None else attributes
        self.error = error
        self._call: Call | None = None

    def __enter__(self) -> Stage:
        self.start_ns = _time_ns()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end_ns = _time_ns()
        if kind is not None:
            self.error = kind.__name__
        if self._call is not None:
            self._call.stages.append(self)

    def set(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def __repr__(self) -> str:
        return f"Stage({self.name!r}, {self.start_ns}, {self.end_ns}, {self.attributes!r})"


class Call:
    """A request's trace: ids (W3C trace context), whether it is recorded, and what was.

    A plain class with slots, built once a call: a dataclass with default factories cost a
    sampled-out call more than the rest of its tracing (bench/serve.py --tracing)."""

    __slots__ = (
        "trace_id", "span_id", "parent_span_id", "sampled", "forced", "remote_parent",
        "trace_state", "start_ns", "stages", "attributes", "_hex",
    )  # fmt: skip

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent_span_id: int | None,  # the caller's span, from its traceparent
        sampled: bool,  # the sampler's decision: exported
        forced: bool = False,  # an admin asked for this call to be traced (decided at its end)
        remote_parent: bool = False,
        trace_state: str = "",
        start_ns: int = 0,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.forced = forced
        self.remote_parent = remote_parent
        self.trace_state = trace_state
        self.start_ns = start_ns
        self.stages: list[Stage] = []
        self.attributes: dict[str, AttributeValue] = {}
        self._hex = ""

    @property
    def recording(self) -> bool:
        return self.sampled or self.forced

    @property
    def trace_hex(self) -> str:
        if not self._hex:
            self._hex = f"{self.trace_id:032x}"
        return self._hex

    def traceparent(self, sampled: bool | None = None) -> str:
        flags = "01" if (self.sampled if sampled is None else sampled) else "00"
        return f"00-{self.trace_hex}-{self.span_id:016x}-{flags}"

    def __repr__(self) -> str:
        return f"Call({self.traceparent()}, stages={[s.name for s in self.stages]})"


# An ended call as its spans need it, as one flat tuple of plain values (`ended`, read back by
# `read`). Calls wait up to a second for their spans; kept as objects (a Call, its list and
# dicts, a Stage a stage, tuples within tuples) they outlived the collector's young generations
# and, at 100% sampling, set off full collections of the whole heap (a model server's: 0.3 to
# 0.6 s each, ~100 us a call; bench/serve.py --tracing). A tuple of plain values leaves the
# collector's lists the first time it is looked at (one holding a dict never does, one holding
# tuples only once they have): here, the attributes' flat tuples, then the call's.
Flat = tuple[Any, ...]
Ended = tuple[Any, ...]
_STAGES = 11  # where the stages' fields begin: name, start ns, end ns, attributes, error each


def flat(said: Mapping[str, AttributeValue]) -> Flat:
    """Attributes as (key, value, key, value…)."""
    return tuple([part for pair in said.items() for part in pair]) if said else ()


def unflat(given: Flat) -> dict[str, AttributeValue]:
    return dict(zip(given[::2], given[1::2], strict=True))


def ended(
    call: Call, name: str, end_ns: int, said: Mapping[str, AttributeValue], status: int
) -> Ended:
    """An ended call, its server span's `name`, end and HTTP attributes and status, flat."""
    parts: list[Any] = [
        call.trace_id, call.span_id, call.parent_span_id, call.remote_parent, call.trace_state,
        call.start_ns, end_ns, name, status, flat(said), flat(call.attributes),
    ]  # fmt: skip
    for s in call.stages:
        parts += (s.name, s.start_ns, s.end_ns, flat(s.attributes), s.error)
    return tuple(parts)


class Read(NamedTuple):
    """An ended call, read back."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    remote_parent: bool
    trace_state: str
    start_ns: int
    end_ns: int
    name: str
    status: int
    said: dict[str, AttributeValue]  # the HTTP attributes
    attributes: dict[str, AttributeValue]  # the call's own (model, version, rows…)
    stages: list[tuple[str, int, int, dict[str, AttributeValue], str | None]]


def read(given: Ended) -> Read:
    stages = [
        (given[i], given[i + 1], given[i + 2], unflat(given[i + 3]), given[i + 4])
        for i in range(_STAGES, len(given), 5)
    ]
    trace_id, span_id, parent_span_id, remote_parent, trace_state, start, end, name, status = given[
        :9
    ]
    return Read(
        trace_id, span_id, parent_span_id, remote_parent, trace_state, start, end, name, status,
        unflat(given[9]), unflat(given[10]), stages,
    )  # fmt: skip


def stage_times(given: Ended) -> Iterator[tuple[str, int, int]]:
    """(name, start ns, end ns) of each stage of an ended call."""
    for i in range(_STAGES, len(given), 5):
        yield given[i], given[i + 1], given[i + 2]


_current: ContextVar[Call | None] = ContextVar("mlgate_call", default=None)
_get = _current.get


def current() -> Call | None:
    """The call this code runs for, when tracing is on (threads started with the call's
    context see it too: Starlette's and asyncio's thread hops copy it)."""
    return _get()


def enter(call: Call | None) -> Any:
    """Make `call` the current one; the token `leave` takes."""
    return _current.set(call)


def leave(token: Any) -> None:
    _current.reset(token)


class _Untimed:
    __slots__ = ()

    def __enter__(self) -> _Untimed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: AttributeValue) -> None:
        return None


_UNTIMED = _Untimed()


def stage(name: str) -> Stage | _Untimed:
    """`with stage("decode") as s: ...; s.set("mlgate.rows", 3)` times the block as one of
    the current call's stages, when the call is recorded; otherwise does nothing."""
    call = _get()
    if call is None or not (call.sampled or call.forced):
        return _UNTIMED
    timed = Stage(name, 0)
    timed._call = call
    return timed


def annotate(key: str, value: AttributeValue | None) -> None:
    """An attribute of the current call's own span (model, version, rows…), when recorded."""
    call = _get()
    if call is not None and (call.sampled or call.forced) and value is not None:
        call.attributes[key] = value
