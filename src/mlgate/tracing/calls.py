"""A call's trace, as the request path sees it: begun by the edge, its stages timed where they
run, ended by the edge once the answer is sent.

Nothing here builds a span. A recorded call keeps its stages as tuples (two `time_ns()` reads
each); `sink.py` makes spans of them in a thread after the answer has gone. Measured with the
SDK's own `start_span`/`end` (bench figures in the module doc of sink.py), a call of nine spans
cost the request about 270 us here, a third of a one-row prediction; this way the request pays
for the clock reads and one queue append.

A call that is not recorded (tracing off, or sampled out) costs one context-variable read per
stage: `stage()` answers a shared object whose enter and exit do nothing.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

AttributeValue = str | bool | int | float


@dataclass(slots=True)
class Stage:
    """One stage a call ran: its name, times (ns since the epoch) and attributes."""

    name: str
    start_ns: int
    end_ns: int = 0
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None  # the exception's type, where the stage raised


@dataclass(slots=True)
class Call:
    """A request's trace: ids (W3C trace context), whether it is recorded, and what was."""

    trace_id: int
    span_id: int
    parent_span_id: int | None  # the caller's span, from its traceparent
    sampled: bool  # the sampler's decision: exported
    forced: bool = False  # an admin asked for this call to be traced (decided at its end)
    remote_parent: bool = False
    trace_state: str = ""
    start_ns: int = 0
    stages: list[Stage] = field(default_factory=list)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    @property
    def recording(self) -> bool:
        return self.sampled or self.forced

    @property
    def trace_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def traceparent(self, sampled: bool | None = None) -> str:
        flags = "01" if (self.sampled if sampled is None else sampled) else "00"
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{flags}"


_current: ContextVar[Call | None] = ContextVar("mlgate_call", default=None)


def current() -> Call | None:
    """The call this code runs for, when tracing is on (threads started with the call's
    context see it too: Starlette's and asyncio's thread hops copy it)."""
    return _current.get()


def enter(call: Call | None) -> Any:
    """Make `call` the current one; the token `leave` takes."""
    return _current.set(call)


def leave(token: Any) -> None:
    _current.reset(token)


class _Timed:
    __slots__ = ("_call", "_stage")

    def __init__(self, call: Call, name: str) -> None:
        self._call = call
        self._stage = Stage(name, 0)

    def __enter__(self) -> _Timed:
        self._stage.start_ns = time.time_ns()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stage.end_ns = time.time_ns()
        if kind is not None:
            self._stage.error = kind.__name__
        self._call.stages.append(self._stage)

    def set(self, key: str, value: AttributeValue) -> None:
        self._stage.attributes[key] = value


class _Untimed:
    __slots__ = ()

    def __enter__(self) -> _Untimed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: AttributeValue) -> None:
        return None


_UNTIMED = _Untimed()


def stage(name: str) -> _Timed | _Untimed:
    """`with stage("decode") as s: ...; s.set("mlgate.rows", 3)` times the block as one of
    the current call's stages, when the call is recorded; otherwise does nothing."""
    call = _current.get()
    if call is None or not (call.sampled or call.forced):
        return _UNTIMED
    return _Timed(call, name)


def annotate(key: str, value: AttributeValue | None) -> None:
    """An attribute of the current call's own span (model, version, rows…), when recorded."""
    call = _current.get()
    if call is not None and (call.sampled or call.forced) and value is not None:
        call.attributes[key] = value
