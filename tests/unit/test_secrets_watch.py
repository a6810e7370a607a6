"""The log scan that fails the session when a secret reaches a log."""

from __future__ import annotations

import logging

from mlgate.access import keys
from tests import secrets_watch


def test_full_tokens_and_declared_secrets_are_found_prefixes_are_not() -> None:
    api_key, session = keys.new_key(), keys.new_token(keys.SESSION_PREFIX)
    lines = [
        ("server.log", f"INFO request with key {api_key.prefix}"),
        ("server.log", f"DEBUG Authorization: Bearer {api_key}"),
        ("records", f"session {session}"),
        ("records", "connecting with password hunter2-hunter2"),
        ("records", "connecting with password ***"),
    ]
    found = secrets_watch.scan(lines, {"hunter2-hunter2"})
    assert found == [
        f"server.log: DEBUG Authorization: Bearer {api_key}",
        f"records: session {session}",
        "records: connecting with password hunter2-hunter2",
    ]


def test_log_records_of_the_session_are_kept() -> None:
    logging.getLogger("mlgate.test").warning("a line the watch must see")
    assert any("a line the watch must see" in line for line in secrets_watch._LINES)
