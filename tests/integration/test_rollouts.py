"""Canary rollouts through the whole app in process, on SQLite: a share of the callers is
answered by the candidate, each caller always on the same side, never a pinned consumer nor a
call naming a version; every call of the rollout is logged; labels fed back decide it (the
alias moves, audited, with the numbers as its reason); a failing candidate is rolled back by
its guard rail; bad requests are refused and change nothing."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.model import AuditQuery
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.cli.main import app as cli
from mlgate.monitoring import webhook
from mlgate.plans.service import create_plan, make_plan, subscribe, usage_csv
from mlgate.registry.aliases import aliases_of, promote
from mlgate.registry.service import resolve_version
from mlgate.rollouts import service as rollouts
from mlgate.rollouts.model import side_draw
from mlgate.schema import rows_to_table
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, admin_token, make_services
from tests.e2e.test_monitoring import Receiver

SHARE = 0.3
FRAME = demo.churn_frame(600, seed=3)
FEATURES = FRAME.drop(columns=[demo.ID_COLUMN, demo.TARGET])
RECORDS = [{k: (None if v != v else v) for k, v in r.items()}
           for r in FEATURES.to_dict(orient="records")]  # fmt: skip


@dataclass
class World:
    services: Services
    client: TestClient
    admin: dict[str, str]
    tokens: dict[str, str]  # consumer -> token


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    # the webhook receiver of test_start_and_end_are_signed_webhook_events runs here
    services = make_services(tmp_path / "home", MLGATE_OUTBOUND_ALLOW="127.0.0.1")
    demo.write_sqlite(tmp_path / "churn.db", demo.churn_frame(800), table="churn")
    add_source_to(services, "churn", f"sqlite:///{tmp_path / 'churn.db'}", cwd=tmp_path)
    for algorithm in ("logistic_regression", "decision_tree"):
        spec = TrainSpec("churn", "churn", demo.TARGET, algorithm, table="churn",
                         drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
    promote(services.uow(), "churn", 1, "production", actor="test", now=services.clock())
    now = services.clock()
    create_plan(services.uow(), make_plan("basic", now), by=None)
    tokens = {}
    for i in range(30):
        name = f"co{i}"
        create_consumer(services.uow(), by=None, name=name, description="", now=now)
        subscribe(services.uow(), by=None, consumer=name, plan="basic", now=now,
                  pins={"churn": 1} if name == "co0" else None)  # fmt: skip
        add_grant(services.uow(), by=None, subject_kind="consumer", subject=name,
                  target="churn", role="consumer", now=now, actor="test")  # fmt: skip
        _, tokens[name] = create_key(services.uow(), services.server_secret, by=None,
                                     owner_kind="consumer", owner=name, name=name,
                                     now=now)  # fmt: skip
    admin = {"Authorization": f"Bearer {admin_token(services, 'predict', 'read', 'train')}"}
    services.recorder.rollout_per_second = 10**9  # every call logged, however fast they come
    with TestClient(create_app(services)) as client:
        yield World(services, client, admin, tokens)
    services.close()


def start(world: World, **fields: Any) -> dict[str, Any]:
    answer = world.client.post("/v1/models/churn/rollouts", headers=world.admin,
                               json={"candidate": 2, "share": SHARE, **fields})  # fmt: skip
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def call(world: World, consumer: str, rows: list[dict[str, Any]], path: str = "predict") -> Any:
    key = {"Authorization": f"Bearer {world.tokens[consumer]}"}
    return world.client.post(f"/v1/models/churn/{path}", json={"rows": rows}, headers=key)


def test_a_canary_answers_its_share_of_callers_each_on_one_side(world: World) -> None:
    rollout = start(world)
    assert rollout["incumbent"] == 1 and rollout["state"] == "running"
    seen: dict[str, set[str]] = {}
    for _ in range(3):
        for consumer in world.tokens:
            answer = call(world, consumer, RECORDS[:2])
            assert answer.status_code == 200, answer.text
            seen.setdefault(consumer, set()).add(answer.headers["X-Model-Version"])
    assert all(len(versions) == 1 for versions in seen.values())  # sticky
    on_candidate = {c for c, v in seen.items() if v == {"2"}}
    expected = {c for c in world.tokens if c != "co0"
                and side_draw(rollout["id"], f"consumer:{c}") < SHARE}  # fmt: skip
    assert on_candidate == expected and expected
    assert seen["co0"] == {"1"}  # pinned by its plan: never in a canary
    somebody = sorted(expected)[0]
    named = call(world, somebody, RECORDS[:1], path="versions/1/predict")
    assert named.headers["X-Model-Version"] == "1"  # a call naming a version is its own

    world.services.recorder.flush()
    world.services.tally.flush()
    with world.services.uow() as uow:  # every call of the rollout logged, sample rate 0
        logged = uow.monitoring.count_logged("churn")
    assert logged == 3 * len(world.tokens) - 3  # the pinned consumer's calls are not the rollout's
    shown = world.client.get(f"/v1/models/churn/rollouts/{rollout['id']}", headers=world.admin)
    sides = shown.json()["look"]["sides"]
    assert sides["candidate"]["calls"] == 3 * len(expected)
    assert sides["incumbent"]["calls"] == 3 * (len(world.tokens) - 1 - len(expected))
    assert sides["candidate"]["failed"] == 0


def test_labels_that_favour_the_candidate_promote_it_with_its_numbers(world: World) -> None:
    rollout = start(world, auto=True, alpha=0.05)
    first, second = resolve_version(world.services.uow(), "churn", 1).classes or ()
    labels: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(4):
        rows = RECORDS[round_ * 100 : (round_ + 1) * 100]
        for consumer in list(world.tokens)[1:]:
            answer = call(world, consumer, rows)
            body = answer.json()
            version = answer.headers["X-Model-Version"]
            # the truth agrees with the candidate always, with the incumbent one row in two
            truth = [p if version == "2" or i % 2 else (second if p == first else first)
                     for i, p in enumerate(body["predictions"])]  # fmt: skip
            labels.setdefault(consumer, []).extend(
                {"request_id": answer.headers["X-Request-ID"], "row": i, "label": t}
                for i, t in enumerate(truth)
            )
    world.services.recorder.flush()
    for consumer, items in labels.items():
        fed = world.client.post(
            "/v1/models/churn/feedback",
            json={"feedback": items},
            headers={"Authorization": f"Bearer {world.tokens[consumer]}"},
        )
        assert fed.status_code == 200 and fed.json()["stored"] == len(items), fed.text
    decided = world.client.post(f"/v1/models/churn/rollouts/{rollout['id']}/decide",
                                headers=world.admin)  # fmt: skip
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["state"] == "promoted", body
    assert "better" in body["reason"] and "always-valid interval" in body["reason"]
    assert body["last_look"]["test"]["low"] > 0
    assert aliases_of(world.services.uow(), "churn")["production"] == 2
    with world.services.uow() as uow:
        history = uow.models.alias_history("churn", "production")
        events = uow.audit.query(AuditQuery(actor=f"rollout:{rollout['id']}"))
    assert history[-1].actor == f"rollout:{rollout['id']}" and "better" in history[-1].reason
    assert {e.action for e in events} >= {"rollouts.promoted", "models.promote"}
    # the rollout has ended: every caller now gets the alias's version, the candidate
    assert {call(world, c, RECORDS[:1]).headers["X-Model-Version"] for c in
            list(world.tokens)[1:]} == {"2"}  # fmt: skip


def break_candidate(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 2's scorer raises from now on: a bug in the candidate, not in the caller."""
    candidate = world.services.predictors.get(resolve_version(world.services.uow(), "churn", 2))

    def broken(rows: Any) -> Any:
        raise RuntimeError("the candidate's scorer broke")

    monkeypatch.setattr(candidate, "score", broken)


