"""Rotation under load: clients calling `mlgate serve --workers 2` (Redis) switch to a key's new
secret in the middle of a run; no call fails, and usage and the quota count both secrets as the
one key."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mlgate.access import accounts, grants
from mlgate.cli.main import app as cli
from mlgate.plans import service as plans
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import redis_for_servers, running_server

CALLS, CLIENTS = 160, 4
ROWS = demo.churn_frame(n_rows=20).drop(columns=[demo.ID_COLUMN, demo.TARGET])
ROW = {k: (None if v != v else (v.item() if hasattr(v, "item") else v))
       for k, v in ROWS.iloc[0].to_dict().items()}  # fmt: skip


def served_home(home: Path) -> str:
    """A home with a small churn model, a consumer granted it on a plan of exactly CALLS
    requests a month, and the consumer's key: its token."""
    services = make_services(home)
    try:
        database = home / "churn.db"
        demo.write_sqlite(database, demo.churn_frame(n_rows=200))
        for step in (
            ("sources", "add", "demo", f"sqlite:///{database}"),
            ("train", "churn", "--source", "demo", "--table", demo.TABLE, "--target",
             demo.TARGET, "--drop", demo.ID_COLUMN, "--algorithm", "decision_tree",
             "--no-report"),
        ):  # fmt: skip
            done = CliRunner().invoke(cli, list(step), obj=services)
            assert done.exit_code == 0, done.output
        now = services.clock()
        accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=now)
        grants.add_grant(services.uow(), by=None, subject_kind="consumer", subject="acme",
                         target="churn", role="consumer", now=now, actor="test")  # fmt: skip
        plans.create_plan(services.uow(), plans.make_plan("exact", now, requests_per_month=CALLS),
                          by=None)  # fmt: skip
        plans.subscribe(services.uow(), by=None, consumer="acme", plan="exact", now=now)
        _, token = services.access.create_key(by=None, owner_kind="consumer", owner="acme",
                                              name="app")  # fmt: skip
        return token
    finally:
        services.close()


def test_clients_switch_to_the_new_secret_mid_run_and_nothing_fails(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = served_home(home)
    current = {"token": old}
    lock = threading.Lock()
    sent: list[tuple[int, str]] = []

    def client() -> None:
        with http.Client(timeout=30) as web:
            while True:
                with lock:
                    if len(sent) >= CALLS:
                        return
                    token = current["token"]
                    sent.append((0, token))
                    at = len(sent) - 1
                answer = web.post(f"{base}/v1/models/churn/predict", json={"rows": [ROW]},
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                with lock:
                    sent[at] = (answer.status_code, token)
                if at == CALLS // 2:  # half-way: the key rotates (as `mlgate keys rotate` does)
                    rotate()

    def rotate() -> None:
        services = make_services(home, **redis_env)
        try:
            _, new = services.access.rotate_key("app", by=None, overlap=timedelta(hours=1))
        finally:
            services.close()
        with lock:
            current["token"] = new

    with (
        redis_for_servers() as redis_env,
        running_server(home, "--workers", "2", **redis_env) as base,
    ):
        with ThreadPoolExecutor(CLIENTS) as pool:
            for done in [pool.submit(client) for _ in range(CLIENTS)]:
                done.result()
        statuses = [s for s, _ in sent]
        assert statuses == [200] * CALLS, {s: statuses.count(s) for s in set(statuses)}
        new = current["token"]
        assert new != old and sum(1 for _, t in sent if t == new) >= CALLS // 3
        # The quota counted both secrets as one: the plan's CALLS are spent, whichever secret.
        for token in (new, old):
            over = http.post(f"{base}/v1/models/churn/predict", json={"rows": [ROW]},
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert over.status_code == 429, over.text
        deadline = time.monotonic() + 10  # the usage flushers write about once a second
        while True:
            ok = [r for r in usage_rows(home, redis_env) if r.status == 200]
            if sum(r.requests for r in ok) >= CALLS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert {r.key_prefix for r in ok} == {old[:16]}  # one key
    assert sum(r.requests for r in ok) == CALLS


def usage_rows(home: Path, env: dict[str, str]) -> list[Any]:
    services = make_services(home, **env)
    try:
        return plans.usage(services.uow(), by=None, month=datetime.now(UTC).strftime("%Y-%m"),
                           consumer="acme", group="month")  # fmt: skip
    finally:
        services.close()
