"""A plan over HTTP: what a client sends (PlanIn, PlanPatch) comes back as PlanOut says it, every
setting of the Plan record included. The three schemas are made from the record and LIMITS
(api/routes/plans.py), so this is where a setting that does not travel would show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mlgate.access.accounts import create_user
from mlgate.api.app import create_app
from mlgate.bootstrap import bootstrap
from mlgate.plans.model import LIMIT_FIELDS
from mlgate.settings import Settings
from tests.fakes import FixedClock
from tests.secrets_watch import remember

pytestmark = pytest.mark.in_process  # the whole app, in this process: part of the fast tier

BOSS = ("boss", "admin pass phrase for plan tests")
GOLD = {
    "name": "gold",
    "models": ["churn", "churn@production"],
    "overage": True,
    "explain": True,
    "price_per_1k_rows": "0.50",
    "price_per_1k_overage_rows": "0.75",
    "price_per_1k_explained_rows": "0.125",
    "description": "For the big ones",
    "thresholds": [50, 90],
    "max_batch_bytes": 1_000_000,
    "per_minute": 600,
    "rows_per_month": 10_000_000,
}


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    clock = FixedClock()
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}), clock=clock)
    remember(BOSS[1])
    create_user(services.uow(), by=None, name=BOSS[0], password=BOSS[1], is_admin=True,
                now=clock())  # fmt: skip
    with TestClient(create_app(services)) as client:
        login = client.post("/v1/auth/login", json={"name": BOSS[0], "password": BOSS[1]})
        yield client, {"Authorization": f"Bearer {login.json()['token']}"}
    services.close()


def test_a_plan_answers_every_setting_it_was_given(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, boss = admin
    made = client.post("/v1/plans", json=GOLD, headers=boss)
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer.pop("created_at")
    assert answer == {**dict.fromkeys(LIMIT_FIELDS), **GOLD}
    assert client.get("/v1/plans/gold", headers=boss).json() == made.json()


def test_a_bare_plan_answers_the_records_defaults(admin: tuple[TestClient, dict[str, str]]) -> None:
    client, boss = admin
    answer = client.post("/v1/plans", json={"name": "free"}, headers=boss).json()
    assert {k: v for k, v in answer.items() if k != "created_at"} == {
        **dict.fromkeys(LIMIT_FIELDS),
        "name": "free",
        "models": [],
        "overage": False,
        "explain": False,
        "price_per_1k_rows": None,
        "price_per_1k_overage_rows": None,
        "price_per_1k_explained_rows": None,
        "description": "",
        "thresholds": [80, 100],
        "max_batch_bytes": None,
    }


def test_a_patch_changes_what_it_names_and_keeps_the_rest(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, boss = admin
    before = client.post("/v1/plans", json=GOLD, headers=boss).json()
    changes = {"explain": False, "price_per_1k_rows": "1.5", "thresholds": [100], "per_minute": 60}
    after = client.patch("/v1/plans/gold", json=changes, headers=boss)
    assert after.status_code == 200, after.text
    assert after.json() == {**before, **changes}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "thresholds": [0]}, "thresholds"),
        ({"name": "x", "price_per_1k_rows": "-1"}, "price_per_1k_rows"),
        ({"name": "x", "models": ["m"] * 101}, "models"),
        ({"name": "x", "max_batch_bytes": 0}, "max_batch_bytes"),
        ({"name": "x", "description": "d" * 1001}, "description"),
        ({"name": "x", "colour": "gold"}, "colour"),
    ],
)
def test_a_new_plan_out_of_bounds_is_refused_naming_the_field(
    admin: tuple[TestClient, dict[str, str]], body: dict[str, object], field: str
) -> None:
    client, boss = admin
    refused = client.post("/v1/plans", json=body, headers=boss)
    assert refused.status_code == 422 and field in refused.text, refused.text
    patched = client.patch("/v1/plans/x", json={k: v for k, v in body.items() if k != "name"},
                           headers=boss)  # fmt: skip
    assert patched.status_code == 422 and field in patched.text, patched.text
