"""Single sign-on in process (issue 36): the provider's tokens checked with joserfc against a
key set served from memory, sign-ins over the in-memory store, the API and the login page
through create_app. The sign-in through a real provider is tests/integration/test_sso_login.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from starlette.testclient import TestClient

from mlgate.access import policy
from mlgate.access.model import AuditQuery, Target
from mlgate.api.app import create_app
from mlgate.bootstrap import Services, bootstrap
from mlgate.errors import Unauthenticated
from mlgate.settings import Settings
from mlgate.sso.service import SingleSignOn
from mlgate.sso.tokens import Jwks
from tests.fakes import FixedClock, InMemoryArtifactStore, in_memory_uow_factory
from tests.unit.registry_records import a_version, register

ISSUER = "https://idp.example.com/realms/acme"
AUDIENCE = "https://mlgate.example.com"


class Ticks:
    """A monotonic clock for the key set's refetch bound, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """A provider's signing side in memory: its keys (rotated at will) and its tokens."""

    def __init__(self) -> None:
        self.ticks = Ticks()
        self.keys = [ECKey.generate_key("P-256", parameters={"kid": "k1"})]

    def jwks(self) -> dict[str, Any]:
        return KeySet(self.keys).as_dict(private=False)  # type: ignore[arg-type]

    def rotate(self, kid: str) -> None:
        self.keys.insert(0, ECKey.generate_key("P-256", parameters={"kid": kid}))

    def token(self, key: ECKey | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        now = int(FixedClock()().timestamp())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ci-bot", "client_id": "ci-bot",
                "iat": now, "exp": now + 300, "jti": f"t{time.perf_counter_ns()}"}  # fmt: skip
        body.update(claims)
        return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def services(tmp_path: Path, provider: Provider) -> Iterator[Services]:
    env = {
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_OIDC_ISSUER": ISSUER,
        "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_AUDIENCE": AUDIENCE,
        "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins",
    }  # fmt: skip
    made = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    built = made.sso
    assert built is not None  # the settings made one; its key set is read in memory here
    jwks = Jwks(provider.jwks, clock=provider.ticks)
    made.sso = SingleSignOn(rules=built.rules, jwks=jwks, uow=made.uow, clock=made.now,
                            server_secret=made.server_secret)  # fmt: skip
    made.access.create_user(by=None, name="ci-bot", password=None, is_admin=False)
    yield made
    made.close()


def sso(services: Services) -> SingleSignOn:
    assert services.sso is not None
    return services.sso


def refusals(services: Services, action: str) -> list[str]:
    found = services.access.audit_log(AuditQuery(action=action, result="denied"))
    return [str(e.detail.get("error")) for e in found]


# -- machine tokens ------------------------------------------------------------------------------


def test_a_machine_token_acts_as_its_service_user_and_is_checked_once(
    services: Services, provider: Provider
) -> None:
    token = provider.token()
    assert services.access.authenticate(f"Bearer {token}").actor == "user:ci-bot"
    fetches = sso(services).jwks.fetches
    assert sso(services).checked.get(token, int(services.clock().timestamp())) is not None
    assert services.access.authenticate(f"Bearer {token}").actor == "user:ci-bot"
    assert sso(services).jwks.fetches == fetches == 1


def test_an_mlgate_key_never_goes_down_the_token_path(services: Services) -> None:
    _, key = services.access.create_key(by=None, owner_kind="user", owner="ci-bot", name="k")
    assert services.access.authenticate(f"Bearer {key}").key_prefix is not None
    assert sso(services).jwks.fetches == 0


def _none_alg(provider: Provider) -> str:
    signed = provider.token()
    head = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    return f"{head}.{signed.split('.')[1]}."


BAD = {
    "wrong_audience": lambda p: p.token(aud="https://someone-else.example.com"),
    "wrong_issuer": lambda p: p.token(iss="https://evil.example.com"),
    "token_expired": lambda p: p.token(exp=int(FixedClock()().timestamp()) - 3600),
    "bad_signature": lambda p: p.token(key=ECKey.generate_key("P-256", parameters={"kid": "k1"})),
    "bad_algorithm": _none_alg,
}


@pytest.mark.parametrize("code", sorted(BAD))
def test_a_bad_token_is_refused_with_401_and_an_audit_line(
    services: Services, provider: Provider, code: str
) -> None:
    raw = BAD[code](provider)
    with TestClient(create_app(services)) as client:
        answer = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 401, answer.text
    assert refusals(services, "auth.bearer_token") == [code]


def test_the_token_path_tells_why_in_the_error_code(services: Services, provider: Provider) -> None:
    for code, make in BAD.items():
        with pytest.raises(Unauthenticated) as caught:
            services.access.authenticate(f"Bearer {make(provider)}")
        assert caught.value.code == code


def test_a_token_within_the_leeway_passes_and_one_past_it_does_not(
    services: Services, provider: Provider
) -> None:
    now = int(services.clock().timestamp())
    assert services.access.authenticate(f"Bearer {provider.token(exp=now - 30)}").name == "ci-bot"
    with pytest.raises(Unauthenticated, match="expired"):
        services.access.authenticate(f"Bearer {provider.token(exp=now - 90)}")


def test_a_token_of_a_client_that_is_no_user_here_is_refused(
    services: Services, provider: Provider
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        services.access.authenticate(f"Bearer {provider.token(client_id='stranger')}")
    assert caught.value.code == "unknown_client"
    assert "mlgate users create stranger" in str(caught.value)


def test_keys_the_provider_rotates_in_are_fetched_again_but_not_for_every_unknown_kid(
    services: Services, provider: Provider
) -> None:
    assert services.access.authenticate(f"Bearer {provider.token()}").name == "ci-bot"
    provider.ticks.now += 3600  # an hour later the provider rotates its keys
    provider.rotate("k2")
    assert services.access.authenticate(f"Bearer {provider.token()}").name == "ci-bot"
    assert sso(services).jwks.fetches == 2
    stranger = ECKey.generate_key("P-256", parameters={"kid": "made-up"})
    for _ in range(5):  # a stream of unknown kids: at most one fetch per REFETCH_EVERY
        with pytest.raises(Unauthenticated):
            services.access.authenticate(f"Bearer {provider.token(key=stranger)}")
    assert sso(services).jwks.fetches == 2


# -- sign-in: users made just in time, roles from groups --------------------------------------


def claims(name: str, *groups: str, sub: str | None = None) -> dict[str, Any]:
    return {"sub": sub or f"sub-{name}", "preferred_username": name, "groups": list(groups)}


def principal_after_sign_in(services: Services, name: str, *groups: str) -> Any:
    _, token, _ = sso(services).sign_in(claims(name, *groups), address="198.51.100.7")
    return services.access.session_principal(token)


def test_a_first_sign_in_makes_the_user_and_the_audit_log_says_so(services: Services) -> None:
    principal_after_sign_in(services, "alice", "data-science")
    made = services.access.audit_log(AuditQuery(action="access.create_user"))
    assert [(e.actor, e.target, e.detail.get("just_in_time")) for e in made] == [
        ("user:alice", "user:alice", True)
    ]
    principal_after_sign_in(services, "alice", "data-science")  # the second: no new user
    assert len(services.access.audit_log(AuditQuery(action="access.create_user"))) == 1
    signed = services.access.audit_log(AuditQuery(action="auth.sso_login", result="ok"))
    assert len(signed) == 2


def test_an_email_address_preferred_username_signs_in(services: Services) -> None:
    # Entra ID's and many Keycloak realms' preferred_username is the email address
    principal = principal_after_sign_in(services, "alice@example.com", "data-science")
    assert principal.name == "alice@example.com"


def test_admin_comes_from_the_group_and_goes_with_it_at_the_next_sign_in(
    services: Services,
) -> None:
    assert principal_after_sign_in(services, "bob", "mlgate-admins").is_admin
    assert not principal_after_sign_in(services, "bob", "data-science").is_admin


def test_a_group_grant_reaches_members_and_no_one_else(services: Services) -> None:
    register(services.uow, a_version(1))
    services.access.add_grant(by=None, subject_kind="group", subject="data-science",
                              target="churn", role="maintainer", actor="cli:root")  # fmt: skip
    member = principal_after_sign_in(services, "carol", "data-science")
    other = principal_after_sign_in(services, "dave", "marketing")
    assert policy.may(member, "train", Target("churn"))
    assert not policy.may(other, "describe", Target("churn"))
    # carol leaves the group: her next sign-in carries it no more
    assert not policy.may(principal_after_sign_in(services, "carol"), "describe", Target("churn"))


def test_a_password_user_of_the_same_name_is_not_taken_over(services: Services) -> None:
    services.access.create_user(by=None, name="erin", password="a long passphrase 42",
                                is_admin=True)  # fmt: skip
    with pytest.raises(Unauthenticated) as caught:
        principal_after_sign_in(services, "erin")
    assert caught.value.code == "account_taken"
    assert refusals(services, "auth.sso_login") == ["account_taken"]


# -- the login page ------------------------------------------------------------------------------


def test_the_login_page_offers_the_provider_and_password_login_can_be_off(
    tmp_path: Path,
) -> None:
    env = {"MLGATE_HOME": str(tmp_path / "home"), "MLGATE_OIDC_ISSUER": ISSUER,
           "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_PROVIDER_NAME": "Keycloak",
           "MLGATE_PASSWORD_LOGIN": "false"}  # fmt: skip
    services = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                         artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    services.access.create_user(by=None, name="ops", password="a long passphrase 42",
                                is_admin=True)  # fmt: skip
    with TestClient(create_app(services), base_url="http://localhost") as client:
        page = client.get("/ui/login")
        assert "Sign in with Keycloak" in page.text
        assert 'type="password"' not in page.text
        csrf = page.cookies.get("mlgate_login_csrf") or ""
        tried = client.post(
            "/ui/login", data={"name": "ops", "password": "a long passphrase 42", "csrf": csrf},
            headers={"Origin": "http://localhost"}, follow_redirects=False,
        )  # fmt: skip
        assert tried.status_code == 403
        assert "password login is off" in tried.text
        assert "mlgate_session" not in tried.cookies
    services.close()


def test_single_sign_on_settings_that_could_not_work_are_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    # found trying SSO as a new user would: an issuer without a client id (or the reverse) was
    # silently ignored, "not-a-url" offered a button that could only fail, any leeway (years:
    # expired tokens pass) was taken, and password login off without a provider served a
    # login page with no way in
    from typer.testing import CliRunner

    from mlgate.cli.main import app
    from mlgate.errors import ConfigError

    home = {"MLGATE_HOME": str(tmp_path / "home")}
    for env, said in (
        ({"MLGATE_OIDC_ISSUER": ISSUER}, "set MLGATE_OIDC_CLIENT_ID"),
        ({"MLGATE_OIDC_CLIENT_ID": "mlgate"}, "set MLGATE_OIDC_ISSUER"),
        ({"MLGATE_OIDC_ISSUER": "sso.example.com", "MLGATE_OIDC_CLIENT_ID": "m"}, "https://"),
        ({"MLGATE_OIDC_ISSUER": ISSUER, "MLGATE_OIDC_CLIENT_ID": "m",
          "MLGATE_OIDC_LEEWAY": "99999999999999999999"}, "at most 600 seconds"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=said):
            Settings.from_env(home | env)
    settings = Settings.from_env(home | {"MLGATE_PASSWORD_LOGIN": "false"})
    services = bootstrap(settings, unit_of_work=in_memory_uow_factory(),
                         artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    served = CliRunner().invoke(app, ["serve", "--port", "1"], obj=services)
    assert served.exit_code == 1 and "without a way to sign in" in served.output, served.output
    services.close()


def test_refused_sign_ins_from_one_address_are_recorded_up_to_a_budget_then_refused_429(
    services: Services,
) -> None:
    # found reviewing the device flow: the public sign-in routes write an audit line (and call
    # the provider) for anyone who asks; one address could fill the audit log without end
    from mlgate.errors import TooManyRequests
    from mlgate.sso.service import PUBLIC_ASKS_PER_MINUTE

    wrong = Unauthenticated("made up", code="sso_state")
    for _ in range(PUBLIC_ASKS_PER_MINUTE):
        sso(services).refuse_sign_in(wrong, address="203.0.113.9")
    with pytest.raises(TooManyRequests, match="too many sign-in asks from 203.0.113.9"):
        sso(services).refuse_sign_in(wrong, address="203.0.113.9")
    assert len(refusals(services, "auth.sso_login")) == PUBLIC_ASKS_PER_MINUTE
    sso(services).refuse_sign_in(wrong, address="198.51.100.7")  # another address is not held
    assert len(refusals(services, "auth.sso_login")) == PUBLIC_ASKS_PER_MINUTE + 1


def test_a_members_api_key_and_a_machine_token_carry_the_group_grant_as_a_session_does(
    services: Services, provider: Provider
) -> None:
    # found reviewing SCIM's groups: a group grant reached a member's sessions, but not the API
    # keys the member made nor a service user's machine token; one rule now (grants_of)
    from dataclasses import replace

    register(services.uow, a_version(1))
    services.access.add_grant(by=None, subject_kind="group", subject="data-science",
                              target="churn", role="viewer", actor="cli:root")  # fmt: skip
    session = principal_after_sign_in(services, "carol", "data-science")
    _, key = services.access.create_key(by=None, owner_kind="user", owner="carol", name="nb",
                                        scopes=("predict", "read"))  # fmt: skip
    by_key = services.access.authenticate(f"Bearer {key}")
    assert policy.may(session, "describe", Target("churn"))
    assert policy.may(by_key, "describe", Target("churn"))
    assert by_key.grants == session.grants and by_key.groups == frozenset({"data-science"})
    with services.uow() as uow:  # ci-bot joins the group (as SCIM would put it there)
        bot = uow.users.get("ci-bot")
        assert bot is not None
        uow.users.save(replace(bot, groups=("data-science",)))
        uow.commit()
    machine = services.access.authenticate(f"Bearer {provider.token()}")
    assert machine.actor == "user:ci-bot" and policy.may(machine, "describe", Target("churn"))
    # carol leaves the group: her key loses what the group gave, at its next check
    principal_after_sign_in(services, "carol")
    assert not policy.may(services.access.authenticate(f"Bearer {key}"), "describe",
                          Target("churn"))  # fmt: skip
