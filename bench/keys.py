"""Keys benchmark: what refusing a mistyped key costs against looking a valid one up.

    .venv/bin/python bench/keys.py [--calls 3000] [--database-url postgresql+psycopg://...]

In one run, on one metadata database (SQLite in a temporary home by default), it times the
authentication use case (access/service.py `authenticate`, no cache in front) for:

* a key whose checksum fails (one character mistyped): refused from its text, no database read;
* a valid key: looked up by its id, its digest compared, its owner and grants read;
* a well-formed key with a wrong secret: looked up, then refused.

It prints p50 and p99 in microseconds for each and the ratios of the valid key's and the wrong
secret's p50 to the checksum refusal's. Issue 36: a checksum-rejected key costs microseconds,
not a database round trip. Never part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlgate.access import accounts, keys
from mlgate.bootstrap import bootstrap
from mlgate.errors import Unauthenticated
from mlgate.settings import Settings


def timed(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """p50 and p99 microseconds over `calls`, each called once (a refusal counts as done)."""
    samples = []
    for call in calls:
        started = time.perf_counter()
        with contextlib.suppress(Unauthenticated):
            call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return 1e6 * statistics.median(samples), 1e6 * samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp home")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MLGATE_HOME": str(Path(tmp) / "home")}
        if args.database_url:
            env["MLGATE_DATABASE_URL"] = args.database_url
        services = bootstrap(Settings.from_env(env))
        try:
            now = services.clock()
            name = f"bench-{time.monotonic_ns()}"
            accounts.create_consumer(services.uow(), by=None, name=name, description="", now=now)
            _, token = services.access.create_key(by=None, owner_kind="consumer", owner=name,
                                                  name="bench")  # fmt: skip
            typo = token[:-1] + ("A" if token[-1] != "A" else "B")
            wrong = str(keys.with_new_secret(token[:16]))
            assert keys.shape_of(typo)[0] == "bad_checksum"
            runs = {
                "checksum refused": f"Bearer {typo}",
                "valid key": f"Bearer {token}",
                "wrong secret": f"Bearer {wrong}",
            }
            for header in runs.values():  # warm up: imports, the connection pool
                timed([lambda h=header: services.access.authenticate(h)] * 50)  # type: ignore[misc]
            found = {
                what: timed([lambda h=header: services.access.authenticate(h)] * args.calls)  # type: ignore[misc]
                for what, header in runs.items()
            }
            database = services.engine.dialect.name if services.engine else "memory"
        finally:
            services.close()
    print(f"authenticate, {args.calls} calls each, metadata on {database}:")
    for what, (p50, p99) in found.items():
        print(f"  {what:<17} p50 {p50:9.1f} us   p99 {p99:9.1f} us")
    refused = found["checksum refused"][0]
    valid, wrong = found["valid key"][0] / refused, found["wrong secret"][0] / refused
    print(
        f"  a valid key's lookup takes {valid:,.0f}x a checksum refusal (p50); "
        f"a wrong secret's {wrong:,.0f}x"
    )


if __name__ == "__main__":
    main()
