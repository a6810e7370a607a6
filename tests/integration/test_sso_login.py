"""Signing in to the dashboard through a real OpenID Connect provider (issue 36):
oidc-provider-mock (Authlib's server, on Flask) runs offline on a thread of this process; the
test plays the browser with Starlette's TestClient over create_app and httpx at the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from starlette.testclient import TestClient

from mlgate.access.model import AuditQuery
from mlgate.api.app import create_app
from mlgate.bootstrap import Services, bootstrap
from mlgate.settings import Settings
from tests.fakes import InMemoryArtifactStore, in_memory_uow_factory

pytestmark = [
    # oidc-provider-mock 0.3.4 still calls Authlib's older JWT hooks, which warn
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

PEOPLE = [
    User(sub="s-alice", claims={"preferred_username": "alice", "groups": ["mlgate-admins"]}),
    User(sub="s-bob", claims={"preferred_username": "bob", "groups": ["data-science"]}),
]


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with run_server_in_thread(require_nonce=True, user_claims=PEOPLE) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def services(tmp_path: Path, issuer: str) -> Iterator[Services]:
    env = {
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_OIDC_ISSUER": issuer,
        "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_CLIENT_SECRET": "s3cret",
        "MLGATE_OIDC_SCOPES": "openid profile", "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins",
    }  # fmt: skip
    made = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore())  # fmt: skip
    yield made
    made.close()


def sign_in(client: TestClient, who: str, next_: str = "/ui/consumers") -> httpx.Response:
    """The browser's journey: mlgate → the provider (the user picks `who`) → mlgate."""
    away = client.get(f"/ui/sso/login?next={next_}", follow_redirects=False)
    assert away.status_code == 302, away.text
    at_provider = away.headers["location"]
    asked = parse_qs(urlsplit(at_provider).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["nonce"][0]
    picked = httpx.post(at_provider, data={"sub": who}, follow_redirects=False)
    assert picked.status_code == 302, picked.text
    back = urlsplit(picked.headers["location"])
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_an_admin_group_member_signs_in_and_lands_as_admin(services: Services) -> None:
    with TestClient(create_app(services), base_url="http://localhost") as client:
        assert "Sign in with localhost" in client.get("/ui/login").text
        landed = sign_in(client, "s-alice")
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/ui/consumers"
        assert client.get("/ui/consumers").status_code == 200
        made = services.access.audit_log(AuditQuery(action="access.create_user"))
        assert [(e.actor, e.detail["just_in_time"]) for e in made] == [("user:alice", True)]
        # logging out ends the session here, then at the provider (RP-initiated logout)
        page = client.get("/ui/consumers").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        out = client.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": "http://localhost"},
                          follow_redirects=False)  # fmt: skip
        assert out.status_code == 303
        assert "/oauth2/end_session?client_id=mlgate" in out.headers["location"]
        assert client.get("/ui/consumers", follow_redirects=False).status_code in (303, 401)


def test_a_member_of_another_group_is_refused_the_admin_page(services: Services) -> None:
    with TestClient(create_app(services), base_url="http://localhost") as client:
        assert sign_in(client, "s-bob").status_code == 303
        assert client.get("/ui/consumers").status_code == 403
    (bob,) = [u for u in services.access.users(by=None) if u.name == "bob"]
    assert bob.groups == ("data-science",) and not bob.is_admin and bob.sso_subject == "s-bob"


def test_a_callback_that_did_not_start_here_is_refused_and_recorded(services: Services) -> None:
    with TestClient(create_app(services), base_url="http://localhost") as client:
        refused = client.get("/ui/sso/callback?code=made-up&state=made-up")
    assert refused.status_code == 401
    assert "sign in again" in refused.text
    denied = services.access.audit_log(AuditQuery(action="auth.sso_login", result="denied"))
    assert [e.detail["error"] for e in denied] == ["sso_state"]