def test_a_failing_candidate_is_rolled_back_and_its_failures_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollout = start(world)
    break_candidate(world, monkeypatch)
    inside = [c for c in world.tokens if c != "co0"
              and side_draw(rollout["id"], f"consumer:{c}") < SHARE]  # fmt: skip
    failed = 0
    while failed < 25:
        for consumer in inside:
            assert call(world, consumer, RECORDS[:1]).status_code == 500
            failed += 1
    world.services.tally.flush()
    decided = world.client.post(f"/v1/models/churn/rollouts/{rollout['id']}/decide",
                                headers=world.admin).json()  # fmt: skip
    assert decided["state"] == "rolled_back"
    assert f"failed {failed} of {failed} calls" in decided["reason"]
    assert aliases_of(world.services.uow(), "churn")["production"] == 1
    answer = call(world, inside[0], RECORDS[:1])
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"


def test_a_rollout_past_its_deadline_expires_undecided(world: World) -> None:
    rollout = rollouts.get_rollout(world.services.uow(), "churn", start(world, days=1)["id"])
    later = rollout.started_at + timedelta(days=1, seconds=1)
    ended = rollouts.decide(world.services.uow(), rollout, now=later)
    assert ended.state == "expired" and "undecided" in (ended.reason or "")
    assert aliases_of(world.services.uow(), "churn")["production"] == 1


