"""Counters in Redis, shared by every worker and replica: one Lua script checks, counts and
meters a call atomically; metered aggregates wait in a Redis hash until a flusher moves them to
the database (exactly once: each batch is renamed aside under an id that the database records
in the same transaction as the batch's rows).

A server's event loop commits with `commit_async`, through plans/resp.py: the loop never waits
on Redis (a round trip costs more than scoring a row), and the calls of one turn of the loop
go out in one write. Each call is still its own script run, atomic and in order, so counting
stays exact; only the round trips are shared.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

from mlgate.errors import NotReady
from mlgate.plans import resp
from mlgate.plans.limiter import Charge, LimitState
from mlgate.plans.metering import UsageEvent
from mlgate.plans.model import FIELDS, Aggregates

# ARGV: rows, the charges as "amount limit hard rows ttl extra" joined by "|" (extra: a spend
# charge's nanos per overage row, added once the overage is known: it comes last), the usage
# field prefix, and the usage values "requests rows latency explained". Few, long arguments:
# packing many short ones cost redis-py more than Redis spends running the script.
_COMMIT = """
local rows = tonumber(ARGV[1])
local charges = {}
for spec in string.gmatch(ARGV[2], "[^|]+") do
  local a, l, h, r, t, x = string.match(spec, "(%d+) (%d+) (%d) (%d) (%d+) (%d+)")
  charges[#charges + 1] = {tonumber(a), tonumber(l), h == "1", r == "1", t, tonumber(x)}
end
local overage = 0
for i, c in ipairs(charges) do
  c[1] = c[1] + overage * c[6]
  local used = tonumber(redis.call("GET", KEYS[i]) or "0")
  local after = used + c[1]
  if after > c[2] then
    if c[3] then
      return {0, i, used}
    end
    if c[4] then
      overage = math.max(overage, math.min(rows, after - c[2]))
    else
      overage = rows
    end
  end
end
local out = {1, overage}
for i, c in ipairs(charges) do
  local v = redis.call("INCRBY", KEYS[i], c[1])
  if v == c[1] then
    redis.call("EXPIRE", KEYS[i], c[5])
  end
  out[#out + 1] = v
end
if ARGV[3] == "" then
  return out  -- counted only: the caller meters itself (a batch, in the ledger, exactly once)
end
local usage = KEYS[#charges + 1]
local prefix = ARGV[3]
local req, nrows, latency, explained = string.match(ARGV[4], "(%d+) (%d+) (%d+) (%d+)")
redis.call("HINCRBY", usage, prefix .. "|requests", req)
redis.call("HINCRBY", usage, prefix .. "|rows", nrows)
redis.call("HINCRBY", usage, prefix .. "|latency_ms", latency)
if explained ~= "0" then
  redis.call("HINCRBY", usage, prefix .. "|explained_rows", explained)
end
if overage > 0 then
  redis.call("HINCRBY", usage, prefix .. "|overage_rows", overage)
end
return out
"""


class RedisCounters:
    def __init__(self, url: str, *, prefix: str = "mlgate") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._usage = f"{prefix}:usage"
        self._commit = self._redis.register_script(_COMMIT)
        self._url = url
        self._connection: tuple[asyncio.AbstractEventLoop, resp.Connection] | None = None

    def peek(self, keys: list[str]) -> list[int]:
        values = self._call(self._redis.mget, [self._counter(k) for k in keys])
        return [int(v or 0) for v in values]

    def commit(
        self, charged: list[Charge], rows: int, event: UsageEvent
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        keys, args = self._commit_call(charged, rows, event)
        return _outcome(charged, self._call(self._commit, keys=keys, args=args))

    def reserve(
        self, charged: list[Charge], rows: int
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        """Check and count, but do not meter (the caller writes its own usage)."""
        keys = [self._counter(c.key) for c in charged] + [self._usage]
        specs = "|".join(
            f"{c.amount} {c.limit.limit} {int(c.limit.hard)} {int(c.limit.unit == 'rows')} {c.ttl}"
            f" {c.extra}"
            for c in charged
        )
        out = self._call(self._commit, keys=keys, args=[rows, specs, "", "0 0 0 0"])
        return _outcome(charged, out)

    async def commit_async(
        self, charged: list[Charge], rows: int, event: UsageEvent
    ) -> tuple[bool, LimitState | None, int, list[int]]:
        """`commit`, from an event loop, without blocking it (see the module's doc)."""
        if not resp.supports(self._url):  # TLS: redis-py, blocking the loop for the round trip
            return self.commit(charged, rows, event)
        keys, args = self._commit_call(charged, rows, event)
        connection = self._loop_connection()
        command = ("EVALSHA", self._commit.sha, len(keys), *keys, *args)
        try:
            try:
                out = await connection.call(*command)
            except resp.RedisError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                # Redis restarted or its scripts were flushed; the call did not run.
                await connection.call("SCRIPT", "LOAD", _COMMIT)
                out = await connection.call(*command)
        except (ConnectionError, TimeoutError) as exc:
            raise NotReady(f"the rate-limit store (Redis) is unreachable: {exc}") from None
        return _outcome(charged, out)

    @property
    def writes(self) -> int:
        """Writes `commit_async` made on this loop's connection: calls queued in one turn of the
        loop share one (tests read it)."""
        return 0 if self._connection is None else self._connection[1].writes

    async def aclose(self) -> None:
        """Close the event loop's connection (a server's lifespan ends with this)."""
        held, self._connection = self._connection, None
        if held is not None:
            await held[1].close()

    def _loop_connection(self) -> resp.Connection:
        loop = asyncio.get_running_loop()
        if self._connection is None or self._connection[0] is not loop:
            self._connection = (loop, resp.Connection(self._url))
        return self._connection[1]

    def _commit_call(
        self, charged: list[Charge], rows: int, event: UsageEvent
    ) -> tuple[list[str], list[Any]]:
        specs = "|".join(
            f"{c.amount} {c.limit.limit} {int(c.limit.hard)} {int(c.limit.unit == 'rows')} {c.ttl}"
            f" {c.extra}"
            for c in charged
        )
        requests, n_rows, _overage, latency, explained = event.values
        args = [rows, specs, "|".join(event.key), f"{requests} {n_rows} {latency} {explained}"]
        return [self._counter(c.key) for c in charged] + [self._usage], args

    def meter(self, event: UsageEvent) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for name, value in _fields(event):
            if value:
                pipe.hincrby(self._usage, name, value)
        self._call(pipe.execute)

    def seed(self, counts: dict[str, tuple[int, int]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, (value, ttl) in counts.items():
            pipe.set(self._counter(key), value, nx=True, ex=ttl)
        self._call(pipe.execute)

    def drain(self) -> Iterable[tuple[str, Aggregates]]:
        batch = f"{self._usage}:flushing:{uuid.uuid4().hex}"
        try:
            self._redis.rename(self._usage, batch)
        except Exception as exc:  # no such key: nothing metered since the last flush
            if "no such key" not in str(exc).lower():
                raise
        out = []
        for key in self._redis.scan_iter(match=f"{self._usage}:flushing:*", count=100):
            name = key.decode() if isinstance(key, bytes) else str(key)
            raw = self._redis.hgetall(name)
            out.append((name.rsplit(":", 1)[-1], _aggregates(raw)))
        return out

    def drained(self, batch: str) -> None:
        self._redis.delete(f"{self._usage}:flushing:{batch}")

    def close(self) -> None:
        self._redis.close()

    def _counter(self, key: str) -> str:
        return f"{self._prefix}:c:{key}"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.exceptions.ConnectionError as exc:
            raise NotReady(
                f"the rate-limit store (Redis) is unreachable: {type(exc).__name__}"
            ) from None


def _outcome(charged: list[Charge], out: Any) -> tuple[bool, LimitState | None, int, list[int]]:
    """The script's answer: [1, overage, counts after...] or [0, index of the blocking limit
    (from 1), its count]."""
    if int(out[0]) == 0:
        index, used = int(out[1]) - 1, int(out[2])
        blocked = charged[index]
        return False, LimitState(blocked.limit, used, blocked.reset_in), 0, []
    return True, None, int(out[1]), [int(v) for v in out[2:]]


def _fields(event: UsageEvent) -> list[tuple[str, int]]:
    """Hash fields for the event's aggregate: one per value, the overage one last."""
    base = "|".join(event.key)
    values = event.values
    return [
        (f"{base}|{name}", values[i]) for i, name in enumerate(FIELDS) if name != "overage_rows"
    ] + [(f"{base}|overage_rows", values[FIELDS.index("overage_rows")])]


def _aggregates(raw: dict[Any, Any]) -> Aggregates:
    out: Aggregates = {}
    for field, value in raw.items():
        text = field.decode() if isinstance(field, bytes) else str(field)
        *key, name = text.split("|")
        into = out.setdefault(tuple(key), [0] * len(FIELDS))
        into[FIELDS.index(name)] += int(value)
    return out
