"""The admin API and the remote CLI against a real `mlgate serve`: logins, consumers, grants,
keys, revocation and the audit log, with changes made by other processes (the CLI) reaching the
server at once. Login throttling and the headers every answer carries are tested in process
(tests/integration/test_admin_http.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlgate.sources import demo
from tests.e2e import http
from tests.e2e.helpers import TOKEN, mlgate, quickstarted, running_server
from tests.secrets_watch import remember

ROW = demo.churn_frame().drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[0].to_dict()
BODY = {"rows": [{k: (None if v != v else v) for k, v in ROW.items()}]}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("admin") / "home"
    quickstarted(home)
    return home


@pytest.fixture(scope="module")
def admin_password(home: Path) -> str:
    """A fresh admin with a known password (the quickstart's is printed once, to a terminal)."""
    password = remember("admin pass phrase for tests")
    result = mlgate(home, "users", "create", "boss", "--admin", "--password-stdin", input=password)
    assert "Created admin user boss" in result.stdout
    return password


@pytest.fixture(scope="module")
def base(home: Path, admin_password: str) -> Iterator[str]:
    with running_server(home) as url:
        yield url


def login(base: str, name: str, password: str) -> httpx.Response:
    return http.post(f"{base}/v1/auth/login", json={"name": name, "password": password})


def remote(home: Path, base: str, token: str, *args: str, check: bool = True) -> Any:
    return mlgate(home, "--url", base, *args, check=check, MLGATE_TOKEN=token)


def test_quickstart_made_an_admin_and_a_consumer_that_may_call_churn(home: Path) -> None:
    out = mlgate(home, "users", "list").stdout
    assert "admin" in out and "yes" in out
    grants = mlgate(home, "grants", "list").stdout
    assert "consumer:demo-customer" in grants and "churn" in grants


def test_a_login_session_drives_the_remote_cli(home: Path, base: str, admin_password: str) -> None:
    response = login(base, "boss", admin_password)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token.startswith("mls_")
    assert "user:boss (admin) with a login session" in remote(home, base, token, "whoami").stdout

    remote(home, base, token, "consumers", "create", "acme", "--description", "a customer")
    mlgate(home, "consumers", "subscribe", "acme", "starter")
    remote(home, base, token, "grants", "add", "churn@production", "consumer", "--consumer", "acme")
    out = remote(home, base, token, "keys", "create", "--consumer", "acme", "--name", "acme-prod")
    key = TOKEN.search(out.stdout)
    assert key and "consumer:acme" in out.stdout
    headers = {"Authorization": f"Bearer {key.group(0)}"}

    # The grant is on the production alias: that alias answers, the bare version does not.
    mlgate(home, "models", "promote", "churn", "1", "--alias", "production")
    time.sleep(1.2)  # the server follows alias moves within a second
    ok = http.post(f"{base}/v1/models/churn@production/predict", headers=headers, json=BODY)
    assert ok.status_code == 200, ok.text
    bare_version = http.post(
        f"{base}/v1/models/churn/versions/1/predict", headers=headers, json=BODY
    )
    assert bare_version.status_code == 403 and bare_version.json()["code"] == "no_grant"
    listed = http.get(f"{base}/v1/models", headers=headers).json()
    assert [m["name"] for m in listed] == ["churn"]

    # Revoked over the API: the very next call is refused.
    remote(home, base, token, "keys", "revoke", key.group(0)[:16])
    refused = http.post(f"{base}/v1/models/churn@production/predict", headers=headers, json=BODY)
    assert refused.status_code == 401 and refused.json()["code"] == "key_revoked"

    # Everything above is in the audit log, with who and from where.
    audit = remote(home, base, token, "audit", "--actor", "user:boss", "--limit", "20").stdout
    for action in ("create_consumer", "add_grant", "create_key", "revoke_key"):
        assert action in audit
    assert "127.0.0.1" in audit
    events = http.get(
        f"{base}/v1/audit",
        params={"action": "access.revoke_key"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert events[0]["result"] == "ok" and events[0]["target"] == key.group(0)[:16]

    http.post(f"{base}/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    after = remote(home, base, token, "whoami", check=False)
    assert after.returncode == 1 and "session has ended" in after.stderr


def test_non_admins_get_a_clear_error_from_the_remote_cli(
    home: Path, base: str, admin_password: str
) -> None:
    boss = login(base, "boss", admin_password).json()["token"]
    password = remember("an entirely different phrase")
    http.post(
        f"{base}/v1/users",
        json={"name": "member", "password": password},
        headers={"Authorization": f"Bearer {boss}"},
    ).raise_for_status()
    member = login(base, "member", password).json()["token"]
    result = remote(home, base, member, "users", "list", check=False)
    assert result.returncode == 1 and result.stderr.startswith("Error: user:member is not an admin")
    assert "Traceback" not in result.stderr


def test_disabling_a_consumer_stops_its_keys_within_a_second(home: Path, base: str) -> None:
    """The CLI is another process: the server sees its change when its one-second cache of the
    credential lapses (caching.py), not before, so the refusal is awaited for that long."""
    out = mlgate(home, "keys", "create", "--consumer", "demo-customer", "--name", "soon-off").stdout
    key = TOKEN.search(out)
    assert key
    headers = {"Authorization": f"Bearer {key.group(0)}"}
    assert (
        http.post(
            f"{base}/v1/models/churn/versions/1/predict", headers=headers, json=BODY
        ).status_code
        == 200
    )
    mlgate(home, "consumers", "disable", "demo-customer")
    deadline = time.monotonic() + 1.5  # the cache's second, and time to answer
    while True:
        refused = http.post(
            f"{base}/v1/models/churn/versions/1/predict", headers=headers, json=BODY
        )
        if refused.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"
    mlgate(home, "consumers", "enable", "demo-customer")