def test_bad_requests_are_refused_and_change_nothing(world: World) -> None:
    post = world.client.post
    url = "/v1/models/churn/rollouts"
    assert post(url, headers=world.admin, json={"candidate": 9}).status_code == 404
    assert post(url, headers=world.admin, json={"candidate": 1}).status_code == 422  # same
    assert post(url, headers=world.admin, json={"candidate": 2, "share": 0.9}).status_code == 422
    no_alias = post(url, headers=world.admin, json={"candidate": 2, "alias": "staging"})
    assert no_alias.status_code == 409 and "promote one first" in no_alias.json()["detail"]
    assert post("/v1/models/ghost/rollouts", headers=world.admin,
                json={"candidate": 2}).status_code == 404  # fmt: skip
    assert world.client.get(url, headers=world.admin).json() == []
    first = start(world)
    again = post(url, headers=world.admin, json={"candidate": 2})
    assert again.status_code == 409 and "still running" in again.json()["detail"]
    stop = f"{url}/{first['id']}/stop"
    stopped = post(stop, headers=world.admin, json={"reason": "enough"})
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    assert post(stop, headers=world.admin, json={}).status_code == 409
    assert world.client.get(f"{url}/99", headers=world.admin).status_code == 404
    consumer = {"Authorization": f"Bearer {world.tokens['co1']}"}
    assert post(url, headers=consumer, json={"candidate": 2}).status_code == 403
    assert [r["state"] for r in world.client.get(url, headers=world.admin).json()] == ["stopped"]


def test_the_cli_starts_shows_decides_and_stops_a_rollout(world: World) -> None:
    def mlgate(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, list(args), obj=world.services)
        assert result.exit_code == code, result.output
        return result.output

    started = mlgate("rollout", "start", "churn", "--candidate", "2", "--share", "0.2")
    assert "rollout 1: churn v2 answers 20% of the callers of production (v1)" in started
    assert "v2" in mlgate("rollout", "list", "churn") and "running" in mlgate("rollout", "list",
                                                                              "churn")  # fmt: skip
    shown = mlgate("rollout", "show", "churn", "1")
    assert "running" in shown and "not enough to decide yet" in shown
    assert '"state": "running"' in mlgate("rollout", "show", "churn", "1", "--json")
    assert "running" in mlgate("rollout", "decide", "churn", "1")
    refused = mlgate("rollout", "start", "churn", "--candidate", "2", code=1)
    assert "still running" in refused
    assert "stopped" in mlgate("rollout", "stop", "churn", "1", "--reason", "seen enough")
    with world.services.uow() as uow:
        events = uow.audit.query(AuditQuery(action="rollouts."))
    assert {e.action for e in events} >= {"rollouts.start", "rollouts.stopped"}


def test_start_and_end_are_signed_webhook_events(world: World) -> None:
    Receiver.received.clear()  # the class keeps what it received, across tests
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        inside = world.client.put(  # only the operator's allow-list lets 127.0.0.1 through
            "/v1/models/churn/monitoring/settings", headers=world.admin,
            json={"webhook_url": "http://169.254.169.254/latest/", "webhook_secret": "s" * 16},
        )  # fmt: skip
        assert inside.status_code == 422 and "link-local" in inside.json()["detail"]
        world.services.monitor.configure("churn", webhook_url=url, webhook_secret="s3cret")
        rollout = start(world)
        world.client.post(f"/v1/models/churn/rollouts/{rollout['id']}/stop", headers=world.admin,
                          json={"reason": "enough"})  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    events = []
    for headers, body in Receiver.received:
        assert webhook.verify("s3cret", headers["x-mlgate-timestamp"], body,
                              headers["x-mlgate-signature"])  # fmt: skip
        events.append(json.loads(body))
    assert [e["event"] for e in events] == ["rollout.started", "rollout.stopped"]
    assert (
        events[1]["rollout"]["reason"] == "enough" and events[1]["rollout"]["id"] == rollout["id"]
    )


