"""Triton's binary tensor data extension to the Open Inference Protocol (HTTP/REST).

A request or answer with binary tensors is a JSON header followed by raw tensor bytes; the
`Inference-Header-Content-Length` HTTP header gives the JSON part's length. A tensor sent as
bytes says how many in its `parameters.binary_data_size` and has no `data`; the tensors' bytes
follow the JSON in the order the tensors are listed. Data is little-endian and row-major, each
element in its datatype's native size (BOOL one byte), and a BYTES element is a 4-byte
little-endian length followed by that many bytes.

A caller asks for binary outputs with `parameters.binary_data_output` on the request (all
outputs) or `parameters.binary_data` on one requested output; Triton's own `tritonclient.http`
does both by default. Reading bytes straight into numpy arrays also spares a large batch the
cost of parsing its numbers from JSON text.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from mlgate.errors import FieldError, InvalidInput, MalformedRequest

HEADER = "inference-header-content-length"
NUMPY_TYPES = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
_LENGTH = struct.Struct("<I")


def split_body(raw: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON part of a body and the tensor bytes after it (none without the header)."""
    if header_length is None:
        return raw, memoryview(b"")
    text = header_length.strip()
    if not text.isdecimal() or int(text) > len(raw) or int(text) == 0:
        raise MalformedRequest(
            f"Inference-Header-Content-Length is {text[:20]!r} for a body of {len(raw):,} bytes; "
            "it must give the length of the JSON part at the start of the body"
        )
    n = int(text)
    return raw[:n], memoryview(raw)[n:]


class TensorBytes:
    """The bytes after the JSON part, handed to the binary tensors in their order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._at = 0

    def take(self, name: str, size: Any, where: str) -> memoryview:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(
                f"input {name!r} has binary_data_size {str(size)[:20]!r}; a byte count",
                errors=[FieldError(f"{where}.parameters.binary_data_size", "not a byte count")],
            )
        left = len(self._data) - self._at
        if size > left:
            raise InvalidInput(
                f"input {name!r} declares {size:,} bytes of binary data but only {left:,} "
                "follow the JSON part of the body",
                errors=[FieldError(f"{where}.parameters.binary_data_size", "past the body")],
            )
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk

    def check_all_read(self) -> None:
        left = len(self._data) - self._at
        if left:
            raise InvalidInput(
                f"{left:,} bytes follow the binary tensors the inputs declare; each binary "
                "input needs parameters.binary_data_size, and the sizes must add up to the rest "
                "of the body"
            )


def decode(name: str, datatype: str, shape: list[int], chunk: memoryview) -> np.ndarray | list[Any]:
    """A binary tensor's elements, flat: a numpy array, or a list of str for BYTES."""
    size = math.prod(shape)
    if datatype == "BYTES":
        values = _strings(name, chunk)
        if len(values) != size:
            raise InvalidInput(
                f"input {name!r} holds {len(values)} BYTES elements for shape {shape} "
                f"({size} expected)"
            )
        return values
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if len(chunk) != size * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r} has {len(chunk):,} bytes for shape {shape} of {datatype} "
            f"({size * dtype.itemsize:,} expected: {dtype.itemsize} per element)"
        )
    return np.frombuffer(chunk, dtype=dtype)


def encode(datatype: str, values: Any) -> bytes:
    """An output's elements as bytes, in the extension's layout."""
    if datatype == "BYTES":
        parts = []
        for value in values:
            data = str(value).encode()
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.asarray(values, dtype=NUMPY_TYPES[datatype]).tobytes()


def _strings(name: str, chunk: memoryview) -> list[Any]:
    out: list[Any] = []
    at, end = 0, len(chunk)
    while at < end:
        if end - at < 4:
            raise InvalidInput(f"input {name!r} ends inside a BYTES element's 4-byte length")
        (length,) = _LENGTH.unpack_from(chunk, at)
        at += 4
        if length > end - at:
            raise InvalidInput(
                f"input {name!r} has a BYTES element of {length:,} bytes where "
                f"{end - at:,} are left"
            )
        try:
            out.append(bytes(chunk[at : at + length]).decode())
        except UnicodeDecodeError:
            raise InvalidInput(
                f"input {name!r} holds bytes that are not UTF-8 text; BYTES inputs are text "
                "columns here"
            ) from None
        at += length
    return out
