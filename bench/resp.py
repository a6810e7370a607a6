"""Redis client benchmark: our plans/resp.py against redis.asyncio with hiredis, on the calls the
plan limiter makes.

    .venv/bin/python bench/resp.py [--calls 2000] [--batch 32] [--redis URL]

Both clients send what `RedisCounters.commit_async` sends for each prediction: EVALSHA of the
commit script (plans/redis_counters.py) with its keys and arguments, built by the limiter's own
`_commit_call` for a consumer with three limits (requests per second, requests and rows per
month) and metering on. One event loop, one Redis on loopback, interleaved rounds (the first
warms up) so that drift of the machine falls on every client alike:

* one at a time: each call awaited before the next (a lone request): p50, p99, calls/s and the
  client's CPU per call (process time: Redis runs in its own process);
* pipelined, `--batch` calls in flight: ours through asyncio.gather of `Connection.call` (the
  calls of one loop turn go out in one write, as the server's do); redis.asyncio both through a
  non-transactional pipeline of the same EVALSHAs (its own way to pipeline) and through gather
  over its connection pool (what the limiter would get from it as written). p50 and p99 of a
  batch, calls/s, CPU per call.

Ratios are against plans/resp.py measured in the same run (x2.00: twice its time). Never part of
the tests.

Figures, 2026-07-14, 2-core VM (shared), Python 3.11, redis-py 8.2.0, hiredis 3.5.0, Redis on
loopback, `--calls 2000 --batch 32`:

    one at a time (latency of a call):
      plans/resp.py                      p50   87.1 us  p99 3934 us  5,225 calls/s  CPU  57 us/call
      redis.asyncio + hiredis            p50  157.9 us  p99 4900 us  2,570 calls/s  CPU 140 us/call
                                         (p50 x1.81, throughput x0.49)
    pipelined, 32 calls in flight (latency of a batch):
      plans/resp.py (gather)             p50 2353 us  p99 11286 us  9,169 calls/s  CPU 31 us/call
      redis.asyncio + hiredis (pipeline) p50 2294 us  p99  9833 us  9,982 calls/s  CPU 32 us/call
                                         (p50 x0.97, throughput x1.09)
      redis.asyncio + hiredis (gather)   p50 7816 us  p99 15976 us  4,054 calls/s  CPU 95 us/call
                                         (p50 x3.32, throughput x0.44)

    (9,952 calls a way; load average 6 on the two cores, so the p99s are the neighbours')

Conclusion: keep plans/resp.py. Even with hiredis, redis.asyncio spends 2.4x the CPU
per call (140 us against 57 us) and takes 1.8x the time for a lone call; with calls in flight
from separate requests (gather, which is how the limiter's calls arrive) it takes 3.3x the time
and gives under half the throughput. It matches ours only through an explicit pipeline
(x0.97, x1.09 throughput: within this VM's noise), which needs every call of a batch in one
place: the batching layer that plans/resp.py already is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from mlgate.plans import resp
from mlgate.plans.limiter import Charge
from mlgate.plans.metering import UsageEvent
from mlgate.plans.model import Limit
from mlgate.plans.redis_counters import _COMMIT, RedisCounters


def commit_command(url: str, prefix: str, sha: str) -> tuple[Any, ...]:
    """The EVALSHA a prediction's commit sends, as RedisCounters builds it."""
    counters = RedisCounters(url, prefix=prefix)
    month = 31 * 24 * 3600
    charged = [
        Charge(Limit("requests", "second", 10**9, True), "k1:requests:second:0", 1, 1, 2),
        Charge(Limit("requests", "month", 10**12, False), "k1:requests:month:0", 1, month, month),
        Charge(Limit("rows", "month", 10**12, False), "k1:rows:month:0", 1, month, month),
    ]
    event = UsageEvent(datetime.now(UTC), "consumer", "k1", "lr", 1, 200, 1, 0.4)
    keys, args = counters._commit_call(charged, 1, event)
    counters.close()
    return ("EVALSHA", sha, len(keys), *keys, *args)