def shadow_world(world: World, **fields: Any) -> dict[str, Any]:
    return start(world, mode="shadow", share=1.0, **fields)


def settle(world: World) -> None:
    """What the server's threads do every second, done now."""
    world.services.shadow.drain()
    world.services.shadow.flush()
    world.services.tally.flush()
    world.services.recorder.flush()
    world.services.flusher.flush()


def test_a_shadow_never_changes_an_answer_nor_meters_and_records_the_pairs(world: World) -> None:
    rollout = shadow_world(world)
    incumbent = world.services.predictors.get(resolve_version(world.services.uow(), "churn", 1))
    candidate = world.services.predictors.get(resolve_version(world.services.uow(), "churn", 2))
    consumers = list(world.tokens)[1:]
    for i, consumer in enumerate(consumers):
        rows = RECORDS[i * 10 : (i + 1) * 10]
        answer = call(world, consumer, rows)
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        table = rows_to_table(rows, incumbent.version.columns, max_rows=100)
        assert answer.json()["predictions"] == incumbent.score(table).predictions
    settle(world)
    seen = world.client.get(f"/v1/models/churn/rollouts/{rollout['id']}",
                            headers=world.admin).json()["look"]  # fmt: skip
    shadow = seen["shadow"]
    assert shadow["copied_calls"] == len(consumers) and shadow["skipped_calls"] == 0
    assert seen["sides"]["candidate"]["calls"] == len(consumers)
    assert seen["sides"]["incumbent"]["calls"] == len(consumers)
    rows = RECORDS[: len(consumers) * 10]
    table = rows_to_table(rows, incumbent.version.columns, max_rows=1000)
    mine, theirs = incumbent.score(table).predictions, candidate.score(table).predictions
    by_hand = sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(rows)
    assert shadow["compared_rows"] == len(rows)
    assert shadow["agreement"] == pytest.approx(by_hand)
    month = world.services.clock().strftime("%Y-%m")
    ledger = list(csv.DictReader(io.StringIO(usage_csv(world.services.uow(), by=None,
                                                       month=month))))  # fmt: skip
    assert {r["version"] for r in ledger} == {"1"}  # the shadow is never metered
    assert sum(int(r["rows"]) for r in ledger) == len(rows)


