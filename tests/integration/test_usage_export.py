"""Usage pushed to billing (plans/exporter.py, plans/sinks.py) against a real HTTP receiver
started here: down for part of the run, then up. Every aggregate arrives; repeats carry the
same id; the values of the distinct ids sum to the ledger. A sink that refuses for good fills
the dead-letter table, which a replay empties with the same ids."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from typer.testing import CliRunner

from mlgate.bootstrap import Services, bootstrap
from mlgate.cli.main import app as cli
from mlgate.errors import InvalidInput
from mlgate.outbound.addresses import AllowList
from mlgate.outbound.client import Outbound
from mlgate.plans import service as plans
from mlgate.plans.exporter import METERS, export_usage, replay_dead_letters
from mlgate.plans.sinks import CloudEventsSink, StripeSink
from mlgate.settings import Settings
from tests.fakes import FixedClock

START = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
HOURS = 30
LOCAL = Outbound(AllowList.parse("127.0.0.1"))  # the receiver below runs here


class Receiver:
    """An HTTP endpoint that answers `status` (200: it keeps what it got). It refuses for good
    (400) a request that holds an event of the consumer (or Stripe customer) `refuse`: a
    CloudEvents batch whole, as batch mode does."""

    def __init__(self) -> None:
        self.status = 200
        self.refuse: str | None = None
        self.requests = 0
        self.events: list[dict[str, Any]] = []
        self.forms: list[tuple[dict[str, str], str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                status = receiver.status
                if self.headers["Content-Type"].startswith("application/cloudevents-batch"):
                    events = json.loads(body)
                    if any(e["subject"] == receiver.refuse for e in events):
                        status = 400
                    elif status == 200:
                        receiver.events.extend(events)
                else:
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    if form["payload[stripe_customer_id]"] == receiver.refuse:
                        status = 400
                    elif status == 200:
                        receiver.forms.append((form, self.headers["Idempotency-Key"]))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def seed(services: Services) -> dict[tuple[str, str, str], int]:
    """A ledger over HOURS hours: two consumers (one changes plan), a user (not billed), failed
    calls (not billed), and one hour written in two batches. Returns the expected values per
    (consumer, meter, hour)."""
    now = START - timedelta(days=1)
    for name in ("acme", "globex"):
        from mlgate.access import accounts

        accounts.create_consumer(services.uow(), by=None, name=name, description="", now=now)
    for plan in ("basic", "pro"):
        plans.create_plan(services.uow(), plans.make_plan(plan, now), by=None)
    plans.subscribe(services.uow(), by=None, consumer="acme", plan="basic", now=now)
    plans.subscribe(services.uow(), by=None, consumer="globex", plan="basic", now=now)
    plans.subscribe(services.uow(), by=None, consumer="acme", plan="pro",
                    now=START + timedelta(hours=12))  # fmt: skip
    expected: dict[tuple[str, str, str], int] = {}
    for h in range(HOURS):
        hour = (START + timedelta(hours=h)).strftime("%Y-%m-%dT%H")
        aggregates = {
            (hour, "consumer:acme", "k1", "churn", "1", "200"): [3 + h, 30 + h, h % 3, 40, h % 2],
            (hour, "consumer:acme", "k2", "spend", "2", "200"): [1, 5, 0, 10, 0],
            (hour, "consumer:acme", "k1", "churn", "1", "429"): [7, 70, 0, 1, 0],
            (hour, "user:ann", "k9", "churn", "1", "200"): [2, 2, 0, 1, 0],
        }
        if h % 4 == 0:
            aggregates[(hour, "consumer:globex", "k3", "churn", "1", "200")] = [2, 20, 0, 5, 0]
        with services.uow() as uow:
            uow.usage.add_batch(f"seed-{h}", aggregates, START)
            if h == 5:  # a second process's share of the same hour
                uow.usage.add_batch("seed-late", {(hour, "consumer:acme", "k1", "churn", "1",
                                                   "200"): [1, 1, 0, 1, 0]}, START)  # fmt: skip
            uow.commit()
        acme = [4 + h + (h == 5), 35 + h + (h == 5), h % 3, h % 2]
        for meter, value in zip(METERS, acme, strict=True):
            if value:
                expected[("acme", meter, hour)] = value
        if h % 4 == 0:
            expected[("globex", "requests", hour)] = 2
            expected[("globex", "rows", hour)] = 20
    return expected


def test_every_aggregate_arrives_once_per_id_after_the_sink_comes_back(
    any_services: Services, receiver: Receiver
) -> None:
    services = any_services
    expected = seed(services)
    clock = FixedClock(START + timedelta(hours=HOURS, minutes=6))
    sink = CloudEventsSink(receiver.url, name="openmeter", source="mlgate/test", outbound=LOCAL)
    receiver.status = 503
    down = export_usage(services.uow(), sink, now=clock(), start=START)
    assert down.sent == 0 and down.through is None and "503" in down.error
    assert down.waiting_until == clock() + timedelta(seconds=30)
    clock.advance(seconds=10)  # too soon: it waits, as it said
    assert export_usage(services.uow(), sink, now=clock(), start=START).sent == 0
    clock.advance(seconds=25)
    again = export_usage(services.uow(), sink, now=clock(), start=START)
    assert again.waiting_until == clock() + timedelta(seconds=60)  # doubled
    receiver.status = 200
    clock.advance(minutes=2)
    done = export_usage(services.uow(), sink, now=clock(), start=START)
    assert done.error == "" and done.through == START + timedelta(hours=HOURS)
    assert done.sent == len(expected) == len(receiver.events)
    # A crash between delivery and the cursor's write: the hours go out again, same ids.
    with services.uow() as uow:
        cursor = uow.usage_exports.cursor("openmeter")
        assert cursor is not None
        from dataclasses import replace

        assert uow.usage_exports.save_cursor(
            replace(cursor, through=START + timedelta(hours=HOURS - 3)), expected=cursor.through
        )
        uow.commit()
    repeat = export_usage(services.uow(), sink, now=clock(), start=START)
    assert repeat.sent > 0 and len(receiver.events) == len(expected) + repeat.sent
    by_id: dict[str, dict[str, Any]] = {}
    for event in receiver.events:
        assert event["specversion"] == "1.0" and event["type"] == "io.mlgate.usage"
        seen = by_id.setdefault(event["id"], event)
        assert seen == event  # a repeat is the same event, id and all
    got = {(e["subject"], e["data"]["meter"], e["data"]["hour"][:13]): e["data"]["value"]
           for e in by_id.values()}  # fmt: skip
    assert got == expected
    plans_seen = {(e["subject"], e["data"]["hour"][:13]): e["data"]["plan"] for e in by_id.values()}
    assert plans_seen[("acme", "2026-11-03T11")] == "basic"
    assert plans_seen[("acme", "2026-11-03T12")] == "pro"
    # An hour not yet settled is not sent.
    assert export_usage(services.uow(), sink, now=clock(), start=START).sent == 0
    sink.close()


def test_refused_events_are_dead_letters_until_replayed(
    services: Services, receiver: Receiver
) -> None:
    expected = seed(services)
    now = START + timedelta(hours=HOURS, minutes=6)
    sink = CloudEventsSink(receiver.url, name="billing", outbound=LOCAL)
    receiver.status = 400
    refused = export_usage(services.uow(), sink, now=now, start=START)
    assert refused.sent == 0 and refused.dead == len(expected)
    assert refused.through == START + timedelta(hours=HOURS)  # the cursor moved on
    with services.uow() as uow:
        letters = uow.usage_exports.dead_letters("billing")
    assert len(letters) == len(expected)
    receiver.status = 200
    assert replay_dead_letters(services.uow(), sink, now=now) == (len(expected), 0)
    assert {e["id"] for e in receiver.events} == {d.event_id for d in letters}
    assert replay_dead_letters(services.uow(), sink, now=now) == (0, 0)
    sink.close()


def test_the_stripe_sink_sends_meter_events_with_idempotency_keys(
    services: Services, receiver: Receiver
) -> None:
    """Each consumer as its billing id; one without is never sent, and says so (issue 36)."""
    expected = seed(services)
    sink = StripeSink("sk_test_123", url=receiver.url, customers={"acme": "cus_A"},
                      outbound=LOCAL)  # fmt: skip
    now = START + timedelta(hours=HOURS, minutes=6)
    done = export_usage(services.uow(), sink, now=now, start=START)
    acme = {k: v for k, v in expected.items() if k[0] == "acme"}
    assert done.sent == len(acme) == len(receiver.forms) and done.dead == len(expected) - len(acme)
    for form, key in receiver.forms:
        assert key == form["identifier"] and form["event_name"].startswith("mlgate_")
        assert form["payload[stripe_customer_id]"] == "cus_A"  # never a consumer's name
    assert sum(int(f["payload[value]"]) for f, _ in receiver.forms) == sum(acme.values())
    with services.uow() as uow:
        letters = uow.usage_exports.dead_letters("stripe")
    assert {d.event["consumer"] for d in letters} == {"globex"}
    assert all("globex has no billing id" in d.error and "--billing-id" in d.error
               for d in letters)  # fmt: skip
    # the id set, a replay sends globex's events as its own
    sink.customers["globex"] = "cus_G"
    assert replay_dead_letters(services.uow(), sink, now=now) == (len(letters), 0)
    assert [f["payload[stripe_customer_id]"] for f, _ in receiver.forms[len(acme):]] == (
        ["cus_G"] * len(letters))  # fmt: skip
    total = sum(int(f["payload[value]"]) for f, _ in receiver.forms)
    assert total == sum(expected.values())
    sink.close()


def test_sinks_are_http_urls_and_the_cli_exports_what_the_settings_name(
    tmp_path: Path, receiver: Receiver
) -> None:
    with pytest.raises(InvalidInput, match="http"):
        CloudEventsSink("ftp://billing.example/events")
    services = bootstrap(Settings.from_env({
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_USAGE_EXPORT_URL": receiver.url,
        "MLGATE_USAGE_EXPORT_INTERVAL": "0", "MLGATE_OUTBOUND_ALLOW": "127.0.0.1",
    }))  # fmt: skip
    try:
        expected = seed(services)
        services.clock = FixedClock(datetime(2026, 12, 3, 0, 10, tzinfo=UTC))
        result = CliRunner().invoke(cli, ["usage", "export"], obj=services)
        assert result.exit_code == 0, result.output
        assert len(receiver.events) == len(expected)
        listed = CliRunner().invoke(cli, ["usage", "--month", "2026-11"], obj=services)
        assert listed.exit_code == 0 and "churn" in listed.output  # `usage` still lists
    finally:
        services.close()


# Billing at its boundaries: a month's last hours and the next month's first, a first
# subscription and a change of plan that start mid-hour, a consumer the receiver refuses.
EDGE = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # EDGE + 3h is November's last hour
EDGE_HOURS = 9


def seed_edge(
    services: Services, base: datetime = EDGE
) -> tuple[dict[tuple[str, str, str], int], dict[str, str]]:
    """The ledger over EDGE_HOURS hours from `base`: acme (basic, then pro from base + 3h40,
    mid-hour), globex (a first subscription, basic, from base + 1h30, mid-hour, with calls from
    then on), initech (basic), a user and refused calls (not billed). Returns the values per
    (consumer, meter, hour) and the plan each "consumer|hour" belongs to."""
    from mlgate.access import accounts

    before = base - timedelta(days=1)
    for name in ("acme", "globex", "initech"):
        accounts.create_consumer(services.uow(), by=None, name=name, description="", now=before)
    for plan in ("basic", "pro"):
        plans.create_plan(services.uow(), plans.make_plan(plan, before), by=None)
    for name in ("acme", "initech"):
        plans.subscribe(services.uow(), by=None, consumer=name, plan="basic", now=before)
    globex_starts = base + timedelta(hours=1, minutes=30)
    plans.subscribe(services.uow(), by=None, consumer="globex", plan="basic", now=globex_starts)
    acme_pro = base + timedelta(hours=3, minutes=40)
    plans.subscribe(services.uow(), by=None, consumer="acme", plan="pro", now=acme_pro)
    expected: dict[tuple[str, str, str], int] = {}
    owners: dict[str, str] = {}
    for h in range(EDGE_HOURS):
        hour = (base + timedelta(hours=h)).strftime("%Y-%m-%dT%H")
        counted = {"acme": [2 + h, 20 + h, h % 2, 5, h % 3], "initech": [1, 10 + h, 0, 3, 1]}
        if h >= 1:
            counted["globex"] = [3, 30 + h, 0, 4, 0]
        aggregates = {(hour, f"consumer:{c}", "k1", "churn", "1", "200"): v
                      for c, v in counted.items()}  # fmt: skip
        aggregates[(hour, "consumer:acme", "k1", "churn", "1", "429")] = [7, 70, 0, 1, 0]
        aggregates[(hour, "user:ann", "k9", "churn", "1", "200")] = [2, 2, 0, 1, 0]
        with services.uow() as uow:
            uow.usage.add_batch(f"edge-{h}", aggregates, base)
            uow.commit()
        for consumer, (requests, rows, overage, _, explained) in counted.items():
            for meter, value in zip(METERS, (requests, rows, overage, explained), strict=True):
                if value:
                    expected[(consumer, meter, hour)] = value
            owners[f"{consumer}|{hour}"] = "pro" if consumer == "acme" and h >= 3 else "basic"
    return expected, owners


def ledger_totals(services: Services) -> dict[str, tuple[int, int]]:
    """(requests, rows) of each consumer's counted calls, as the ledger itself sums them."""
    with services.uow() as uow:
        totals = uow.usage.totals(EDGE, EDGE + timedelta(hours=EDGE_HOURS))
    return {a.removeprefix("consumer:"): t for a, t in totals.items() if a.startswith("consumer:")}


