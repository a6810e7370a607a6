"""Signing in through the identity provider from a machine without a browser (the OAuth 2.0
Device Authorization Grant, RFC 8628), as the CLI (`mlgate --url … login --sso`) and the
Python client (`Client.login_sso`) both do it.

The server runs the grant at the provider (mlgate's client secret stays there): this side asks
it to start, shows the user the code and the address, then asks again every `interval` seconds
until the server answers a token. The provider's `slow_down` makes the wait longer; its
`access_denied` and `expired_token` come back as the server's 401, raised by `call`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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
    interval, deadline = _first(started, clock())
    while True:
        sleep(interval)
        answer: dict[str, Any] = call(TOKEN, _asked(started, interval, minutes))
        if "token" in answer:
            return answer
        interval = _then(answer, interval, notify)
        if clock() > deadline + interval:
            raise expired(EXPIRED)


async def device_login_async(
    call: Callable[[str, dict[str, Any]], Awaitable[Any]],
    *,
    minutes: int = 60,
    show: Callable[[dict[str, Any]], None],
    notify: Callable[[str], None] = lambda _: None,
    expired: Callable[[str], Exception] = TimeoutError,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """`device_login`, awaited (for `AsyncClient`)."""
    started: dict[str, Any] = await call(START, {})
    show(started)
    interval, deadline = _first(started, clock())
    while True:
        await sleep(interval)
        answer: dict[str, Any] = await call(TOKEN, _asked(started, interval, minutes))
        if "token" in answer:
            return answer
        interval = _then(answer, interval, notify)
        if clock() > deadline + interval:
            raise expired(EXPIRED)


EXPIRED = "the code expired before it was approved; run the sign-in again"


def _first(started: dict[str, Any], now: float) -> tuple[int, float]:
    return max(1, int(started.get("interval") or 5)), now + int(started.get("expires_in") or 600)


def _asked(started: dict[str, Any], interval: int, minutes: int) -> dict[str, Any]:
    return {"device_code": started["device_code"], "interval": interval, "ttl_minutes": minutes}


def _then(answer: dict[str, Any], interval: int, notify: Callable[[str], None]) -> int:
    """The wait before the next ask: the server's, longer after the provider's slow_down."""
    if answer.get("status") == "slow_down":
        notify(f"the identity provider asked to be asked less often: every {answer['interval']} s")
    return max(1, int(answer.get("interval") or interval))


def print_code(started: dict[str, Any]) -> None:
    """How the Python client shows the code by default."""
    print(
        f"To sign in, open {started['verification_uri']} and enter the code {started['user_code']}",
        flush=True,
    )
