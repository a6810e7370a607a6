"""Rollouts on a real `mlgate serve --workers 2` sharing Redis: a shadow never changes an
answer nor meters; a canary answers its share of 200 consumers, each always on the same side
whichever worker answers, never a pinned consumer; a candidate whose artifact breaks is rolled
back by the servers' own referee, with the calls it failed counted."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlgate.rollouts.model import side_draw
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import admin_key, quickstarted, running_server
from tests.e2e.test_plans_server import redis_env  # noqa: F401

CONSUMERS = 200
CALLS_EACH = 3
ROWS = demo.churn_frame(n_rows=20, seed=4).drop(columns=[demo.ID_COLUMN, demo.TARGET])
RECORDS = [
    {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
    for r in ROWS.to_dict(orient="records")
]


@dataclass
class Served:
    base: str
    home: Path
    admin: dict[str, str]
    keys: dict[str, dict[str, str]]  # consumer -> headers


def populate(home: Path) -> dict[str, dict[str, str]]:
    """churn v2 (a tree) beside the quickstart's v1 at production; 200 consumers and a pinned
    one, each with a grant and a key, made in this process before the server starts."""
    from mlgate.access import accounts, grants
    from mlgate.access.service import create_key
    from mlgate.plans import service as plans
    from mlgate.registry.aliases import promote
    from mlgate.training.service import TrainSpec, train_model

    services = make_services(home)
    now = services.clock()
    try:
        spec = TrainSpec("churn", "demo", demo.TARGET, "decision_tree", table=demo.TABLE,
                         drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
        promote(services.uow(), "churn", 1, "production", actor="test", now=now)
        plans.create_plan(services.uow(), plans.make_plan("open", now), by=None)
        keys = {}
        for i in range(CONSUMERS + 1):
            name = "pinned" if i == CONSUMERS else f"c{i:03d}"
            accounts.create_consumer(services.uow(), by=None, name=name, description="", now=now)
            grants.add_grant(services.uow(), by=None, subject_kind="consumer", subject=name,
                             target="churn", role="consumer", now=now, actor="test")  # fmt: skip
            plans.subscribe(services.uow(), by=None, consumer=name, plan="open", now=now,
                            pins={"churn": 1} if name == "pinned" else None)  # fmt: skip
            _, token = create_key(services.uow(), services.server_secret, by=None,
                                  owner_kind="consumer", owner=name, name=name,
                                  now=now)  # fmt: skip
            keys[name] = {"Authorization": f"Bearer {token}"}
    finally:
        services.close()
    return keys


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    redis_env: dict[str, str],  # noqa: F811
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("rollouts") / "home"
    quickstarted(home)
    keys = populate(home)
    admin = {"Authorization": f"Bearer {admin_key(home, 'train', 'read', 'predict')}"}
    env = {**redis_env, "MLGATE_ROLLOUT_INTERVAL": "1"}
    with running_server(home, "--workers", "2", **env) as base:
        yield Served(base, home, admin, keys)


def calls(served: Served, plan: list[tuple[str, int]]) -> list[tuple[str, int, str, Any]]:
    """(consumer, row) calls from 16 clients; (consumer, status, version, predictions)."""

    def one(item: tuple[str, int]) -> tuple[str, int, str, Any]:
        consumer, row = item
        answer = http.post(f"{served.base}/v1/models/churn/predict", json={"rows": [RECORDS[row]]},
                            headers=served.keys[consumer], timeout=30)  # fmt: skip
        body = answer.json()
        return (consumer, answer.status_code, answer.headers.get("X-Model-Version", ""),
                body.get("predictions"))  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, plan))


def start(served: Served, **fields: Any) -> dict[str, Any]:
    answer = http.post(f"{served.base}/v1/models/churn/rollouts", headers=served.admin,
                        json=fields, timeout=60)  # fmt: skip
    assert answer.status_code == 201, answer.text
    time.sleep(1.2)  # every worker's one-second cache of running rollouts
    body: dict[str, Any] = answer.json()
    return body


def finish(served: Served, rollout: dict[str, Any]) -> None:
    url = f"{served.base}/v1/models/churn/rollouts/{rollout['id']}"
    if http.get(url, headers=served.admin).json()["state"] == "running":
        http.post(f"{url}/stop", headers=served.admin, json={}).raise_for_status()
    time.sleep(1.2)


def look(served: Served, rollout: dict[str, Any]) -> dict[str, Any]:
    time.sleep(1.2)  # every worker writes its counts each second
    answer = http.get(f"{served.base}/v1/models/churn/rollouts/{rollout['id']}",
                       headers=served.admin)  # fmt: skip
    body: dict[str, Any] = answer.json()
    return body


def test_a_shadow_never_changes_an_answer_nor_meters(served: Served) -> None:
    plan = [(f"c{i:03d}", i % len(RECORDS)) for i in range(60)]
    before = calls(served, plan)
    rollout = start(served, candidate=2, mode="shadow", share=1.0)
    during = calls(served, plan)
    assert [(c, s, v, p) for c, s, v, p in during] == [(c, s, v, p) for c, s, v, p in before]
    assert {v for _, _, v, _ in during} == {"1"}
    seen = look(served, rollout)["look"]
    assert seen["shadow"]["copied_calls"] + seen["shadow"]["skipped_calls"] == len(plan)
    assert seen["sides"]["candidate"]["calls"] == seen["shadow"]["copied_calls"] > 0
    finish(served, rollout)
    month = time.strftime("%Y-%m", time.gmtime())
    usage = http.get(f"{served.base}/v1/usage", params={"model": "churn", "month": month},
                      headers=served.admin, timeout=30)  # fmt: skip
    assert usage.status_code == 200, usage.text
    ledger = usage.json()
    assert {r["version"] for r in ledger} == {1}  # nothing metered to the candidate
    assert sum(r["rows"] for r in ledger if r["status"] == 200) == 2 * len(plan)


def test_a_canary_answers_its_share_each_consumer_on_one_side(served: Served) -> None:
    rollout = start(served, candidate=2, mode="canary", share=0.3)
    plan = [
        (f"c{i:03d}", (i * 7 + k) % len(RECORDS))
        for i in range(CONSUMERS)
        for k in range(CALLS_EACH)
    ]
    plan += [("pinned", k % len(RECORDS)) for k in range(40)]
    answered = calls(served, plan)  # 640 calls over both workers
    assert {s for _, s, _, _ in answered} == {200}
    sides: dict[str, set[str]] = {}
    for consumer, _, version, _ in answered:
        sides.setdefault(consumer, set()).add(version)
    assert all(len(v) == 1 for v in sides.values()), "a consumer saw both versions"
    assert sides.pop("pinned") == {"1"}
    on_candidate = {c for c, v in sides.items() if v == {"2"}}
    expected = {c for c in sides if side_draw(rollout["id"], f"consumer:{c}") < 0.3}
    assert on_candidate == expected
    sd = math.sqrt(CONSUMERS * 0.3 * 0.7)
    assert abs(len(on_candidate) - CONSUMERS * 0.3) <= 3.29 * sd  # a binomial 99.9% interval
    counts = look(served, rollout)["look"]["sides"]
    assert counts["candidate"]["calls"] == CALLS_EACH * len(on_candidate)
    assert counts["incumbent"]["calls"] == CALLS_EACH * (CONSUMERS - len(on_candidate))
    finish(served, rollout)


def test_a_candidate_that_breaks_is_rolled_back_by_the_referee(served: Served) -> None:
    from mlgate.registry.service import resolve_version

    services = make_services(served.home)
    try:  # v3: the quickstart's settings again, its artifact broken once the rollout runs
        from mlgate.training.service import TrainSpec, train_model

        spec = TrainSpec("churn", "demo", demo.TARGET, "logistic_regression", table=demo.TABLE,
                         drop=(demo.ID_COLUMN,), report=False, seed=3)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
        version = resolve_version(services.uow(), "churn", 3)
    finally:
        services.close()
    rollout = start(served, candidate=3, mode="canary", share=0.5, max_error_rate=0.05)
    artifact = served.home / "artifacts" / version.artifact.key
    assert artifact.is_file()
    artifact.write_bytes(b"not the model any more")  # the worker that has not loaded it fails
    plan = [(f"c{i:03d}", i % len(RECORDS)) for i in range(CONSUMERS)] * 2
    answered = calls(served, plan)
    failed = sum(1 for _, status, _, _ in answered if status >= 500)
    deadline = time.monotonic() + 20
    state = "running"
    while time.monotonic() < deadline and state == "running":
        time.sleep(0.5)
        got = http.get(f"{served.base}/v1/models/churn/rollouts/{rollout['id']}",
                        headers=served.admin).json()  # fmt: skip
        state = got["state"]
    assert state == "rolled_back", got
    assert "guard rail" in got["reason"]
    assert failed > 0 and got["last_look"]["sides"]["candidate"]["failed"] <= failed
    time.sleep(1.2)
    after = calls(served, [(f"c{i:03d}", 0) for i in range(40)])
    assert {(s, v) for _, s, v, _ in after} == {(200, "1")}  # everyone back on v1
