"""The access log's batched writer (api/observe.py): every line arrives whole, in order, in
writes a pipe keeps atomic, soon after its answer."""

from __future__ import annotations

import io
import time

from mlgate.api.observe import AccessLines, _chunks


class Recording(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_lines_are_written_whole_in_order_and_in_pipe_sized_writes() -> None:
    stream = Recording()
    lines = AccessLines(stream, interval=0.05)
    sent = [f'{{"request_id": "r{i:05d}", "pad": "{"x" * (i % 300)}"}}' for i in range(400)]
    for line in sent:
        lines.write(line)
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < len(sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue().splitlines() == sent
    assert all(w.endswith("\n") and len(w.encode()) <= 4096 for w in stream.writes)
    assert len(stream.writes) < len(sent) / 5  # batched, not one write per line


def test_a_line_longer_than_a_pipe_buffer_goes_alone() -> None:
    long = "y" * 5000
    assert _chunks(["a", long, "b"]) == ["a\n", long + "\n", "b\n"]
    assert _chunks([]) == []


def test_a_refused_call_names_the_refusal_and_the_public_id_of_the_key_it_presented() -> None:
    import orjson

    from mlgate.access import keys
    from mlgate.api.observe import _line

    token = keys.new_key()
    scope = {
        "method": "POST",
        "path": "/v1/models/churn/predict",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "state": {"refusal": "invalid_credentials"},
    }
    entry = orjson.loads(_line(scope, "/v1/models/{name}/predict", 401, 0.002, "r1"))
    assert entry["key"] == token.prefix and entry["refusal"] == "invalid_credentials"
    assert token.secret not in orjson.dumps(entry).decode()
    garbage = scope | {"headers": [(b"authorization", b"Bearer not-a-key")]}
    assert "key" not in orjson.loads(_line(garbage, "/x", 401, 0.001, "r2"))
    answered = scope | {"state": {}}
    assert "refusal" not in orjson.loads(_line(answered, "/x", 200, 0.001, "r3"))
