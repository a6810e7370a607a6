"""A small Redis client for the event loop: one connection, RESP2, every command pipelined.

The prediction path asks Redis one thing per call (the commit script, plans/redis_counters.py).
Through redis-py that round trip cost ~140 us of CPU here against ~40 us for the bare socket
(its connection pool, parsers and instrumentation run per command), more than scoring a row.
This client writes the commands queued in one turn of the loop with a single write, reads
replies as they come and hands each to its caller in order; no call waits for another's round
trip. It speaks only what that needs: commands out, replies in (simple strings, errors,
integers, bulk strings, arrays), AUTH and SELECT from the URL, TCP or a Unix socket. A TLS URL
(rediss://) is not for it: the counters keep redis-py there.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

TIMEOUT_S = 2.0


class RedisError(Exception):
    """An error reply (its text as Redis wrote it, such as "NOSCRIPT No matching script")."""


class ReplyError:
    """An error inside an array reply (a script's error table): kept as a value."""

    def __init__(self, text: str) -> None:
        self.text = text


def supports(url: str) -> bool:
    return url.startswith(("redis://", "unix://"))


class Connection:
    """Commands to one Redis, from one event loop. Connects on first use and again after a
    connection is lost; a call in flight then hears ConnectionError, as from redis-py."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT_S) -> None:
        from redis.connection import parse_url

        self._options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._writes_before = 0  # by connections lost since

    @property
    def writes(self) -> int:
        """Writes to Redis so far: commands queued in one turn of the loop share one."""
        return self._writes_before + (self._protocol.writes if self._protocol else 0)

    async def call(self, *args: Any) -> Any:
        """One command's reply; RedisError for an error reply."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            if protocol is not None:
                self._writes_before += protocol.writes
                self._protocol = None
            protocol = await self._connect()
        return await protocol.call(_encode(args), self._timeout)

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:  # another call is connecting: wait for it
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            protocol = await asyncio.wait_for(self._open(loop), self._timeout)
        except Exception as exc:
            self._connecting.set_exception(_connection_error(exc))
            self._connecting.exception()  # retrieved: no "never retrieved" warning
            raise _connection_error(exc) from None
        finally:
            connecting, self._connecting = self._connecting, None
        self._protocol = protocol
        connecting.set_result(protocol)
        return protocol

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        options = self._options
        if "path" in options:
            _, protocol = await loop.create_unix_connection(_Protocol, options["path"])
        else:
            _, protocol = await loop.create_connection(
                _Protocol, options.get("host", "127.0.0.1"), options.get("port", 6379)
            )
        if options.get("password"):
            user = options.get("username")
            auth = ("AUTH", user, options["password"]) if user else ("AUTH", options["password"])
            await protocol.call(_encode(auth), self._timeout)
        if options.get("db"):
            await protocol.call(_encode(("SELECT", options["db"])), self._timeout)
        return protocol


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self.closed = False
        self.writes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio and uvloop both set TCP_NODELAY on TCP sockets (uvloop's transports are not
        # asyncio.Transport subclasses, only alike)
        self._transport = cast(asyncio.Transport, transport)

    def call(self, command: bytes, timeout: float) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.closed:
            future.set_exception(ConnectionError("the connection to Redis was lost"))
            return future
        if not self._outgoing:  # the first of this turn: write them all at its end
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        self._waiting.append(future)
        timer = loop.call_later(timeout, self._expire, future)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def _flush(self) -> None:
        if self._transport is not None and not self.closed and self._outgoing:
            self._transport.write(b"".join(self._outgoing))
            self.writes += 1
        self._outgoing = []

    def _expire(self, future: asyncio.Future[Any]) -> None:
        if not future.done():  # no answer in time: the connection is not to be trusted
            self._fail(TimeoutError(f"Redis did not answer within {TIMEOUT_S:g} s"))
            self.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        position = 0
        while self._waiting:
            parsed = _parse(self._buffer, position)
            if parsed is None:
                break
            value, position = parsed
            future = self._waiting.popleft()
            if future.done():  # timed out or cancelled: its reply is dropped, in order
                continue
            if isinstance(value, ReplyError):
                future.set_exception(RedisError(value.text))
            else:
                future.set_result(value)
        del self._buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("the connection to Redis was lost"))

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(exc)


def _encode(args: tuple[Any, ...] | list[Any]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buffer: bytearray, position: int) -> tuple[Any, int] | None:
    """One reply from `position`: (value, the position after it), or None if it is not all
    there yet."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None
    kind, line = buffer[position : position + 1], bytes(buffer[position + 1 : end])
    after = end + 2
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line.decode(), after
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), after
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            return None
        return bytes(buffer[after : after + length]), after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            parsed = _parse(buffer, after)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        return items, after
    raise ConnectionError(f"Redis sent a reply this client cannot read: {bytes(kind)!r}")


def _connection_error(exc: Exception) -> ConnectionError:
    if isinstance(exc, ConnectionError):
        return exc
    return ConnectionError(f"cannot reach Redis: {type(exc).__name__}: {exc}")
