"""Shared fixtures: throwaway databases on the real servers, and Services over them.

Integration tests need PostgreSQL and MariaDB. With MLGATE_REQUIRE_SERVICES=1 (set by CI) a missing
server fails the test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Authlib's deprecation module puts an "always" filter for its warnings in front of every other
# when it is first imported: imported during a test's collection, that filter outranks pyproject's
# filterwarnings for the rest of it. Imported here, before pytest's filters are set per test, the
# configured filters come first again.
import authlib.deprecate  # noqa: F401
import pytest
import sqlalchemy as sa

from mlgate.bootstrap import Services, bootstrap
from mlgate.settings import Settings
from mlgate.sources.service import add_source
from tests import secrets_watch

POSTGRES_ADMIN_URL = os.environ.get(
    "MLGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "MLGATE_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"
)


SHARED = "MLGATE_TESTS_SHARED_DIR"  # a folder the whole run shares, xdist's workers included
_MADE_SHARED = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    secrets_watch.install()
    if SHARED not in os.environ:  # the controller, or a run without xdist; workers inherit it
        config.stash[_MADE_SHARED] = os.environ[SHARED] = tempfile.mkdtemp(prefix="mlgate-tests-")


def pytest_unconfigure(config: pytest.Config) -> None:
    made = config.stash.get(_MADE_SHARED, None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(SHARED, None)


# The tiers (CONTRIBUTING.md): `fast` runs in process on fakes or an embedded SQLite file: no
# subprocess, no sleep, no socket, no database server; `pytest -m fast` is the loop to run after
# each change. `e2e` runs mlgate as users do (servers, workers, replicas, crashes, the browser,
# the docs' examples). Everything else (real PostgreSQL, MariaDB, Redis, training the catalogue)
# is the middle tier. `slow` marks a test over 20 s, with its reason.
FAST_PLACES = ("tests/unit/", "tests/contracts/", "tests/test_layers.py")
E2E_PLACES = ("tests/e2e/", "tests/docs/")


# scripts/test runs the tiers past the fast one on xdist's workers (`-n auto --dist loadscope`):
# a module's tests stay on one worker (its module fixtures, servers and trained models, are made
# once), while each page of the guide, independent of the others, is a unit of its own (its
# sections, tests/docs/test_guide.py, run in order on one worker). The
# heaviest units go first, so that no worker is left with a long one at the end.
INDEPENDENT = "tests/docs/test_guide.py::"
HEAVY_FIRST = (  # the longest units first (a module, or a page of the guide): prefixes of ids
    "tests/e2e/test_plans_server.py",
    "tests/integration/test_catalogue.py",
    "tests/e2e/test_replicas.py",
    "tests/integration/test_dask_training.py",
    "tests/docs/test_guide.py::test_every_example_of_the_page_runs[tutorials/",
    "tests/integration/test_gan.py",
    "tests/integration/test_forecast.py",
    "tests/docs/test_guide.py",
)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: a model library that starts a thread per core in each (PyTorch,
    # XGBoost, LightGBM) spins against the other worker, and a tutorial takes four times as long.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _heaviness(item: pytest.Item) -> int:
    return next(
        (i for i, p in enumerate(HEAVY_FIRST) if item.nodeid.startswith(p)), len(HEAVY_FIRST)
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ModulesAndPages(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(INDEPENDENT):  # a page: its sections, in order, on one worker
                return nodeid.split("#", 1)[0]
            return str(super()._split_scope(nodeid))

    config.option.loadscopereorder = False  # the order of collection: the heaviest first
    return ModulesAndPages(config, log)


@pytest.hookimpl(wrapper=True)  # the markers are set before `-m` selects
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    root = Path(str(config.rootpath))
    for item in items:
        slow = item.get_closest_marker("slow")
        if slow is not None and len(str(slow.kwargs.get("reason", ""))) < 15:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.slow(reason=...) says why")
        place = Path(str(item.path)).relative_to(root).as_posix()
        if place.startswith(E2E_PLACES):
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") or item.get_closest_marker("slow"):
            continue
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("uow_factory") if callspec is not None else None
        if place.startswith("tests/contracts/") and backend != "memory":
            continue  # the SQL side of a contract needs its database
        if place.startswith(FAST_PLACES) or item.get_closest_marker("in_process"):
            item.add_marker(pytest.mark.fast)
    items.sort(key=_heaviness)
    return (yield)


_WORKER_LEAKS: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist: what a worker's logs leaked reaches the controller's verdict."""
    _WORKER_LEAKS.extend(getattr(node, "workeroutput", {}).get("secret_leaks", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log line of the session holds a secret (see secrets_watch)."""
    found = secrets_watch.leaks()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller judges
        workeroutput["secret_leaks"] = found
        return
    found += _WORKER_LEAKS
    if found:
        print("\nSECRETS IN LOGS:\n  " + "\n  ".join(found[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _unavailable(what: str, exc: Exception) -> None:
    reason = f"{what} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if os.environ.get("MLGATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and MLGATE_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def throwaway_database(admin_url: str, what: str) -> Iterator[str]:
    name = f"mlgate_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(what, exc)
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    yield from throwaway_database(POSTGRES_ADMIN_URL, "PostgreSQL")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database, dropped afterwards."""
    yield from throwaway_database(MARIADB_ADMIN_URL, "MariaDB")


REDIS_URL = os.environ.get("MLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    """The test Redis and a key prefix of this test's own; its keys are deleted afterwards."""
    with redis_prefix() as prefix:
        yield REDIS_URL, prefix


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of one's own on the test Redis (skipped, or failed in CI, without one);
    its keys are deleted at the end."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        _unavailable("Redis", exc)
    prefix = f"mlgate-test-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
        client.close()


def make_services(home: Path, database_url: str | None = None, **extra: str) -> Services:
    """`extra`: more MLGATE_* settings, e.g. MLGATE_OUTBOUND_ALLOW="127.0.0.1"."""
    env = {"MLGATE_HOME": str(home), **extra}
    if database_url:
        env["MLGATE_DATABASE_URL"] = database_url
    return bootstrap(Settings.from_env(env))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Services on the embedded defaults (SQLite, local artifacts) in a fresh home."""
    built = make_services(tmp_path / "home")
    yield built
    built.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """The same test on the SQLite and the PostgreSQL metadata store."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    built = make_services(tmp_path / "home", url)
    yield built
    built.close()


def admin_token(services: Services, *scopes: str, user: str = "ops") -> str:
    """The token of a new key, with these scopes (default predict), of an admin user made for
    it without a password: what tests/e2e/helpers.admin_key does through the CLI, in process."""
    from mlgate.access.accounts import create_user
    from mlgate.access.service import create_key

    with services.uow() as uow:
        exists = uow.users.get(user) is not None
    if not exists:
        create_user(services.uow(), by=None, name=user, password=None, is_admin=True,
                    now=services.clock())  # fmt: skip
    _, token = create_key(
        services.uow(), services.server_secret, by=None, owner_kind="user", owner=user,
        name=f"{user}-key", now=services.clock(), scopes=scopes or ("predict",),
    )  # fmt: skip
    return token


def add_source_to(services: Services, name: str, url: str, *, cwd: Path) -> None:
    """Register a data source the way `mlgate sources add` does."""
    add_source(
        services.uow(), services.open_source, name=name, url=url, cwd=cwd, now=services.clock()
    )


def cancel_after_first_epoch(services: Services, spec: Any) -> str:
    """Submit `spec` as a job, ask to cancel it once it logged an epoch, wait for it to end;
    its final state. The model must then have no version."""
    import time

    from mlgate.jobs.runner import get_job, request_cancel

    job = services.jobs.submit(spec, {"model": spec.model_name})
    deadline = time.monotonic() + 120
    while "epoch" not in " ".join(get_job(services.uow(), job.id).log):
        assert time.monotonic() < deadline, "the job never reached its first epoch"
        time.sleep(0.05)
    request_cancel(services.uow(), job.id)
    while (state := get_job(services.uow(), job.id).state) not in (
        "cancelled",
        "failed",
        "succeeded",
    ):
        assert time.monotonic() < deadline, "the job did not stop"
        time.sleep(0.05)
    return state
