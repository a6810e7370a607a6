"""Signing in without a browser through the identity provider (issue 36): the OAuth 2.0
Device Authorization Grant, run by the server (mlgate's client secret stays there) against a
real provider on a socket (tests/device_provider.py), the client side's loop
(mlgate/client/device.py) driving mlgate in process. The test plays the user's browser step.
`tests/e2e/test_sso_device.py` does it with `mlgate serve`, the CLI and the Python client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mlgate.access.model import AuditQuery
from mlgate.api.app import create_app
from mlgate.bootstrap import Services, bootstrap
from mlgate.client.device import device_login
from mlgate.settings import Settings
from tests.device_provider import DeviceProvider, running
from tests.fakes import InMemoryArtifactStore, in_memory_uow_factory

PEOPLE = {
    "s-alice": {"preferred_username": "alice", "groups": ["mlgate-admins"]},
    "s-bob": {"preferred_username": "bob", "groups": ["data-science"]},
}


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail"))
        self.status, self.code = status, body.get("code")


@pytest.fixture
def provider() -> Iterator[DeviceProvider]:
    with running(DeviceProvider(users=PEOPLE)) as made:
        yield made


def services_for(tmp_path: Path, issuer: str, **extra: str) -> Services:
    env = {
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_OIDC_ISSUER": issuer,
        "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_CLIENT_SECRET": "s3cret",
        "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins", **extra,
    }  # fmt: skip
    return bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore())  # fmt: skip


@pytest.fixture
def api(tmp_path: Path, provider: DeviceProvider) -> Iterator[tuple[TestClient, Services]]:
    services = services_for(tmp_path, provider.issuer)
    with TestClient(create_app(services), base_url="http://localhost") as client:
        yield client, services
    services.close()


def caller(client: TestClient) -> Callable[[str, dict[str, Any]], Any]:
    def call(path: str, body: dict[str, Any]) -> Any:
        answer = client.post(path, json=body)
        if answer.status_code >= 400:
            raise Refused(answer.status_code, answer.json())
        return answer.json()

    return call


def approving(provider: DeviceProvider, sub: str, decision: str = "approved") -> Any:
    """The user's browser step: open the verification address and approve (or deny) the code."""

    def show(started: dict[str, Any]) -> None:
        assert started["verification_uri"] == f"{provider.issuer}/device"
        assert started["user_code"] in started["verification_uri_complete"]
        answer = httpx.post(started["verification_uri"],
                            data={"user_code": started["user_code"], "sub": sub,
                                  "decision": decision})  # fmt: skip
        assert answer.status_code == 200, answer.text

    return show


def test_an_approved_code_gives_a_short_lived_session_with_the_groups_role(
    api: tuple[TestClient, Services], provider: DeviceProvider
) -> None:
    client, services = api
    waits: list[float] = []
    out = device_login(caller(client), minutes=15, show=approving(provider, "s-alice"),
                       sleep=waits.append)  # fmt: skip
    assert out["user"] == "alice" and out["token"].startswith("mls_")
    assert waits == [1]  # the provider's interval, once: approved before the first ask
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {out['token']}"}).json()
    assert me["name"] == "alice" and me["admin"] is True and me["credential"] == "login session"
    expires = datetime.fromisoformat(out["expires_at"])
    assert abs((expires - services.clock()).total_seconds() - 15 * 60) < 5
    made = services.access.audit_log(AuditQuery(action="access.create_user"))
    assert [(e.actor, e.detail["just_in_time"], e.detail["via"]) for e in made] == [
        ("user:alice", True, "device")
    ]
    (signed_in,) = services.access.audit_log(AuditQuery(action="auth.sso_login"))
    assert signed_in.result == "ok" and signed_in.detail["via"] == "device"
    assert signed_in.detail["groups"] == ["mlgate-admins"]
    # the device code is spent: asking again with it is refused, not a second session
    again = client.post("/v1/auth/sso/device/token",
                        json={"device_code": "x" * 43, "interval": 1})  # fmt: skip
    assert again.status_code == 401 and again.json()["code"] == "sso_refused"


