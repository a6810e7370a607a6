"""The event loop's small Redis client (plans/resp.py): replies read in pieces, as a socket
delivers them, and commands encoded as Redis expects. Its calls against a real Redis are in
tests/integration/test_plans.py."""

from __future__ import annotations

import pytest

from mlgate.plans.resp import ReplyError, _encode, _parse, supports

REPLIES = [
    (b":42\r\n", 42),
    (b"+OK\r\n", "OK"),
    (b"$5\r\nhe\r\nl\r\n", b"he\r\nl"),  # a bulk string holding CRLF is read by its length
    (b"$-1\r\n", None),
    (b"*3\r\n:1\r\n:0\r\n*2\r\n$1\r\na\r\n:-7\r\n", [1, 0, [b"a", -7]]),
    (b"*0\r\n", []),
]


@pytest.mark.parametrize(("wire", "value"), REPLIES)
def test_a_reply_is_read_whole_or_waited_for(wire: bytes, value: object) -> None:
    for cut in range(len(wire)):  # every way the reply can arrive split in two
        assert _parse(bytearray(wire[:cut]), 0) is None
    assert _parse(bytearray(wire + b":9\r\n"), 0) == (value, len(wire))


def test_an_error_reply_is_a_value_and_commands_are_encoded_as_bulk_strings() -> None:
    parsed = _parse(bytearray(b"-NOSCRIPT No matching script.\r\n"), 0)
    assert parsed is not None and isinstance(parsed[0], ReplyError)
    assert parsed[0].text == "NOSCRIPT No matching script."
    assert _encode(("EVALSHA", "ab", 1, b"k\r\n")) == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$3\r\nk\r\n\r\n"
    )
    assert supports("redis://h:1/0") and supports("unix:///tmp/r.sock")
    assert not supports("rediss://h:1/0")