def test_a_slow_shadow_is_skipped_never_waited_for(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollout = shadow_world(world)
    candidate = world.services.predictors.get(resolve_version(world.services.uow(), "churn", 2))
    release = threading.Event()
    real = candidate.score

    def slow(rows: Any) -> Any:
        release.wait(timeout=60)
        return real(rows)

    monkeypatch.setattr(candidate, "score", slow)
    calls = shadow_capacity() + 40
    for i in range(calls):  # every answer comes while the candidate is stuck on the first copy
        answer = call(world, "co1", RECORDS[i % 600 : i % 600 + 1])
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
    release.set()
    settle(world)
    shadow = rollouts.look(
        world.services.uow(), rollouts.get_rollout(world.services.uow(), "churn", rollout["id"])
    )
    copied, skipped = shadow["shadow"]["copied_calls"], shadow["shadow"]["skipped_calls"]
    assert copied + skipped == calls and skipped > 0


def shadow_capacity() -> int:
    from mlgate.serving.shadow import CAPACITY

    return CAPACITY


@pytest.mark.parametrize("then_canary", [None, 0.3], ids=["promotes", "hands to a canary"])
def test_labels_decide_a_shadow_on_the_same_rows(world: World, then_canary: float | None) -> None:
    rollout = shadow_world(world, auto=True, then_canary=then_canary)
    answers = []
    for i in range(12):
        rows = RECORDS[(i % 6) * 100 : (i % 6 + 1) * 100]
        answer = call(world, f"co{1 + i % 5}", rows)
        answers.append((f"co{1 + i % 5}", answer.headers["X-Request-ID"]))
    settle(world)
    with world.services.uow() as uow:
        pairs = {p.request_id: p for p in uow.rollouts.shadow(rollout["id"])}
    agreed = sum(p.agreed or 0 for p in pairs.values()) / sum(p.n_rows for p in pairs.values())
    assert agreed < 0.99  # the versions disagree somewhere: there is something to decide
    for consumer, request_id in answers:  # the truth is the candidate's answer every time
        items = [{"request_id": request_id, "row": r, "label": label}
                 for r, label in enumerate(pairs[request_id].predictions or [])]  # fmt: skip
        fed = world.client.post(
            "/v1/models/churn/feedback",
            json={"feedback": items},
            headers={"Authorization": f"Bearer {world.tokens[consumer]}"},
        )
        assert fed.status_code == 200 and fed.json()["stored"] == len(items), fed.text
    decided = world.client.post(f"/v1/models/churn/rollouts/{rollout['id']}/decide",
                                headers=world.admin).json()  # fmt: skip
    test = decided["last_look"]["test"]
    assert test["candidate_loss"] == 0 and test["incumbent_loss"] == pytest.approx(1 - agreed)
    assert test["incumbent_rows"] == test["candidate_rows"] == 1_200  # the same rows, paired
    if then_canary is None:
        assert decided["state"] == "promoted", decided
        assert aliases_of(world.services.uow(), "churn")["production"] == 2
        return
    assert decided["state"] == "passed" and "a canary of 30%" in decided["reason"], decided
    assert aliases_of(world.services.uow(), "churn")["production"] == 1  # not yet
    listed = world.client.get("/v1/models/churn/rollouts", headers=world.admin).json()
    canary = listed[-1]
    assert (canary["mode"], canary["state"], canary["share"]) == ("canary", "running", 0.3)
    assert canary["candidate"] == 2 and canary["auto"]
    assert canary["started_by"] == f"rollout:{rollout['id']}"
    with world.services.uow() as uow:
        steps = uow.audit.query(AuditQuery(actor=f"rollout:{rollout['id']}"))
    assert {e.action for e in steps} >= {"rollouts.passed", "rollouts.start"}


def test_a_failing_shadow_is_counted_and_rolled_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollout = shadow_world(world)
    break_candidate(world, monkeypatch)
    for i in range(25):
        assert call(world, "co1", RECORDS[i : i + 1]).status_code == 200  # callers unharmed
    settle(world)
    decided = world.client.post(f"/v1/models/churn/rollouts/{rollout['id']}/decide",
                                headers=world.admin).json()  # fmt: skip
    assert decided["state"] == "rolled_back"
    assert "failed 25 of 25 calls" in decided["reason"]
    assert decided["last_look"]["shadow"]["errors"] == [
        "RuntimeError: the candidate's scorer broke"
    ]


def test_a_shadow_needs_the_same_input_columns(world: World) -> None:
    spec = TrainSpec("churn", "churn", demo.TARGET, "logistic_regression", table="churn",
                     drop=(demo.ID_COLUMN, "tenure_months"), report=False)  # fmt: skip
    train_model(world.services.uow(), world.services.artifacts, world.services.open_source, spec,
                now=world.services.clock)  # fmt: skip
    refused = world.client.post("/v1/models/churn/rollouts", headers=world.admin,
                                json={"candidate": 3, "mode": "shadow"})  # fmt: skip
    assert refused.status_code == 409 and "other input columns" in refused.json()["detail"]
    canary = world.client.post("/v1/models/churn/rollouts", headers=world.admin,
                               json={"candidate": 3, "share": 0.6})  # fmt: skip
    assert canary.status_code == 422 and "at most 0.5" in canary.json()["detail"]


def test_a_replay_gives_the_agreement_of_scoring_both_versions_by_hand(world: World) -> None:
    services = world.services
    services.monitor.configure("churn", sample_rate=1.0)
    now = services.clock()
    priced = make_plan("priced", now, price_per_1k_rows="2")
    create_plan(services.uow(), priced, by=None)
    subscribe(services.uow(), by=None, consumer="co1", plan="priced", now=now)
    services.forget_cached()
    sent: list[tuple[str, str, list[dict[str, Any]]]] = []
    for i in range(8):
        consumer = f"co{1 + i % 2}"
        rows = RECORDS[i * 25 : (i + 1) * 25]
        answer = call(world, consumer, rows)
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        sent.append((consumer, answer.headers["X-Request-ID"], rows))
    services.recorder.flush()
    consumer, request_id, rows = sent[0]
    labels = [{"request_id": request_id, "row": r, "label": 1} for r in range(len(rows))]
    fed = world.client.post(
        "/v1/models/churn/feedback",
        json={"feedback": labels},
        headers={"Authorization": f"Bearer {world.tokens[consumer]}"},
    )
    assert fed.status_code == 200, fed.text

    answer = world.client.post("/v1/models/churn/rollouts/replay", headers=world.admin,
                               json={"candidate": 2, "days": 7})  # fmt: skip
    assert answer.status_code == 200, answer.text
    report = answer.json()
    everything = [r for _, _, rows in sent for r in rows]
    v1, v2 = (services.predictors.get(resolve_version(services.uow(), "churn", n)) for n in (1, 2))
    table = rows_to_table(everything, v1.version.columns, max_rows=1000)
    mine, theirs = v1.score(table).predictions, v2.score(table).predictions
    assert report["logged_calls"] == 8 and report["compared_rows"] == len(everything)
    assert report["answered_by"] == {"v1": 8} and report["not_replayed"] == {}
    assert report["agreement"] == pytest.approx(
        sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(everything)
    )
    test = report["test"]
    assert test["incumbent_rows"] == test["candidate_rows"] == 25
    assert test["incumbent_loss"] == pytest.approx(sum(p != 1 for p in mine[:25]) / 25)
    assert test["candidate_loss"] == pytest.approx(sum(p != 1 for p in theirs[:25]) / 25)
    bill = {line["account"]: line for line in report["bill"]}
    assert bill["consumer:co1"]["rows_then"] == bill["consumer:co1"]["rows_by_candidate"] == 100
    assert bill["consumer:co1"]["amount_by_candidate"] == "0.20"  # 100 rows at 2 per 1,000
    assert bill["consumer:co2"]["amount_then"] is None  # a plan without prices

    services.monitor.configure("churn", exclude_columns=["contract"])
    services.recorder.forget()
    call(world, "co1", RECORDS[:3])
    services.recorder.flush()
    again = CliRunner().invoke(cli, ["rollout", "replay", "churn", "--candidate", "2", "--json"],
                               obj=services)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["not_replayed"] == {
        "the log lacks column 'contract' (excluded or unknown then)": 1
    }
    shown = CliRunner().invoke(cli, ["rollout", "replay", "churn", "--candidate", "2"],
                               obj=services)  # fmt: skip
    assert "v2 agrees on" in shown.output and "consumer:co1" in shown.output
    refused = world.client.post("/v1/models/churn/rollouts/replay", headers=world.admin,
                                json={"candidate": 9})  # fmt: skip
    assert refused.status_code == 404


def browser_of(world: World) -> TestClient:
    """A browser logged in to the dashboard as an admin."""
    from mlgate.access.accounts import create_user

    create_user(world.services.uow(), by=None, name="ann", password="operator password 2026",
                is_admin=True, now=world.services.clock())  # fmt: skip
    browser = TestClient(world.client.app, base_url="http://testserver", follow_redirects=False)
    form = browser.get("/ui/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    logged_in = browser.post("/ui/login", data={"name": "ann", "password": "operator password 2026",
                                                "csrf": token.group(1)})  # fmt: skip
    assert logged_in.status_code == 303
    return browser


