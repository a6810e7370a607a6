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
    """An HTTP endpoint that answers `status` (200: it keeps what it got)."""

    def __init__(self) -> None:
        self.status = 200
        self.events: list[dict[str, Any]] = []
        self.forms: list[tuple[dict[str, str], str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status == 200:
                    if self.headers["Content-Type"].startswith("application/cloudevents-batch"):
                        receiver.events.extend(json.loads(body))
                    else:
                        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                        receiver.forms.append((form, self.headers["Idempotency-Key"]))
                self.send_response(receiver.status)
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
    expected = seed(services)
    sink = StripeSink("sk_test_123", url=receiver.url, customers={"acme": "cus_A"},
                      outbound=LOCAL)  # fmt: skip
    done = export_usage(services.uow(), sink, now=START + timedelta(hours=HOURS, minutes=6),
                        start=START)  # fmt: skip
    assert done.sent == len(expected) == len(receiver.forms)
    for form, key in receiver.forms:
        assert key == form["identifier"] and form["event_name"].startswith("mlgate_")
        assert form["payload[stripe_customer_id]"] in ("cus_A", "globex")
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
