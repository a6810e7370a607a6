"""Signing in through the identity provider from a machine without a browser (the OAuth 2.0
Device Authorization Grant, RFC 8628), as the CLI (`mlgate --url … login --sso`) and the
Python client (`Client.login_sso`) both do it.

The server runs the grant at the provider (mlgate's client secret stays there): this side asks
it to start, shows the user the code and the address, then asks again every `interval` seconds
until the server answers a token. The provider's `slow_down` makes the wait longer; its
`access_denied` and `expired_token` come back as the server's 401, raised by `call`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

START = "/v1/auth/sso/device"
TOKEN = "/v1/auth/sso/device/token"

Call = Callable[[str, dict[str, Any]], Any]  # (path, JSON body) -> the answer's JSON


def device_login(
    call: Call,
    *,
    minutes: int = 60,
    show: Callable[[dict[str, Any]], None],
    notify: Callable[[str], None] = lambda _: None,
    expired: Callable[[str], Exception] = TimeoutError,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The server's login answer ({token, user, expires_at}) once the user approved the code
    that `show` was given ({user_code, verification_uri, verification_uri_complete,
    expires_in, interval}). `notify` hears about slow-downs; `expired` makes the error raised
    when the code outlives its `expires_in` without the provider saying so."""
    started: dict[str, Any] = call(START, {})
    show(started)
    interval = max(1, int(started.get("interval") or 5))
    deadline = clock() + int(started.get("expires_in") or 600)
    while True:
        sleep(interval)
        asked = {"device_code": started["device_code"], "interval": interval,
                 "ttl_minutes": minutes}  # fmt: skip
        answer: dict[str, Any] = call(TOKEN, asked)
        if "token" in answer:
            return answer
        if answer.get("status") == "slow_down":
            notify(
                f"the identity provider asked to be asked less often: every {answer['interval']} s"
            )
        interval = max(1, int(answer.get("interval") or interval))
        if clock() > deadline + interval:
            raise expired("the code expired before it was approved; run the sign-in again")