def test_the_dashboard_starts_draws_and_stops_a_rollout(world: World) -> None:
    browser = browser_of(world)
    listing = browser.get("/ui/models/churn/rollouts")
    assert listing.status_code == 200 and "No rollout yet" in listing.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', listing.text)
    assert csrf
    bad = browser.post("/ui/models/churn/rollouts",
                       data={"candidate": "two", "csrf": csrf.group(1)})  # fmt: skip
    assert bad.status_code == 422 and "version number" in bad.text
    started = browser.post("/ui/models/churn/rollouts", data={
        "candidate": "v2", "mode": "canary", "share": "0.3", "alias": "production",
        "alpha": "0.05", "csrf": csrf.group(1)})  # fmt: skip
    assert started.status_code == 303
    where = started.headers["location"]
    assert where.startswith("/ui/models/churn/rollouts/") and "rollout_started" in where
    rollout_id = int(where.split("/")[-1].split("?")[0])

    first, second = resolve_version(world.services.uow(), "churn", 1).classes or ()
    for round_ in range(3):  # labels that favour the candidate, as in the API's test
        for consumer in list(world.tokens)[1:]:
            rows = RECORDS[round_ * 100 : (round_ + 1) * 100]
            answer = call(world, consumer, rows)
            version = answer.headers["X-Model-Version"]
            items = [{"request_id": answer.headers["X-Request-ID"], "row": i,
                      "label": p if version == "2" or i % 2 else (second if p == first else first)}
                     for i, p in enumerate(answer.json()["predictions"])]  # fmt: skip
            world.services.recorder.flush()
            key = {"Authorization": f"Bearer {world.tokens[consumer]}"}
            fed = world.client.post("/v1/models/churn/feedback", json={"feedback": items},
                                    headers=key)  # fmt: skip
            assert fed.status_code == 200, fed.text
    shown = browser.get(f"/ui/models/churn/rollouts/{rollout_id}")
    assert shown.status_code == 200
    page = shown.text
    assert "<svg" in page and "always-valid interval" in page and "<polygon" in page
    assert "The test: better" in page  # the candidate is right more often, by construction
    assert "failed calls" in page and "p99 latency" in page
    look = rollouts.look(world.services.uow(),
                         rollouts.get_rollout(world.services.uow(), "churn", rollout_id),
                         points=40)  # fmt: skip
    path = look["trajectory"]
    assert path[-1]["labelled"] == look["test"]["incumbent_rows"] + look["test"]["candidate_rows"]
    assert path[-1]["estimate"] == pytest.approx(look["test"]["estimate"])
    assert path[0]["low"] is None  # too few labels at first: no interval yet
    stopped = browser.post(f"/ui/models/churn/rollouts/{rollout_id}/stop",
                           data={"reason": "seen enough", "csrf": csrf.group(1)})  # fmt: skip
    assert stopped.status_code == 303 and "rollout_stopped" in stopped.headers["location"]
    after = browser.get(stopped.headers["location"]).text
    assert "stopped" in after and "seen enough" in after and "Stop the rollout" not in after
    browser.close()