def test_a_group_that_does_not_reach_gives_no_admin(
    api: tuple[TestClient, Services], provider: DeviceProvider
) -> None:
    client, _ = api
    out = device_login(caller(client), show=approving(provider, "s-bob"), sleep=lambda _: None)
    bearer = {"Authorization": f"Bearer {out['token']}"}
    assert client.get("/v1/auth/me", headers=bearer).json()["admin"] is False
    refused = client.get("/v1/users", headers=bearer)
    assert refused.status_code == 403, refused.text


def test_pending_then_slow_down_waits_longer(
    api: tuple[TestClient, Services], provider: DeviceProvider
) -> None:
    client, _ = api
    provider.slow_down_first = True
    waits: list[float] = []
    notes: list[str] = []
    started: dict[str, Any] = {}

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the user approves while the CLI waits
            approving(provider, "s-alice")(started)

    out = device_login(caller(client), show=started.update, notify=notes.append, sleep=sleep)
    assert out["user"] == "alice"
    # slow_down: 1 + 5 seconds from then on (RFC 8628 3.5); then pending; then approved
    assert waits == [1, 6, 6]
    assert notes == ["the identity provider asked to be asked less often: every 6 s"]


@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        ("deny", "access_denied", "denied at the identity provider"),
        ("expire", "expired_token", "the code expired"),
        ("rogue", "bad_signature", "signature does not verify"),
    ],
)
def test_refusals_are_a_clear_401_and_audited(
    api: tuple[TestClient, Services], provider: DeviceProvider, setup: str, code: str,
    words: str,
) -> None:  # fmt: skip
    client, services = api
    provider.rogue = setup == "rogue"
    provider.expires_in = 0 if setup == "expire" else 600
    show = approving(provider, "s-alice", "denied" if setup == "deny" else "approved")
    with pytest.raises(Refused) as refused:
        device_login(caller(client), show=show, sleep=lambda _: None)
    assert (refused.value.status, refused.value.code) == (401, code)
    assert words in str(refused.value)
    (denied,) = services.access.audit_log(AuditQuery(action="auth.sso_login"))
    assert denied.result == "denied" and denied.detail == {"error": code, "via": "device"}
    assert not [u for u in services.access.users(by=None) if u.name == "alice"]


def test_bounds_and_a_provider_without_the_device_flow(
    tmp_path: Path, api: tuple[TestClient, Services], provider: DeviceProvider
) -> None:
    client, _ = api
    for body in (
        {"device_code": ""},
        {"device_code": "x", "interval": 0},
        {"device_code": "x", "ttl_minutes": 24 * 60 + 1},
        {"device_code": "x" * 4097},
    ):
        assert client.post("/v1/auth/sso/device/token", json=body).status_code == 422, body
    provider.device_endpoint = False
    services = services_for(tmp_path / "other", provider.issuer)
    with TestClient(create_app(services)) as other:
        answer = other.post("/v1/auth/sso/device")
    services.close()
    assert answer.status_code == 404
    assert "does not offer the device flow" in answer.json()["detail"]


def test_without_single_sign_on_the_device_flow_is_not_found(tmp_path: Path) -> None:
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}),
                         unit_of_work=in_memory_uow_factory(),
                         artifacts=InMemoryArtifactStore())  # fmt: skip
    with TestClient(create_app(services)) as client:
        for path in ("/v1/auth/sso/device", "/v1/auth/sso/device/token"):
            answer = client.post(path, json={"device_code": "x"} if "token" in path else None)
            assert answer.status_code == 404
            assert "single sign-on is not set up" in answer.json()["detail"]
    services.close()


def test_a_provider_that_is_away_is_a_clear_503(tmp_path: Path) -> None:
    from tests.e2e.helpers import free_port

    services = services_for(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens
    with TestClient(create_app(services)) as client:
        answer = client.post("/v1/auth/sso/device")
    services.close()
    assert answer.status_code == 503
    assert "the identity provider cannot be reached (ConnectError)" in answer.json()["detail"]
