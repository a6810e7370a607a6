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
