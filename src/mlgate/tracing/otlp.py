"""Recorded calls written straight into OTLP's protobuf bytes (an ExportTraceServiceRequest).

Written here for a measured reason: the SDK's exporter builds a message object per span,
attribute and value through its encoder (`encode_spans`), about 62 us a span on this machine
(bench/serve.py --tracing: 100% sampling cost a one-row call more than the call itself). This
writes the few fields a call's spans have directly in protobuf's wire format, from the call's
own record, at a few microseconds a span. The bytes are checked against the SDK's encoder by
decoding both with `opentelemetry-proto` (tests/unit/test_tracing_otlp.py). Spans of background
work still go through the SDK's own pipeline.

Field numbers: opentelemetry/proto/trace/v1/trace.proto, common/v1/common.proto,
resource/v1/resource.proto, collector/trace/v1/trace_service.proto.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from mlgate.tracing.calls import AttributeValue, Ended, read

SERVER, INTERNAL = 2, 1  # Span.SpanKind
_SMALL = [bytes((i,)) for i in range(0x80)]
STATUS_ERROR = 2  # Status.StatusCode
_HAS_IS_REMOTE = 0x100  # SpanFlags: whether the parent is remote is known (as the SDK writes)
_REMOTE = 0x200  # the parent is remote


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value)


def _fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def _value(value: AttributeValue) -> bytes:
    """An AnyValue."""
    if isinstance(value, bool):
        return _varint(2 << 3) + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return _varint(3 << 3) + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement
    if isinstance(value, float):
        return _varint(4 << 3 | 1) + struct.pack("<d", value)
    return _text(1, str(value))


def attributes(number: int, given: Mapping[str, AttributeValue]) -> bytes:
    """Repeated KeyValue fields (most pairs recur call after call: each is encoded once; a
    value that never recurs, a request id, is encoded without the cache it would only churn)."""
    return b"".join([
        _pair(number, key, value, _TYPE[type(value)]) if key not in UNIQUE
        else _field(number, _text(1, key) + _field(2, _value(value)))
        for key, value in given.items()
    ])  # fmt: skip


UNIQUE = frozenset({"mlgate.request_id"})


_TYPE = {str: "s", bool: "b", int: "i", float: "f"}


@functools.lru_cache(maxsize=8192)
def _pair(number: int, key: str, value: AttributeValue, kind: str) -> bytes:
    """One KeyValue field; `kind` keeps True apart from 1 in the cache."""
    return _field(number, _text(1, key) + _field(2, _value(value)))


_TIMES = struct.Struct("<BQBQ")  # start_time_unix_nano (7) and end_time_unix_nano (8), fixed64
_KIND = {SERVER: b"\x30\x02", INTERNAL: b"\x30\x01"}  # kind (6), varint
_STATUS = {False: b"\x7a\x00", True: b"\x7a\x02\x18\x02"}  # status (15): unset, or error
_FLAGS = {  # flags (16), fixed32
    False: b"\x85\x01" + struct.pack("<I", _HAS_IS_REMOTE),
    True: b"\x85\x01" + struct.pack("<I", _HAS_IS_REMOTE | _REMOTE),
}
# a stage's span: its kind and times (one pack), then its status and flags (never remote)
_STAGE_TIMES = struct.Struct("<2sBQBQ")
_STAGE_KIND = _KIND[INTERNAL]
_STAGE_END = {failed: _STATUS[failed] + _FLAGS[False] for failed in (False, True)}
_NO_ID = bytes(8)


def stage_span_ids(draw: random.Random, count: int) -> list[bytes]:
    """`count` span ids (8 bytes, big-endian, never all zero) from one draw."""
    drawn = draw.randbytes(8 * count)
    ids = [drawn[i : i + 8] for i in range(0, 8 * count, 8)]
    return [b"\x00" * 7 + b"\x01" if span_id == _NO_ID else span_id for span_id in ids]


@functools.lru_cache(maxsize=1024)
def _name(name: str) -> bytes:
    return _text(5, name)


def _span(
    ids: bytes,
    span_id: int,
    parent: bytes,
    name: str,
    kind: int,
    start: int,
    end: int,
    said: Mapping[str, AttributeValue],
    failed: bool,
    remote_parent: bool,
) -> bytes:
    """One Span. `ids`: its trace id field (and trace state's); `parent`: its parent's field."""
    body = b"".join((
        ids[:18], b"\x12\x08", span_id.to_bytes(8, "big"), ids[18:], parent, _name(name),
        _KIND[kind], _TIMES.pack(0x39, start, 0x41, end), attributes(9, said),
        _STATUS[failed], _FLAGS[remote_parent],
    ))  # fmt: skip
    return body


def call_spans(given: Ended, draw: random.Random) -> list[bytes]:
    """A call's server span and one child per stage, each an encoded Span."""
    call = read(given)
    # the trace id (1) first, then, after each span id (2), the trace state (3)
    ids = _field(1, call.trace_id.to_bytes(16, "big")) + (
        _text(3, call.trace_state) if call.trace_state else b""
    )
    merged = {**call.said, **call.attributes}
    failed = call.status >= 500
    if failed:
        merged["error.type"] = str(call.status)
    parent = call.parent_span_id
    above = b"" if parent is None else _field(4, parent.to_bytes(8, "big"))
    spans = [
        _span(ids, call.span_id, above, call.name, SERVER, call.start_ns, call.end_ns, merged,
              failed, call.remote_parent)
    ]  # fmt: skip
    if not call.stages:
        return spans
    # every stage's span: the same trace id, parent and scope; written from two fixed pieces
    # around its own span id, name, times and attributes (a call's stages in one pass)
    head = ids[:18] + b"\x12\x08"
    middle = ids[18:] + _field(4, call.span_id.to_bytes(8, "big"))
    pack = _STAGE_TIMES.pack
    drawn = stage_span_ids(draw, len(call.stages))
    for stage_id, (name, start, end, said, error) in zip(drawn, call.stages, strict=True):
        if error is not None:
            said = {**said, "error.type": error}
        spans.append(b"".join((
            head, stage_id, middle, _name(name), pack(_STAGE_KIND, 0x39, start, 0x41, end),
            attributes(9, said) if said else b"", _STAGE_END[error is not None and failed],
        )))  # fmt: skip
    return spans


def request(resource: Mapping[str, Any], scope: tuple[str, str], spans: Iterable[bytes]) -> bytes:
    """An ExportTraceServiceRequest of `spans` from one resource and instrumentation scope."""
    scope_name, scope_version = scope
    scope_bytes = _text(1, scope_name) + (_text(2, scope_version) if scope_version else b"")
    scope_spans = _field(1, scope_bytes) + b"".join([b"\x12" + _varint(len(s)) + s for s in spans])
    plain = {k: v for k, v in resource.items() if isinstance(v, str | bool | int | float)}
    resource_spans = _field(1, attributes(1, plain)) + _field(2, scope_spans)
    return _field(1, resource_spans)
