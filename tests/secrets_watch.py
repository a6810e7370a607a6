"""Secrets must never reach a log. Every log line of the test session is kept (in-process
records, and the log files of every server the tests start); at the end, the session fails if
any of them holds a token of ours or a secret a test declared with `remember`."""

from __future__ import annotations

import logging
import re
from pathlib import Path

# Full tokens: API keys and login sessions (prefixes alone are fine to log).
TOKENS = re.compile(r"ml[gs]_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")
_SECRETS: set[str] = set()
_LINES: list[str] = []
_FILES: list[Path] = []


def remember(secret: str) -> str:
    """Declare a password or other secret a test uses; returns it for convenience."""
    _SECRETS.add(secret)
    return secret


def watch_file(path: Path) -> None:
    """A log file (e.g. a server's) to scan at the end of the session."""
    _FILES.append(path)


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _LINES.append(self.format(record))
        except Exception:  # a record that cannot be formatted is not ours to judge
            _LINES.append(str(record.msg))


def install() -> None:
    handler = _Keep(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def leaks() -> list[str]:
    """Where secrets were found in this session's logs: 'source: excerpt' for each."""
    sources = [("log records", line) for line in _LINES]
    for path in _FILES:
        if path.exists():
            sources += [(path.name, line) for line in path.read_text(errors="replace").splitlines()]
    return scan(sources, _SECRETS)


def scan(lines: list[tuple[str, str]], secrets: set[str]) -> list[str]:
    return [
        f"{where}: {line[:200]}"
        for where, line in lines
        if TOKENS.search(line) or any(s in line for s in secrets)
    ]
