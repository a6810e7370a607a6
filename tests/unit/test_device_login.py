"""The client side of the device flow (mlgate/client/device.py), over a scripted server: the
waits it keeps, and a code that outlives its time without the provider saying so."""

from __future__ import annotations

from typing import Any

import pytest

from mlgate.client.device import START, TOKEN, device_login

pytestmark = pytest.mark.fast

STARTED = {"device_code": "dc", "user_code": "WDJB-MJHT", "verification_uri": "https://idp/device",
           "verification_uri_complete": None, "expires_in": 20, "interval": 2}  # fmt: skip


class Server:
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.asked: list[dict[str, Any]] = []

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append({"path": path, **body})
        return STARTED if path == START else self.answers.pop(0)


def test_it_waits_the_interval_longer_after_slow_down_and_sends_it() -> None:
    pending = {"status": "authorization_pending", "interval": 7}
    server = Server([{"status": "slow_down", "interval": 7}, pending,
                     {"token": "mls_x", "user": "alice", "expires_at": "later"}])  # fmt: skip
    waits: list[float] = []
    notes: list[str] = []
    shown: list[dict[str, Any]] = []
    out = device_login(server, minutes=5, show=shown.append, notify=notes.append,
                       sleep=waits.append, clock=lambda: 0.0)  # fmt: skip
    assert out["token"] == "mls_x" and shown == [STARTED]
    assert waits == [2, 7, 7]
    assert [a["interval"] for a in server.asked[1:]] == [2, 7, 7]
    assert {a["path"] for a in server.asked[1:]} == {TOKEN}
    assert all(a["ttl_minutes"] == 5 and a["device_code"] == "dc" for a in server.asked[1:])
    assert notes == ["the identity provider asked to be asked less often: every 7 s"]


def test_a_code_past_its_time_ends_the_wait() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    server = Server([{"status": "authorization_pending", "interval": 2}] * 50)
    with pytest.raises(TimeoutError, match="the code expired"):
        device_login(server, show=lambda _: None, sleep=sleep, clock=lambda: now[0])
    assert len(server.asked) - 1 == 12  # 20 s of code, 2 s apart, and one interval's grace
