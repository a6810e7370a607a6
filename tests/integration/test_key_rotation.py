"""Rotation and last use on the real metadata stores (SQLite, PostgreSQL): two Services over one
database stand for two replicas, each with its own cache; the SQL each request sends is counted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from mlgate.access import accounts
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from tests.conftest import make_services

pytestmark = pytest.mark.services


@contextmanager
def key_writes(services: Services) -> Iterator[list[str]]:
    """The statements that write to api_keys while the block runs."""
    assert services.engine is not None
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            seen.append(statement)

    sa.event.listen(services.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", note)


def test_a_rotation_on_one_replica_is_seen_by_another_at_once(any_services: Services) -> None:
    one = any_services
    assert one.engine is not None
    url = one.engine.url.render_as_string(hide_password=False)
    # the same home (its secret key; for SQLite its database file), its own caches
    other = make_services(one.settings.home, None if url.startswith("sqlite") else url)
    try:
        assert other.server_secret == one.server_secret
        accounts.create_consumer(one.uow(), by=None, name="acme", description="", now=one.clock())
        _, old = one.access.create_key(by=None, owner_kind="consumer", owner="acme", name="app",
                                       scopes=("read",))  # fmt: skip
        with TestClient(create_app(one)) as a, TestClient(create_app(other)) as b:
            for client in (a, b):  # both replicas have the old secret cached
                assert client.get("/v1/keys", headers=bearer(old)).status_code == 200
            rotated = a.post(f"/v1/keys/{old[:16]}/rotate", headers=bearer(old),
                             json={"overlap_seconds": 3600})  # fmt: skip
            assert rotated.status_code == 404  # a read-only key manages no keys
            _, new = one.access.rotate_key("app", by=None, overlap=timedelta(hours=1))
            for client in (b, a):  # the new secret works everywhere at once, the old one too
                assert client.get("/v1/keys", headers=bearer(new)).status_code == 200
                assert client.get("/v1/keys", headers=bearer(old)).status_code == 200
            [seen] = other.access.keys(by=None)
            assert seen.state(other.clock()) == "rotating"
    finally:
        other.close()


def test_last_use_costs_no_database_write_per_request(any_services: Services) -> None:
    services = any_services
    accounts.create_consumer(
        services.uow(), by=None, name="acme", description="", now=services.clock()
    )
    _, token = services.access.create_key(by=None, owner_kind="consumer", owner="acme",
                                          name="app", scopes=("read",))  # fmt: skip
    with TestClient(create_app(services)) as client, key_writes(services) as writes:
        for _ in range(200):
            assert client.get("/v1/keys", headers=bearer(token)).status_code == 200
    assert len(writes) == 1  # the first use is noted; the next within a minute is not
    [key] = services.access.keys(by=None)
    assert key.last_used_at is not None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
