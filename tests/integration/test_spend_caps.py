"""Monthly spend caps: past the cap a consumer's calls are refused with 402 and a body naming the
cap, to the cent (the cap itself may be reached exactly), until the cap is raised or the month
ends; the count holds across workers (Redis, 64 clients) and across restarts (reconciled from
the ledger)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mlgate.access import accounts
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.plans import service
from mlgate.plans.flusher import reconcile
from mlgate.plans.limiter import MemoryCounters, charges, spend_charge
from mlgate.plans.metering import UsageEvent
from mlgate.plans.model import NANOS, Limit
from mlgate.plans.redis_counters import RedisCounters
from mlgate.sources import demo
from tests.fakes import FixedClock
from tests.integration.shops import open_shop

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(services: Services, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A model, a consumer on a plan at 1.00 per 1,000 rows (0.001 a row), and its key."""
    plan = service.make_plan(
        "metered", NOW, price_per_1k_rows="1.00", overage=True, rows_per_month=1_000_000
    )
    token = open_shop(services, tmp_path, plan, NOW)
    with TestClient(create_app(services)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def rows(n: int) -> dict[str, object]:
    frame = demo.churn_frame(n_rows=n).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    return {"rows": frame.astype(object).where(frame.notna(), None).to_dict(orient="records")}


def test_calls_past_the_cap_are_refused_with_402_to_the_cent(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    cap = client.put("/v1/consumers/acme/spend-cap", headers=headers, json={"cap": "0.05"})
    assert cap.status_code == 200, cap.text
    for _ in range(7):  # 49 rows: 0.049
        assert client.post("/v1/models/churn/predict", headers=headers,
                           json=rows(7)).status_code == 200  # fmt: skip
    refused = client.post("/v1/models/churn/predict", headers=headers, json=rows(2))
    assert refused.status_code == 402, refused.text
    body = refused.json()
    assert body["code"] == "spend_cap_reached" and body["cap"] == "0.05"
    assert body["spent"] == "0.049000" and body["resets_at"] == "2026-12-01T00:00:00Z"
    exact = client.post("/v1/models/churn/predict", headers=headers, json=rows(1))
    assert exact.status_code == 200  # 0.050: the cap itself, not past it
    assert client.post("/v1/models/churn/predict", headers=headers,
                       json=rows(1)).status_code == 402  # fmt: skip
    services.flusher.flush()
    spend = client.get("/v1/consumers/acme/spend", headers=headers).json()
    assert spend["spent"] == "0.050000" and spend["cap"] == "0.05"
    assert Decimal(spend["projected"]) > Decimal("0.05")  # 27 days in: on pace for more
    bill = service.bill_csv(services.uow(), by=None, consumer="acme", month="2026-11")
    assert bill.splitlines()[1].endswith(",0.05")  # the refused calls cost nothing
    raised = client.put("/v1/consumers/acme/spend-cap", headers=headers, json={"cap": "0.06"})
    assert raised.status_code == 200
    assert client.post("/v1/models/churn/predict", headers=headers,
                       json=rows(7)).status_code == 200  # fmt: skip
    services.clock.advance(days=4)  # type: ignore[attr-defined]  # December: a new month
    assert client.post("/v1/models/churn/predict", headers=headers,
                       json=rows(7)).status_code == 200  # fmt: skip


def test_bad_caps_are_refused_and_only_the_consumer_or_an_admin_sets_one(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = shop
    bad = (("-1", "between 0"), ("0.001", "whole cents"), ("lots", "amount such"), (0, "string"))
    for cap, words in bad:
        answer = client.put("/v1/consumers/acme/spend-cap", headers=headers, json={"cap": cap})
        assert answer.status_code == 422 and words in answer.json()["detail"]
    accounts.create_consumer(services.uow(), by=None, name="globex", description="", now=NOW)
    other = client.put("/v1/consumers/globex/spend-cap", headers=headers, json={"cap": "1.00"})
    assert other.status_code == 403


def test_the_cap_holds_exactly_across_64_redis_clients(redis_url: tuple[str, str]) -> None:
    """1,000 one-row calls at 0.001 against a cap of 0.50 (and an overage price of 0.002 a row
    past 300 rows): exactly as many as fit are counted, whatever the interleaving."""
    limits = [Limit("rows", "month", 300, hard=False)]
    cap = int(Decimal("0.50") * NANOS)
    rates = (1_000_000, 1_000_000, 0)  # a row 0.001; an overage row 0.001 more
    allowed: list[int] = []

    def client() -> None:
        mine = RedisCounters(redis_url[0], prefix=redis_url[1])
        for _ in range(16):
            charged = [*charges("consumer:acme", limits, 1, NOW),
                       spend_charge("consumer:acme", cap, rates, 1, 0, NOW)]  # fmt: skip
            event = UsageEvent(NOW, "consumer:acme", "k", "churn", 1, 200, 1, 1.0)
            ok, *_ = mine.commit(charged, 1, event)
            if ok:
                allowed.append(1)
        mine.close()

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 300 rows at 0.001 = 0.30; then 0.002 each: 100 more reach 0.50 exactly.
    assert len(allowed) == 400
    counters = RedisCounters(redis_url[0], prefix=redis_url[1])
    key = spend_charge("consumer:acme", cap, rates, 1, 0, NOW).key
    assert counters.peek([key]) == [cap]
    counters.close()


def test_a_restarted_process_counts_the_month_already_spent(services: Services) -> None:
    services.clock = FixedClock(NOW)
    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=NOW)
    plan = service.make_plan("metered", NOW, price_per_1k_rows="1.00")
    service.create_plan(services.uow(), plan, by=None)
    service.subscribe(services.uow(), by=None, consumer="acme", plan="metered",
                      now=NOW - timedelta(days=1))  # fmt: skip
    hour = NOW.strftime("%Y-%m-%dT%H")
    with services.uow() as uow:
        uow.usage.add_batch("earlier", {(hour, "consumer:acme", "k", "churn", "1", "200"):
                                        [10, 40, 0, 10, 0]}, NOW)  # fmt: skip
        uow.commit()
    counters = MemoryCounters()
    reconcile(counters, services.uow, NOW)
    key = spend_charge("consumer:acme", 1, (0, 0, 0), 0, 0, NOW).key
    assert counters.peek([key]) == [40 * 1_000_000]  # 40 rows at 0.001


def test_the_portal_shows_spend_and_its_projection_and_sets_the_cap(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    import re

    client, headers = shop
    assert client.post("/v1/models/churn/predict", headers=headers,
                       json=rows(7)).status_code == 200  # fmt: skip
    services.flusher.flush()
    accounts.set_consumer_password(
        services.uow(), "acme", "first customer secret", by=None, now=NOW
    )
    browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/portal/login").text)
    assert token
    login = browser.post("/portal/login", data={"name": "acme", "password": "first customer secret",
                                                "csrf": token.group(1)})  # fmt: skip
    assert login.status_code == 303, login.text[:300]
    page = browser.get("/portal")
    assert "Spent so far in 2026-11: <strong>USD 0.01</strong>" in page.text
    assert "No spend cap." in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    done = browser.post("/portal/spend-cap", data={"cap": "12.50", "csrf": csrf.group(1)})
    assert done.status_code == 303 and done.headers["location"] == "/portal?notice=spend_cap_set"
    assert "Your cap: <strong>USD 12.50</strong>" in browser.get("/portal").text
    browser.close()


def test_an_operator_sets_a_cap_from_the_cli(
    services: Services, shop: tuple[TestClient, dict[str, str]]
) -> None:
    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    result = CliRunner().invoke(cli, ["plans", "spend-cap", "acme", "3.00"], obj=services)
    assert result.exit_code == 0 and "acme: cap 3.00" in result.output
    with services.uow() as uow:
        assert uow.plans.spend_cap("acme") == Decimal("3.00")
    removed = CliRunner().invoke(cli, ["plans", "spend-cap", "acme", "none"], obj=services)
    assert removed.exit_code == 0 and "cap none" in removed.output
