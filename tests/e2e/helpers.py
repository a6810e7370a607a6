"""Running mlgate as a user does: as a command, and as a server on a free port."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e import http
from tests.secrets_watch import watch_file

SERVERS: dict[str, int] = {}  # base URL -> pid of the `mlgate serve` process
TOKEN = re.compile(r"mlg_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_")}
    env.update({"MLGATE_HOME": str(home), "COLUMNS": "200", **extra})
    return env


def mlgate(
    home: Path, *args: str, check: bool = True, input: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mlgate", *args],
        env=env_for(home, **extra),
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"mlgate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def quickstarted(home: Path) -> str:
    """Make `home` what `mlgate quickstart --no-serve` leaves (demo data, the churn model, an
    admin, the demo consumer, its plan and key); returns what the quickstart printed.

    The quickstart itself runs once per test run (xdist's workers share it), into a template;
    each caller gets a copy, with the demo source pointed at the copy's own data.
    `tests/e2e/test_cli.py` runs the real thing from an empty home.
    """
    from filelock import FileLock

    from tests.conftest import SHARED

    made = Path(os.environ[SHARED]) / "quickstart"
    template, printed = made / "home", made / "printed.txt"
    with FileLock(str(made) + ".lock"):
        if not printed.is_file():
            shutil.rmtree(made, ignore_errors=True)
            printed.parent.mkdir(parents=True)
            printed.write_text(mlgate(template, "quickstart", "--no-serve").stdout)
    shutil.copytree(template, home, dirs_exist_ok=True)
    from mlgate.sources.service import add_source, remove_source
    from tests.conftest import make_services

    services = make_services(home)
    try:
        remove_source(services.uow(), "demo")
        add_source(services.uow(), services.open_source, name="demo", now=services.clock(),
                   url=f"sqlite:///{home / 'demo' / 'churn.db'}", cwd=home)  # fmt: skip
    finally:
        services.close()
    return printed.read_text()


def wait_ready(
    base: str,
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    path: str = "/readyz",
    seconds: float = 90,
) -> None:
    """Until `base + path` answers 200; fails with the process's log if it exits or is late."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{base} exited:\n{log.read_text()[-3000:]}")
        try:
            if http.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not answer within {seconds:g} s:\n{log.read_text()[-3000:]}")


def free_port() -> int:
    """A port for a server a test starts: free now, taken from below the kernel's ephemeral
    range, and never handed to another test of this run. A port the kernel handed out (bind to
    0) went back to that range once it was closed, and any outgoing connection or port-0
    listener could take it before the server bound it: one CI run lost a guide page to "address
    already in use" that way. And a port that is merely free now can be handed to a test on the
    other xdist worker before this one's server binds it (a guide page binds its port tens of
    seconds after taking it); the second server then fails to bind while the first answers its
    readiness check, and the page's calls reach the other test's server. So the run keeps a
    ledger of the ports it gave out, shared by its workers."""
    from filelock import FileLock

    from tests.conftest import SHARED

    ledger = Path(os.environ.get(SHARED, "/tmp")) / "ports-given"
    low = _ephemeral_low()
    with FileLock(str(ledger) + ".lock"):
        given = set(ledger.read_text().split()) if ledger.is_file() else set()
        for _ in range(200):
            port = _PORTS.randrange(10_000, low)
            if str(port) in given:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            with ledger.open("a") as out:
                out.write(f"{port}\n")
            return port
    with socket.socket() as sock:  # every one tried is taken: what the kernel gives
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_PORTS = random.Random()  # seeded from the OS: each process (xdist worker) its own sequence


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return max(low, 10_001)


@contextmanager
def running_server(home: Path, *args: str, **extra: str) -> Iterator[str]:
    """`mlgate serve` in a subprocess; yields its base URL, stops it afterwards.

    The server's output goes to a file beside the home: a pipe that nobody reads fills up and
    stalls the server once it has logged enough requests.
    """
    port = free_port()
    log_path = home.parent / f"serve-{port}.log"
    watch_file(log_path)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlgate", "serve", "--port", str(port), *args],
            env=env_for(home, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log_path, path="/healthz", seconds=60)
        SERVERS[base] = process.pid
        yield base
    finally:
        SERVERS.pop(base, None)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def admin_key(home: Path, *scopes: str, user: str = "ops") -> str:
    """The token of a new key, with these scopes (default predict), of an admin user made for
    it (without a password: it cannot log in)."""
    made = mlgate(home, "users", "create", user, "--admin", "--no-password", check=False)
    assert made.returncode == 0 or "exists" in made.stderr, made.stderr
    args = [a for s in scopes for a in ("--scope", s)]
    out = mlgate(home, "keys", "create", "--user", user, "--name", f"{user}-key", *args).stdout
    match = TOKEN.search(out)
    assert match is not None, out
    return match.group(0)


@contextmanager
def redis_for_servers() -> Iterator[dict[str, str]]:
    """The environment that points servers at the suite's Redis under a prefix of their own
    (its keys deleted afterwards); a missing Redis fails the test where services are required."""
    import redis

    from tests.conftest import REDIS_URL, _unavailable

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        _unavailable("Redis", exc)
    prefix = f"mlgate-e2e-{os.getpid()}-{time.monotonic_ns()}"
    try:
        yield {"MLGATE_REDIS_URL": REDIS_URL, "MLGATE_REDIS_PREFIX": prefix}
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
        client.close()