def test_the_dashboard_shows_a_shadow(world: World) -> None:
    rollout = shadow_world(world, min_agreement=0.5)
    for i in range(5):
        call(world, "co1", RECORDS[i * 4 : (i + 1) * 4])
    settle(world)
    browser = browser_of(world)
    page = browser.get(f"/ui/models/churn/rollouts/{rollout['id']}").text
    assert "Shadow: 5 calls copied, 0 skipped" in page and "agree on" in page
    assert "agreement" in page and "at least 50%" in page
    assert "No labelled rows yet" in page
    assert (
        f"/ui/models/churn/rollouts/{rollout['id']}"
        in browser.get("/ui/models/churn/rollouts").text
    )
    browser.close()


def test_a_look_written_late_never_undoes_a_stop(world: World) -> None:
    """The referee reads a running rollout, a stop lands, then the referee writes its look:
    the stop stands (the write is conditional on the rollout still running)."""
    from dataclasses import replace

    started = start(world)
    read_before = rollouts.get_rollout(world.services.uow(), "churn", started["id"])
    rollouts.stop_rollout(world.services.uow(), "churn", started["id"], actor="test",
                          now=world.services.clock())  # fmt: skip
    with world.services.uow() as uow:
        assert not uow.rollouts.save_if_running(replace(read_before, last_look={"late": True}))
        uow.commit()
    after = rollouts.get_rollout(world.services.uow(), "churn", started["id"])
    assert after.state == "stopped" and after.last_look == {}
    assert rollouts.decide(world.services.uow(), read_before, now=world.services.clock()).state == (
        "stopped"
    )