class Tally:
    """Samples of one way of calling: seconds per unit (a call or a batch), calls, CPU."""

    def __init__(self, label: str, per_unit: int) -> None:
        self.label, self.per_unit = label, per_unit
        self.samples: list[float] = []
        self.wall = 0.0
        self.cpu = 0.0

    def line(self, base: Tally | None) -> str:
        ordered = sorted(self.samples)
        p50 = 1e6 * ordered[len(ordered) // 2]
        p99 = 1e6 * ordered[int(len(ordered) * 0.99)]
        calls = len(ordered) * self.per_unit
        rate = calls / self.wall
        cpu = 1e6 * self.cpu / calls
        text = (
            f"  {self.label:<34} p50 {p50:8.1f} us  p99 {p99:8.1f} us  {rate:8,.0f} calls/s  "
            f"CPU {cpu:5.1f} us/call"
        )
        if base is not None and base is not self:
            base_p50 = sorted(base.samples)[len(base.samples) // 2]
            text += f"  p50 x{1e-6 * p50 / base_p50:.2f}, throughput x{rate / base.rate:.2f}"
        return text

    @property
    def rate(self) -> float:
        return len(self.samples) * self.per_unit / self.wall


async def measure(tally: Tally, unit: Callable[[], Awaitable[Any]], n: int, keep: bool) -> None:
    samples = []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        started = time.perf_counter()
        await unit()
        samples.append(time.perf_counter() - started)
    if keep:
        tally.samples += samples
        tally.wall += time.perf_counter() - wall
        tally.cpu += time.process_time() - cpu


async def run(url: str, calls: int, batch: int) -> None:
    import redis
    import redis.asyncio
    from redis.utils import HIREDIS_AVAILABLE

    prefix = f"mlgate-bench-{uuid.uuid4().hex[:8]}"
    theirs = redis.asyncio.Redis.from_url(url, max_connections=batch)
    sha = await theirs.script_load(_COMMIT)
    command = commit_command(url, prefix, sha)
    ours = resp.Connection(url)
    assert int((await ours.call(*command))[0]) == 1  # counted: the script ran, nothing blocked

    async def ours_one() -> Any:
        return await ours.call(*command)

    async def theirs_one() -> Any:
        return await theirs.execute_command(*command)

    async def ours_batch() -> Any:
        return await asyncio.gather(*(ours.call(*command) for _ in range(batch)))

    async def theirs_pipeline() -> Any:
        pipe = theirs.pipeline(transaction=False)
        for _ in range(batch):
            pipe.execute_command(*command)
        return await pipe.execute()

    async def theirs_gather() -> Any:
        return await asyncio.gather(*(theirs.execute_command(*command) for _ in range(batch)))

    one = [
        (Tally("plans/resp.py", 1), ours_one),
        (Tally("redis.asyncio + hiredis", 1), theirs_one),
    ]
    many = [
        (Tally("plans/resp.py (gather)", batch), ours_batch),
        (Tally("redis.asyncio + hiredis (pipeline)", batch), theirs_pipeline),
        (Tally("redis.asyncio + hiredis (gather)", batch), theirs_gather),
    ]
    rounds = 6
    for round_ in range(rounds):
        for tally, unit in one:
            await measure(tally, unit, calls // (rounds - 1), keep=round_ > 0)
        for tally, unit in many:
            await measure(tally, unit, calls // (rounds - 1) // batch, keep=round_ > 0)

    sync = redis.Redis.from_url(url)
    for key in sync.scan_iter(match=f"{prefix}:*"):
        sync.delete(key)
    sync.close()
    await ours.close()
    await theirs.aclose()

    print(
        f"mlgate Redis client benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"redis-py {redis.__version__}, hiredis parser {'on' if HIREDIS_AVAILABLE else 'OFF'}): "
        "the limiter's EVALSHA"
    )
    print("  one at a time (latency of a call):")
    for tally, _ in one:
        print(tally.line(one[0][0]))
    print(f"  pipelined, {batch} calls in flight (latency of a batch):")
    for tally, _ in many:
        print(tally.line(many[0][0]))
    total = statistics.fmean(len(t.samples) * t.per_unit for t, _ in one + many)
    print(f"  ({total:,.0f} calls measured per way, after a warm-up round)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--redis", default=os.environ.get("MLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    asyncio.run(run(args.redis, args.calls, args.batch))


if __name__ == "__main__":
    main()
