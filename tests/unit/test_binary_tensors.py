"""Triton's binary tensor layout (serving/binary_tensors.py), read and written as Triton's own
client library does it."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from mlgate.errors import InvalidInput, MalformedRequest
from mlgate.serving import binary_tensors
from mlgate.serving.oip import predict_datatype

NUMERIC = [d for d in binary_tensors.NUMPY_TYPES if d != "BOOL"]


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numbers_round_trip_in_the_native_little_endian_size(datatype: str) -> None:
    values = np.arange(6).astype(binary_tensors.NUMPY_TYPES[datatype])
    raw = binary_tensors.encode(datatype, values.tolist())
    assert raw == values.astype(values.dtype.newbyteorder("<")).tobytes()
    decoded = binary_tensors.decode("x", datatype, [2, 3], memoryview(raw))
    assert decoded.tolist() == values.tolist()  # type: ignore[union-attr]


def test_bool_is_one_byte_and_bytes_are_length_prefixed_as_tritonclient_writes_them() -> None:
    assert binary_tensors.encode("BOOL", [True, False, True]) == b"\x01\x00\x01"
    strings = ["month-to-month", "", "Zürich 🚆"]
    ours = binary_tensors.encode("BYTES", strings)
    theirs = serialize_byte_tensor(np.array([s.encode() for s in strings], dtype=object))
    assert ours == theirs.item()  # a 0-d array holding the bytes
    assert binary_tensors.decode("c", "BYTES", [3], memoryview(ours)) == strings
    assert [b.decode() for b in deserialize_bytes_tensor(ours)] == strings


@pytest.mark.parametrize(
    ("datatype", "raw", "words"),
    [
        ("BYTES", b"\x05\x00\x00\x00ab", "a BYTES element of 5 bytes where 2 are left"),
        ("BYTES", b"\x01\x00", "ends inside a BYTES element's 4-byte length"),
        ("BYTES", b"\x02\x00\x00\x00\xff\xfe", "not UTF-8 text"),
        ("BYTES", b"\x01\x00\x00\x00a", "holds 1 BYTES elements for shape [2]"),
        ("FP32", b"\x00" * 7, "7 bytes for shape [2] of FP32 (8 expected: 4 per element)"),
    ],
)
def test_malformed_binary_data_says_what_is_wrong(datatype: str, raw: bytes, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        binary_tensors.decode("col", datatype, [2], memoryview(raw))
    assert words in str(caught.value) and "'col'" in str(caught.value)


def test_the_json_part_is_split_off_by_its_declared_length() -> None:
    head, tail = binary_tensors.split_body(b'{"a":1}\x01\x02', "7")
    assert head == b'{"a":1}' and bytes(tail) == b"\x01\x02"
    head, tail = binary_tensors.split_body(b'{"a":1}', None)
    assert head == b'{"a":1}' and bytes(tail) == b""
    for bad in ("0", "-1", "8x", "99"):
        with pytest.raises(MalformedRequest, match="Inference-Header-Content-Length"):
            binary_tensors.split_body(b'{"a":1}', bad)


def test_predict_is_announced_as_the_labels_are() -> None:
    assert predict_datatype(None) == "FP64"
    assert predict_datatype((0, 1)) == "INT64"
    assert predict_datatype((np.int64(0), np.int64(2))) == "INT64"
    assert predict_datatype((False, True)) == "BOOL"
    assert predict_datatype((0.5, 1.5)) == "FP64"
    assert predict_datatype(("no", "yes")) == "BYTES"
