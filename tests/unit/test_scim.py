"""SCIM 2.0 provisioning in process (issue 36): /scim/v2 through create_app over the in-memory
store. Two real replicas and scim2-tester against a running server are in
tests/e2e/test_scim_server.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mlgate.access import policy
from mlgate.access.model import AuditQuery, Target
from mlgate.api.app import create_app
from mlgate.bootstrap import Services, bootstrap
from mlgate.cli import context as cli_context
from mlgate.cli.main import app as cli
from mlgate.errors import ConfigError, InvalidInput
from mlgate.settings import Settings
from tests.fakes import FixedClock, InMemoryArtifactStore, in_memory_uow_factory
from tests.unit.registry_records import a_version, register

pytestmark = pytest.mark.fast

TOKEN = "scim-token-" + "x" * 40
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA = "application/scim+json"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    env = {"MLGATE_HOME": str(tmp_path / "home"), "MLGATE_SCIM_TOKEN": TOKEN}
    made = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    yield made
    made.close()


@pytest.fixture
def scim(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://mlgate.test") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def make_user(scim: TestClient, user_name: str, **more: Any) -> dict[str, Any]:
    answer = scim.post("/scim/v2/Users", json={"schemas": [USER], "userName": user_name, **more})
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"].startswith("application/scim+json")
    body: dict[str, Any] = answer.json()
    return body


def patch(scim: TestClient, path: str, *operations: dict[str, Any]) -> Any:
    return scim.patch(path, json={"schemas": [PATCH], "Operations": list(operations)})


def test_without_the_token_nothing_is_served_and_the_refusal_is_audited(
    services: Services, scim: TestClient
) -> None:
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = scim.get("/scim/v2/Users", headers=header or {"Authorization": ""})
        assert answer.status_code == 401
        assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    refused = services.access.audit_log(AuditQuery(action="scim.authenticate"))
    assert len(refused) == 3 and {e.result for e in refused} == {"denied"}
    # an admin's mlgate key is no SCIM token either
    services.access.create_user(by=None, name="root", password=None, is_admin=True)
    _, key = services.access.create_key(by=None, owner_kind="user", owner="root", name="k")
    assert scim.get("/scim/v2/Users", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_scim_is_off_without_the_setting(tmp_path: Path) -> None:
    env = {"MLGATE_HOME": str(tmp_path / "home")}
    made = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    with TestClient(create_app(made)) as client:
        answer = client.get("/scim/v2/Users", headers={"Authorization": "Bearer anything"})
    made.close()
    assert answer.status_code == 404 and "MLGATE_SCIM_TOKEN" in answer.json()["detail"]
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_env({"MLGATE_HOME": str(tmp_path), "MLGATE_SCIM_TOKEN": "short"})


def test_a_created_user_is_an_mlgate_user_and_reads_back_what_was_sent(
    services: Services, scim: TestClient
) -> None:
    made = make_user(scim, "bjensen", name={"givenName": "Barbara"}, externalId="okta-1")
    assert made["meta"]["location"] == f"http://mlgate.test/scim/v2/Users/{made['id']}"
    got = scim.get(f"/scim/v2/Users/{made['id']}").json()
    assert got["name"] == {"givenName": "Barbara"} and got["externalId"] == "okta-1"
    with services.uow() as uow:
        user = uow.users.get("bjensen")
    assert user is not None and user.password_hash is None and user.disabled_at is None
    again = scim.post("/scim/v2/Users", json={"schemas": [USER], "userName": "BJensen"})
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"
    created = services.access.audit_log(AuditQuery(action="scim.create_user"))
    assert [(e.actor, e.target) for e in created] == [("scim", "user:bjensen")]


def test_the_filter_providers_send_finds_one_user(scim: TestClient) -> None:
    for name in ("alice", "bob", "carol"):
        make_user(scim, name)
    found = scim.get("/scim/v2/Users", params={"filter": 'userName eq "Bob"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["userName"] == "bob"
    none = scim.get("/scim/v2/Users", params={"filter": 'userName eq "zed"'}).json()
    assert none["totalResults"] == 0 and not none.get("Resources")
    page = scim.get("/scim/v2/Users", params={"startIndex": "2", "count": "1"}).json()
    assert (page["totalResults"], page["startIndex"], len(page["Resources"])) == (3, 2, 1)
    bad = scim.get("/scim/v2/Users", params={"filter": 'userName eq "unclosed'})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"
    assert scim.get("/scim/v2/Users", params={"count": "lots"}).status_code == 400
    assert scim.get("/scim/v2/Users", params={"count": "99999999"}).status_code == 200
    # a huge startIndex was told it "is a whole number" (it is one: too long is the reason)
    huge = scim.get("/scim/v2/Users", params={"startIndex": "9" * 30})
    assert huge.status_code == 400 and "at most 12 digits" in huge.json()["detail"]


def test_bad_payloads_are_refused_and_nothing_is_written(
    services: Services, scim: TestClient
) -> None:
    for body in ({"schemas": [USER]}, {"schemas": [USER], "userName": "a b"}, [1, 2]):
        answer = scim.post("/scim/v2/Users", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"] == "400"
    raw = scim.post("/scim/v2/Users", content=b"{nope", headers={"content-type": MEDIA})
    assert raw.status_code == 400 and raw.json()["scimType"] == "invalidSyntax"
    with services.uow() as uow:
        assert uow.users.all() == [] and uow.scim.all("User") == []
    assert scim.get("/scim/v2/Users/nope").status_code == 404
    assert scim.get("/scim/v2/Widgets").status_code == 404


def test_deactivating_ends_sessions_and_keys_at_once_and_is_audited(
    services: Services, scim: TestClient
) -> None:
    made = make_user(scim, "dana")
    _, key = services.access.create_key(by=None, owner_kind="user", owner="dana", name="k")
    assert services.access.authenticate(f"Bearer {key}").name == "dana"
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    answer = patch(
        scim, f"/scim/v2/Users/{made['id']}", {"op": "replace", "value": {"active": False}}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    with services.uow() as uow:
        user = uow.users.get("dana")
    assert user is not None and user.disabled_at is not None
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    events = services.access.audit_log(AuditQuery(action="scim.patch_user"))
    assert events[0].detail.get("deactivated") is True
    # back on: the key works again (it was never revoked), the sessions stay ended
    patch(scim, f"/scim/v2/Users/{made['id']}", {"op": "replace", "path": "active", "value": True})
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_an_email_address_user_name_is_provisioned_signed_in_and_deactivated(
    services: Services, scim: TestClient
) -> None:
    # Okta's and Entra ID's SCIM apps send the email address (or UPN) as userName by default
    made = make_user(scim, "alice@example.com")
    _, key = services.access.create_key(
        by=None, owner_kind="user", owner="alice@example.com", name="k"
    )
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    patch(scim, f"/scim/v2/Users/{made['id']}", {"op": "replace", "value": {"active": False}})
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    answer = patch(
        scim, f"/scim/v2/Users/{made['id']}",
        {"op": "replace", "path": "userName", "value": "alice.smith@example.com"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    with services.uow() as uow:
        assert [u.name for u in uow.users.all()] == ["alice.smith@example.com"]
    # the same name is accepted by `mlgate users create` (and refused with a space)
    services.access.create_user(by=None, name="bob@example.com", password=None, is_admin=False)
    # a sub-addressed one too, and its routes read it back (a '+' stands as-is in a path)
    plus = make_user(scim, "carol+ml@example.com")
    assert scim.get(f"/scim/v2/Users/{plus['id']}").json()["userName"] == "carol+ml@example.com"
    _, hers = services.access.create_key(by=None, owner_kind="user",
                                         owner="carol+ml@example.com", name="k")  # fmt: skip
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {hers}"}).status_code == 200
    with pytest.raises(InvalidInput):
        services.access.create_user(by=None, name="bob @x", password=None, is_admin=False)


def test_a_deactivated_users_keys_read_owner_disabled_in_lists_and_checks(
    services: Services, scim: TestClient
) -> None:
    # found trying issue 36: the dashboard, `mlgate keys list` and `keys check` said "active"
    # and "live" of keys that were refused with 401 account_disabled
    made = make_user(scim, "frank@example.com")
    _, token = services.access.create_key(
        by=None, owner_kind="user", owner="frank@example.com", name="k"
    )
    patch(scim, f"/scim/v2/Users/{made['id']}", {"op": "replace", "value": {"active": False}})
    now = services.clock()
    [key] = services.access.keys(by=None)
    assert key.state(now) == "owner disabled" and not key.usable(now)
    [found] = services.access.check_keys(f"KEY={token}\n", offline=False)
    assert found.status == "live (owner disabled)"
    patch(scim, f"/scim/v2/Users/{made['id']}", {"op": "replace", "value": {"active": True}})
    assert [k.state(now) for k in services.access.keys(by=None)] == ["active"]
    assert services.access.check_keys(token, offline=False)[0].status == "live"


def test_the_users_list_shows_the_groups_scim_gave_and_who_signs_in_through_the_provider(
    services: Services, scim: TestClient
) -> None:
    # found trying issue 36: `mlgate users list` and GET /v1/users showed no groups, so a SCIM
    # membership change was visible nowhere but in /scim/v2
    made = make_user(scim, "gina@example.com")
    scim.post("/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "data-science",
                                       "members": [{"value": made["id"]}]})  # fmt: skip
    services.access.create_user(by=None, name="root", password="a long passphrase 42",
                                is_admin=True)  # fmt: skip
    _, key = services.access.create_key(by=None, owner_kind="user", owner="root", name="k",
                                        scopes=("admin",))  # fmt: skip
    users = scim.get("/v1/users", headers={"Authorization": f"Bearer {key}"}).json()
    gina = next(u for u in users if u["name"] == "gina@example.com")
    assert gina["groups"] == ["data-science"] and gina["single_sign_on"] is False
    assert not gina["can_log_in"]
    # the CLI's console reads COLUMNS once, when it is made (maybe by an earlier test)
    with mock.patch.object(cli_context.console, "_width", 250):
        listed = CliRunner().invoke(cli, ["users", "list"], obj=services)
    assert listed.exit_code == 0, listed.output
    assert "gina@example.com" in listed.output and "data-science" in listed.output


def test_deleting_a_user_disables_it_and_revokes_its_keys(
    services: Services, scim: TestClient
) -> None:
    made = make_user(scim, "erin")
    _, key = services.access.create_key(by=None, owner_kind="user", owner="erin", name="k")
    assert scim.delete(f"/scim/v2/Users/{made['id']}").status_code == 204
    assert scim.get(f"/scim/v2/Users/{made['id']}").status_code == 404
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    event = services.access.audit_log(AuditQuery(action="scim.delete_user"))[0]
    assert event.detail["deactivated"] is True and len(event.detail["keys_revoked"]) == 1
    # the provider may assign the person again: the same user, enabled, keys still revoked
    make_user(scim, "erin")
    with services.uow() as uow:
        user = uow.users.get("erin")
    assert user is not None and user.disabled_at is None
    assert scim.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_a_local_password_account_is_not_taken_over(services: Services, scim: TestClient) -> None:
    services.access.create_user(by=None, name="root", password="a long passphrase 42",
                                is_admin=True)  # fmt: skip
    answer = scim.post("/scim/v2/Users", json={"schemas": [USER], "userName": "root"})
    assert answer.status_code == 409 and "password" in answer.json()["detail"]


def test_group_membership_is_what_group_grants_reach(services: Services, scim: TestClient) -> None:
    register(services.uow, a_version(1))
    services.access.add_grant(by=None, subject_kind="group", subject="data-science",
                              target="churn", role="maintainer", actor="cli:root")  # fmt: skip
    alice, bob = make_user(scim, "alice"), make_user(scim, "bob")
    group = scim.post("/scim/v2/Groups", json={
        "schemas": [GROUP], "displayName": "data-science", "members": [{"value": alice["id"]}],
    }).json()  # fmt: skip

    def may(name: str) -> bool:
        return policy.may(_principal(services, name), "train", Target("churn"))

    assert may("alice") and not may("bob")
    got = scim.get(f"/scim/v2/Users/{alice['id']}").json()
    assert [g["display"] for g in got["groups"]] == ["data-science"]
    path = f"/scim/v2/Groups/{group['id']}"
    patch(scim, path, {"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    assert may("bob")
    patch(scim, path, {"op": "remove", "path": f'members[value eq "{alice["id"]}"]'})
    assert not may("alice") and may("bob")
    # renamed: the group's grants follow the new name
    patch(scim, path, {"op": "replace", "path": "displayName", "value": "ds"})
    assert may("bob")
    assert [g.subject for g in services.access.grants(by=None)] == ["ds"]
    assert scim.delete(path).status_code == 204
    assert not may("bob")
    events = services.access.audit_log(AuditQuery(action="scim.patch_group"))
    assert [e.target for e in events] == ["group:ds", "group:data-science", "group:data-science"]


def test_a_deleted_user_enabled_again_by_hand_gets_back_no_group_grants(
    services: Services, scim: TestClient
) -> None:
    # found trying issue 36: a SCIM DELETE left the user's groups on it, so `mlgate users
    # enable` gave back the group grants of groups the provider no longer listed it in
    register(services.uow, a_version(1))
    services.access.add_grant(by=None, subject_kind="group", subject="analysts",
                              target="churn", role="maintainer", actor="cli:root")  # fmt: skip
    hank = make_user(scim, "hank@example.com")
    scim.post("/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "analysts",
                                       "members": [{"value": hank["id"]}]})  # fmt: skip
    assert policy.may(_principal(services, "hank@example.com"), "train", Target("churn"))
    assert scim.delete(f"/scim/v2/Users/{hank['id']}").status_code == 204
    services.access.set_user_disabled("hank@example.com", disabled=False, by=None)
    with services.uow() as uow:
        user = uow.users.get("hank@example.com")
    assert user is not None and user.groups == ()
    assert not policy.may(_principal(services, "hank@example.com"), "train", Target("churn"))


def _principal(services: Services, name: str) -> Any:
    from mlgate.access.accounts import open_session

    with services.uow() as uow:
        _, token = open_session(uow, services.server_secret, name, now=services.clock())
        uow.commit()
    return services.access.session_principal(token)


def test_a_renamed_user_keeps_its_keys_and_grants(services: Services, scim: TestClient) -> None:
    register(services.uow, a_version(1))
    made = make_user(scim, "frank")
    services.access.add_grant(by=None, subject_kind="user", subject="frank", target="churn",
                              role="viewer", actor="cli:root")  # fmt: skip
    _, key = services.access.create_key(by=None, owner_kind="user", owner="frank", name="k")
    body = {"schemas": [USER], "userName": "franklin", "active": True}
    answer = scim.put(f"/scim/v2/Users/{made['id']}", json=body)
    assert answer.status_code == 200 and answer.json()["userName"] == "franklin"
    principal = services.access.authenticate(f"Bearer {key}")
    assert principal.name == "franklin" and principal.grants[0].subject == "franklin"
    other = make_user(scim, "gina")
    taken = scim.put(f"/scim/v2/Users/{other['id']}", json={**body, "userName": "franklin"})
    assert taken.status_code == 409


def test_discovery_describes_users_and_groups(scim: TestClient) -> None:
    config = scim.get("/scim/v2/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    types = scim.get("/scim/v2/ResourceTypes").json()["Resources"]
    assert {t["endpoint"] for t in types} == {"/Users", "/Groups"}
    ids = {s["id"] for s in scim.get("/scim/v2/Schemas").json()["Resources"]}
    assert {USER, GROUP} <= ids
    assert scim.get(f"/scim/v2/Schemas/{USER}").json()["id"] == USER


def test_admin_groups_make_admins_as_sign_in_does(tmp_path: Path) -> None:
    env = {"MLGATE_HOME": str(tmp_path / "home"), "MLGATE_SCIM_TOKEN": TOKEN,
           "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins"}  # fmt: skip
    made = bootstrap(Settings.from_env(env), unit_of_work=in_memory_uow_factory(),
                     artifacts=InMemoryArtifactStore(), clock=FixedClock())  # fmt: skip
    with TestClient(create_app(made), headers={"Authorization": f"Bearer {TOKEN}"}) as scim:
        hana = make_user(scim, "hana")
        members = [{"value": hana["id"]}]
        body = {"schemas": [GROUP], "displayName": "mlgate-admins", "members": members}
        group = scim.post("/scim/v2/Groups", json=body)
        assert group.status_code == 201
        assert _principal(made, "hana").is_admin
        out = {"op": "remove", "path": "members"}
        assert patch(scim, f"/scim/v2/Groups/{group.json()['id']}", out).status_code == 200
        assert not _principal(made, "hana").is_admin
    made.close()


def test_search_and_the_name_filter_in_any_letter_case(scim: TestClient) -> None:
    make_user(scim, "Ivan")
    make_user(scim, "judy", title="Engineer")
    for text in (
        'userName eq "ivan"',
        'USERNAME eq "IVAN"',
        'username eq "Ivan" or userName eq "nobody"',
    ):
        found = scim.get("/scim/v2/Users", params={"filter": text}).json()
        assert [r["userName"] for r in found.get("Resources", [])] == ["Ivan"], text
    searched = scim.post("/scim/v2/Users/.search", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'title eq "engineer"', "attributes": ["userName"],
    }).json()  # fmt: skip
    assert searched["totalResults"] == 1
    assert set(searched["Resources"][0]) == {"id", "schemas", "userName"}


def test_a_password_the_provider_sends_is_neither_kept_nor_shown(
    services: Services, scim: TestClient
) -> None:
    made = make_user(scim, "kim", password="the provider's secret 1")
    assert "password" not in made
    with services.uow() as uow:
        record = uow.scim.named("User", "kim")
        user = uow.users.get("kim")
    assert record is not None and "password" not in record.body
    assert user is not None and user.password_hash is None
