"""Rotating a key over the in-memory fakes: a new secret for the same key, the old one working
until the overlap ends (on a clock the test moves), through the use cases and the whole app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mlgate.access import accounts, audit, keys
from mlgate.access.model import AuditQuery
from mlgate.api.app import create_app
from mlgate.bootstrap import Services, bootstrap
from mlgate.errors import InvalidInput, NotFound, Unauthenticated
from mlgate.settings import Settings
from tests.fakes import FixedClock, InMemoryArtifactStore, in_memory_uow_factory
from tests.secrets_watch import remember

DAY = timedelta(days=1)
PASS = remember("portal pass phrase for tests")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = bootstrap(
        Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}),
        unit_of_work=in_memory_uow_factory(),
        artifacts=InMemoryArtifactStore(),
        clock=FixedClock(),
    )
    for name in ("acme", "globex"):
        accounts.create_consumer(made.uow(), by=None, name=name, description="", now=made.clock())
    yield made
    made.close()


def clock_of(services: Services) -> FixedClock:
    assert isinstance(services.clock, FixedClock)
    return services.clock


def key_of(services: Services, owner: str = "acme", name: str = "app") -> str:
    _, token = services.access.create_key(
        by=None, owner_kind="consumer", owner=owner, name=name, scopes=("predict", "read")
    )
    return token


def who(services: Services, token: str) -> str:
    return services.access.authenticate(f"Bearer {token}").actor


def refusal(services: Services, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        services.access.authenticate(f"Bearer {token}")
    return caught.value.code


def test_both_secrets_work_until_the_overlap_ends_then_only_the_new_one(
    services: Services,
) -> None:
    old = key_of(services)
    before = services.access.keys(by=None)[0]
    rotated, new = services.access.rotate_key("app", by=None, overlap=DAY)
    assert new != old and new.startswith(old[:17]) and keys.shape_of(new)[0] == "checksummed"
    assert (rotated.prefix, rotated.name, rotated.scopes, rotated.created_at) == (
        before.prefix, before.name, before.scopes, before.created_at,
    )  # fmt: skip
    assert rotated.state(services.clock()) == "rotating"
    assert rotated.previous_until == services.clock() + DAY
    assert who(services, old) == who(services, new) == "consumer:acme"
    old_caller = services.access.authenticate(f"Bearer {old}")
    assert old_caller.key_prefix == rotated.prefix  # usage and limits: the one key
    assert old_caller.expires_at == rotated.previous_until
    assert services.access.authenticate(f"Bearer {new}").expires_at is None
    clock_of(services).advance(days=1)
    assert refusal(services, old) == "invalid_credentials"
    assert who(services, new) == "consumer:acme"
    assert services.access.keys(by=None)[0].state(services.clock()) == "active"


def test_a_second_rotation_ends_the_oldest_secret_at_once(services: Services) -> None:
    first = key_of(services)
    _, second = services.access.rotate_key("app", by=None, overlap=DAY)
    _, third = services.access.rotate_key("app", by=None, overlap=timedelta(hours=1))
    assert refusal(services, first) == "invalid_credentials"
    assert who(services, second) == who(services, third) == "consumer:acme"


def test_no_overlap_stops_the_old_secret_at_once_and_the_bounds_are_kept(
    services: Services,
) -> None:
    old = key_of(services)
    for wrong in (timedelta(seconds=-1), timedelta(days=30, seconds=1)):
        with pytest.raises(InvalidInput, match="0 to 30 days"):
            services.access.rotate_key("app", by=None, overlap=wrong)
    assert who(services, old) == "consumer:acme"  # refused rotations changed nothing
    rotated, new = services.access.rotate_key("app", by=None, overlap=timedelta(0))
    assert rotated.state(services.clock()) == "active" and rotated.previous_digest is None
    assert refusal(services, old) == "invalid_credentials"
    assert who(services, new) == "consumer:acme"


def test_the_old_secret_never_outlives_the_key(services: Services) -> None:
    services.access.create_key(
        by=None, owner_kind="consumer", owner="acme", name="short",
        expires_at=services.clock() + timedelta(hours=2),
    )  # fmt: skip
    rotated, _ = services.access.rotate_key("short", by=None, overlap=DAY)
    assert rotated.previous_until == rotated.expires_at


def test_only_a_working_key_of_ones_own_rotates(services: Services) -> None:
    key_of(services, "acme", "app")
    theirs = key_of(services, "globex", "theirs")
    acme = services.access.authenticate(f"Bearer {key_of(services, 'acme', 'other')}")
    with pytest.raises(NotFound):  # without the admin scope no key is its to manage (as revoke)
        services.access.rotate_key("app", by=acme, overlap=DAY)
    services.access.revoke_key(theirs[:16], by=None)
    with pytest.raises(InvalidInput, match="revoked"):
        services.access.rotate_key(theirs[:16], by=None, overlap=DAY)
    with pytest.raises(NotFound):
        services.access.rotate_key("mlg_ffffffffffff", by=None, overlap=DAY)


def test_a_rotation_is_audited_with_its_overlap(services: Services) -> None:
    key_of(services)
    with audit.acting("cli:ops"):
        rotated, _ = services.access.rotate_key("app", by=None, overlap=timedelta(hours=6))
    [event] = services.access.audit_log(AuditQuery(action="access.rotate_key"))
    assert (event.actor, event.target, event.result) == ("cli:ops", "app", "ok")
    assert event.detail == {
        "prefix": rotated.prefix,
        "overlap_s": 6 * 3600,
        "old_secret_until": (services.clock() + timedelta(hours=6)).isoformat(),
    }


def test_last_use_is_written_at_most_once_a_minute(services: Services) -> None:
    token = key_of(services)
    seen = set()
    for _ in range(300):  # five minutes of a call a second
        who(services, token)
        seen.add(services.access.keys(by=None)[0].last_used_at)
        clock_of(services).advance(seconds=1)
    assert len(seen) == 5


def test_a_cached_old_secret_is_refused_the_moment_its_overlap_ends(services: Services) -> None:
    old = key_of(services)
    # rotated elsewhere (another worker, the CLI): this process caches nothing of it
    services.access.rotate_key("app", by=None, overlap=timedelta(minutes=5))
    with TestClient(create_app(services)) as client:
        assert client.get("/v1/keys", headers={"Authorization": f"Bearer {old}"}).status_code == 200
        clock_of(services).advance(minutes=5)  # the cache's second has not passed; the overlap has
        refused = client.get("/v1/keys", headers={"Authorization": f"Bearer {old}"})
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"


def test_over_http_a_key_rotates_shows_both_expiries_and_a_typo_is_named(
    services: Services,
) -> None:
    accounts.set_consumer_password(services.uow(), "acme", PASS, by=None,
                                   now=services.clock())  # fmt: skip
    old = key_of(services)
    with TestClient(create_app(services)) as client:
        login = client.post(
            "/v1/auth/login", json={"name": "acme", "kind": "consumer", "password": PASS}
        )
        session = {"Authorization": f"Bearer {login.json()['token']}"}
        too_long = client.post(f"/v1/keys/{old[:16]}/rotate", headers=session,
                               json={"overlap_seconds": 31 * 86400})  # fmt: skip
        assert too_long.status_code == 422
        made = client.post(f"/v1/keys/{old[:16]}/rotate", headers=session,
                           json={"overlap_seconds": 3600})  # fmt: skip
        assert made.status_code == 200, made.text
        body = made.json()
        assert body["state"] == "rotating" and body["prefix"] == old[:16]
        assert body["previous_until"] is not None and body["token"] != old
        [listed] = client.get("/v1/keys", headers=session).json()
        assert listed["previous_until"] == body["previous_until"] and "token" not in listed
        typo = body["token"][:-1] + ("A" if body["token"][-1] != "A" else "B")
        refused = client.get("/v1/keys", headers={"Authorization": f"Bearer {typo}"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "bad_checksum"
        assert "checksum does not match" in refused.json()["detail"]
        # found trying rotation as a new user would: the event of a rotation through the API
        # (and the pages) lacked the overlap that the CLI's event had
        ok = [e for e in services.access.audit_log(AuditQuery(action="access.rotate_key"))
              if e.result == "ok"]  # fmt: skip
        assert [(e.detail["overlap_s"], e.detail["old_secret_until"][:19]) for e in ok] == [
            (3600, body["previous_until"][:19])
        ]
        page = client.get("/portal/")
        csrf = page.cookies.get("mlgate_login_csrf") or ""
        client.post("/portal/login", data={"name": "acme", "password": PASS, "csrf": csrf},
                    headers={"Origin": "http://testserver"})  # fmt: skip
        form = client.get("/portal")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token, form.text[:300]
        rotated = client.post(f"/portal/keys/{old[:16]}/rotate",
                              data={"csrf": token.group(1), "overlap_hours": "168"},
                              headers={"Origin": "http://testserver"})  # fmt: skip
        assert rotated.status_code == 200, rotated.text[:300]
        [web] = services.access.audit_log(AuditQuery(action="portal.rotate_key"))
        assert web.result == "ok" and web.detail["overlap_s"] == 168 * 3600