def sums(values: dict[tuple[str, str, str], int]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for (consumer, meter, _), value in values.items():
        requests, rows = out.get(consumer, (0, 0))
        out[consumer] = (requests + value * (meter == "requests"), rows + value * (meter == "rows"))
    return out


def test_billing_is_exact_across_a_month_end_a_mid_hour_start_and_a_refused_consumer(
    any_services: Services, receiver: Receiver
) -> None:
    services = any_services
    expected, owners = seed_edge(services)
    receiver.refuse = "initech"  # for good: its events share batches with the others'
    now = EDGE + timedelta(hours=EDGE_HOURS, minutes=6)
    sink = CloudEventsSink(receiver.url, name="openmeter", source="mlgate/test", outbound=LOCAL)
    # No cursor, no start: the first pass reaches back to November 1st (over four weeks
    # before the ledger's first hour) and catches up to the last closed hour in one run.
    done = export_usage(services.uow(), sink, now=now)
    assert done.error == "" and done.through == EDGE + timedelta(hours=EDGE_HOURS)
    refused = {k: v for k, v in expected.items() if k[0] == "initech"}
    assert done.dead == len(refused) and done.sent == len(expected) - len(refused)
    with services.uow() as uow:
        letters = uow.usage_exports.dead_letters("openmeter")
    assert {d.event["consumer"] for d in letters} == {"initech"}  # it alone, not its batches
    accepted = {e["id"]: e for e in receiver.events}
    assert len(accepted) == len(receiver.events)  # each accepted once
    # The distinct ids, accepted or dead-lettered, are the ledger, to the unit.
    got = {(e["subject"], e["data"]["meter"], e["data"]["hour"][:13]): e["data"]["value"]
           for e in accepted.values()}  # fmt: skip
    dead = {(d.event["consumer"], d.event["meter"], d.event["hour"][:13]): d.event["value"]
            for d in letters}  # fmt: skip
    assert not got.keys() & dead.keys() and {**got, **dead} == expected
    assert sums({**got, **dead}) == ledger_totals(services)
    # Every event names the subscription and plan that owned its hour, a mid-hour start too.
    for e in accepted.values():
        assert e["data"]["subscription"] is not None
        assert e["data"]["plan"] == owners[f"{e['subject']}|{e['data']['hour'][:13]}"]
    assert {d.event["plan"] for d in letters} == {"basic"}
    assert {e["data"]["plan"] for e in accepted.values()
            if e["subject"] == "globex" and e["data"]["hour"].startswith("2026-11-30T21")} == {
        "basic"}  # fmt: skip
    # Its time falls inside its hour, so November's last hour stays in November.
    for e in accepted.values():
        hour = datetime.strptime(e["data"]["hour"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        at = datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert hour <= at < hour + timedelta(hours=1) and (at.year, at.month) == (
            hour.year, hour.month)  # fmt: skip
    assert any(e["time"].startswith("2026-11-30T23") for e in accepted.values())
    # A replay while the receiver still refuses sends nothing it took before.
    receiver.events.clear()
    assert replay_dead_letters(services.uow(), sink, now=now) == (0, len(letters))
    receiver.refuse = None
    assert replay_dead_letters(services.uow(), sink, now=now) == (len(letters), 0)
    assert sorted(e["id"] for e in receiver.events) == sorted(d.event_id for d in letters)
    assert replay_dead_letters(services.uow(), sink, now=now) == (0, 0)
    sink.close()


def test_a_stripe_sink_reaches_back_what_stripe_accepts_and_dead_letters_one_customer(
    any_services: Services, receiver: Receiver
) -> None:
    from mlgate.plans.model import ExportCursor

    services = any_services
    base = datetime(2026, 12, 15, 20, 0, tzinfo=UTC)
    expected, _ = seed_edge(services, base)
    receiver.refuse = "cus_I"
    customers = {"acme": "cus_A", "globex": "cus_G", "initech": "cus_I"}
    # Stripe's 35 days, less a margin: from base + 1h, where a CloudEvents sink would start
    # on the first of the previous month (December 1st).
    now = base + timedelta(days=33, hours=1)
    sink = StripeSink("sk_test_123", url=receiver.url, customers=customers, outbound=LOCAL)
    done = export_usage(services.uow(), sink, now=now)
    assert done.error == "" and done.through == base + timedelta(days=33)  # the last closed hour
    first = (base + timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    due = {k: v for k, v in expected.items() if k[2] >= first}
    assert len(due) < len(expected)  # base's own hour is older than Stripe takes: not sent
    by_customer = {v: k for k, v in customers.items()}
    got = {}
    for form, key in receiver.forms:
        assert key == form["identifier"]
        at = datetime.fromtimestamp(int(form["timestamp"]), UTC)
        assert now - at < timedelta(days=35) and at.minute == at.second == 0  # the hour's start
        got[(by_customer[form["payload[stripe_customer_id]"]], form["event_name"][7:],
             at.strftime("%Y-%m-%dT%H"))] = int(form["payload[value]"])  # fmt: skip
    assert len(got) == len(receiver.forms)  # one request per event, none twice
    with services.uow() as uow:
        letters = uow.usage_exports.dead_letters("stripe")
    dead = {(d.event["consumer"], d.event["meter"], d.event["hour"][:13]): d.event["value"]
            for d in letters}  # fmt: skip
    assert {c for c, _, _ in dead} == {"initech"} and {**got, **dead} == due
    # A replay sends the refused customer's events, and only those.
    receiver.refuse = None
    sent_before = len(receiver.forms)
    assert replay_dead_letters(services.uow(), sink, now=now) == (len(letters), 0)
    assert {f["identifier"] for f, _ in receiver.forms[sent_before:]} == {
        d.event_id for d in letters}  # fmt: skip
    # A cursor that stalled before what Stripe takes: those hours are dead letters, unsent.
    late = StripeSink(
        "sk_test_123", url=receiver.url, customers=customers, name="stripe-late", outbound=LOCAL
    )
    with services.uow() as uow:
        uow.usage_exports.save_cursor(ExportCursor("stripe-late", through=base), expected=None)
        uow.commit()
    receiver.forms.clear()
    again = export_usage(services.uow(), late, now=now)
    assert again.through == base + timedelta(days=33)
    assert again.dead == len(expected) - len(due) and again.sent == len(due)
    with services.uow() as uow:
        stale = uow.usage_exports.dead_letters("stripe-late")
    assert {d.event["hour"][:13] for d in stale} == {base.strftime("%Y-%m-%dT%H")}
    assert all("older than" in d.error for d in stale)
    assert not {d.event_id for d in stale} & {f["identifier"] for f, _ in receiver.forms}
    receiver.forms.clear()
    pending = replay_dead_letters(services.uow(), late, now=now)  # Stripe would refuse them
    assert pending == (0, len(stale)) and receiver.forms == []
    sink.close()
    late.close()


def test_a_first_cli_export_catches_up_in_one_run(tmp_path: Path, receiver: Receiver) -> None:
    services = bootstrap(Settings.from_env({
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_USAGE_EXPORT_URL": receiver.url,
        "MLGATE_USAGE_EXPORT_INTERVAL": "0", "MLGATE_OUTBOUND_ALLOW": "127.0.0.1",
    }))  # fmt: skip
    try:
        expected, _ = seed_edge(services)
        # The first pass starts on November 1st; the ledger's hours lie four weeks later.
        services.clock = FixedClock(EDGE + timedelta(hours=EDGE_HOURS, minutes=10))
        result = CliRunner().invoke(cli, ["usage", "export"], obj=services)
        assert result.exit_code == 0, result.output
        assert f"sent {len(expected)} events, 0 dead-lettered" in result.output
        assert "done up to 2026-12-01 05:00 UTC" in result.output
        assert len({e["id"] for e in receiver.events}) == len(expected)
        again = CliRunner().invoke(cli, ["usage", "export"], obj=services)
        assert again.exit_code == 0 and "sent 0 events" in again.output
    finally:
        services.close()


def test_billing_ids_are_set_checked_and_missing_ones_are_named(
    tmp_path: Path, receiver: Receiver
) -> None:
    """`consumers update --billing-id`, the API's PUT, and a Stripe-configured server naming
    the consumers on a plan without one (`usage export`, `doctor`) instead of sending them."""
    services = bootstrap(Settings.from_env({
        "MLGATE_HOME": str(tmp_path / "home"), "MLGATE_USAGE_EXPORT_URL": receiver.url,
        "MLGATE_USAGE_EXPORT_FORMAT": "stripe", "MLGATE_USAGE_EXPORT_TOKEN": "sk_test_1",
        "MLGATE_USAGE_EXPORT_INTERVAL": "0", "MLGATE_OUTBOUND_ALLOW": "127.0.0.1",
    }))  # fmt: skip
    try:
        expected = seed(services)
        services.clock = FixedClock(datetime(2026, 12, 3, 0, 10, tzinfo=UTC))
        runner = CliRunner()
        bad = runner.invoke(cli, ["consumers", "update", "acme", "--billing-id", "cus A;"],
                            obj=services)  # fmt: skip
        assert bad.exit_code != 0 and "letters, digits" in bad.output
        ok = runner.invoke(cli, ["consumers", "update", "acme", "--billing-id", "cus_A"],
                           obj=services)  # fmt: skip
        assert ok.exit_code == 0, ok.output
        listed = runner.invoke(cli, ["consumers", "list"], obj=services)
        assert "cus_A" in listed.output
        assert services.plans.unbilled() == ["globex"]
        doctor = runner.invoke(cli, ["doctor"], obj=services)
        assert doctor.exit_code == 1
        assert "globex" in doctor.output and "--billing-id" in doctor.output
        result = runner.invoke(cli, ["usage", "export"], obj=services)
        assert result.exit_code == 0, result.output
        assert "globex" in result.output and "no billing id" in result.output
        ids = {form["payload[stripe_customer_id]"] for form, _ in receiver.forms}
        assert ids == {"cus_A"}
        assert len(receiver.forms) == len([k for k in expected if k[0] == "acme"])
        # set over HTTP, and a replay sends the rest as globex's own
        from starlette.testclient import TestClient

        from mlgate.api.app import create_app
        from tests.conftest import admin_token

        with TestClient(create_app(services)) as client:
            answer = client.put(
                "/v1/consumers/globex/billing-id",
                headers={"Authorization": f"Bearer {admin_token(services, 'admin')}"},
                json={"billing_id": "cus_G"},
            )
        assert answer.status_code == 200 and answer.json()["billing_id"] == "cus_G"
        replayed = runner.invoke(cli, ["usage", "export", "--replay"], obj=services)
        assert replayed.exit_code == 0 and "still pending" in replayed.output
        ids = [form["payload[stripe_customer_id]"] for form, _ in receiver.forms]
        assert set(ids) == {"cus_A", "cus_G"} and len(ids) == len(expected)
        assert services.plans.unbilled() == []
    finally:
        services.close()
