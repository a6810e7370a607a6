"""The admin API's login throttling and the headers every answer carries, through the whole app
in process, on a clock the test moves (no waiting for a lockout to pass)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from mlgate.access.accounts import create_user
from mlgate.api.app import create_app
from mlgate.bootstrap import bootstrap
from mlgate.settings import Settings
from tests.fakes import FixedClock
from tests.secrets_watch import remember

pytestmark = pytest.mark.in_process  # the whole app, in this process: part of the fast tier

BOSS = ("boss", "admin pass phrase for tests")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, FixedClock]]:
    clock = FixedClock()
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}), clock=clock)
    remember(BOSS[1])
    create_user(services.uow(), by=None, name=BOSS[0], password=BOSS[1], is_admin=True,
                now=clock())  # fmt: skip
    with TestClient(create_app(services)) as client:
        yield client, clock
    services.close()


def login(client: TestClient, name: str, password: str) -> httpx.Response:
    return client.post("/v1/auth/login", json={"name": name, "password": password})


def test_failed_logins_slow_down_and_are_audited(site: tuple[TestClient, FixedClock]) -> None:
    client, clock = site
    password = remember("throttled user's password")
    boss = {"Authorization": f"Bearer {login(client, *BOSS).json()['token']}"}
    made = client.post("/v1/users", json={"name": "victim", "password": password}, headers=boss)
    assert made.status_code == 201, made.text
    statuses = [login(client, "victim", "not the password").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    early = login(client, "victim", password)  # the right password, too soon
    assert early.status_code == 429 and int(early.headers["retry-after"]) >= 1
    assert "too many failed logins" in early.json()["detail"]
    clock.advance(seconds=int(early.headers["retry-after"]) - 0.5)
    assert login(client, "victim", password).status_code == 429  # not yet
    clock.advance(seconds=1)
    assert login(client, "victim", password).status_code == 200
    denied = client.get(
        "/v1/audit",
        params={"actor": "user:victim", "action": "access.login", "result": "denied"},
        headers=boss,
    ).json()
    assert len(denied) == 5 and {e["address"] for e in denied} == {"testclient"}


def test_security_headers_and_no_cors(site: tuple[TestClient, FixedClock]) -> None:
    client, _ = site
    response = client.get("/v1/models")
    assert response.status_code == 401
    for name, value in {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    }.items():
        assert response.headers[name] == value
    preflight = client.options(
        "/v1/models/churn/predict",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_the_enable_and_disable_routes_switch_users_and_consumers(
    site: tuple[TestClient, FixedClock],
) -> None:
    client, _ = site
    boss = {"Authorization": f"Bearer {login(client, *BOSS).json()['token']}"}
    password = remember("switched user's password")
    assert client.post("/v1/users", json={"name": "ann", "password": password},
                       headers=boss).status_code == 201  # fmt: skip
    assert client.post("/v1/consumers", json={"name": "acme"}, headers=boss).status_code == 201
    for path, kind in (("/v1/users/ann", "user"), ("/v1/consumers/acme", "consumer")):
        off = client.post(f"{path}/disable", headers=boss)
        assert off.status_code == 200 and off.json()["disabled"] is True, off.text
        if kind == "user":
            assert login(client, "ann", password).status_code == 401
        on = client.post(f"{path}/enable", headers=boss)
        assert on.status_code == 200 and on.json()["disabled"] is False, on.text
        assert set(on.json()) == set(off.json())  # the same schema both ways: UserOut, ConsumerOut
        actions = [e["action"] for e in client.get("/v1/audit", params={"result": "ok"},
                                                   headers=boss).json()]  # fmt: skip
        assert {f"access.disable_{kind}", f"access.enable_{kind}"} <= set(actions)
    assert login(client, "ann", password).status_code == 200
    missing = client.post("/v1/consumers/nobody/disable", headers=boss)
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
