"""Outbound calls cannot be aimed inside (issue 33, defect 11): webhooks and usage sinks go
through one client (mlgate/outbound) that refuses inside addresses when a URL is registered and
again at every send, connects to the address it checked, follows no redirect and reads a
bounded answer within a short time. Receivers are real HTTP servers on 127.0.0.1; only DNS is
played by the test (`socket.getaddrinfo` answers made-up `*.acme.test` names)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlgate.access import accounts
from mlgate.access.model import AuditQuery
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.errors import AddressRefused, DeliveryFailed
from mlgate.monitoring import webhook
from mlgate.outbound.addresses import AllowList
from mlgate.outbound.client import Outbound
from mlgate.plans.exporter import Delivery
from mlgate.plans.model import Crossing
from mlgate.plans.sinks import CloudEventsSink
from tests.conftest import make_services

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PUBLIC = "93.184.215.14"  # a public address: checked, never called


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records what it got and answers as told."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.status, self.location, self.answer = 204, "", b""
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                me.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(me.status)
                if me.location:
                    self.send_header("Location", me.location)
                self.send_header("Content-Length", str(len(me.answer)))
                self.end_headers()
                self.wfile.write(me.answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


class Dns:
    """Answers for made-up names, changed by the test between calls; counts the lookups."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: dict[str, int] = {}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    played = Dns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".acme.test"):
            return real(host, port, *args, **kwargs)
        played.lookups[name] = played.lookups.get(name, 0) + 1
        answers = played.answers.get(name)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port or 0))) for a in answers]  # fmt: skip

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return played


def consumer_with_key(services: Services, name: str = "acme") -> dict[str, str]:
    accounts.create_consumer(services.uow(), by=None, name=name, description="", now=NOW)
    _, token = create_key(services.uow(), services.server_secret, by=None, owner_kind="consumer",
                          owner=name, name=f"{name}-key", now=NOW)  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_a_consumer_cannot_aim_its_webhook_inside(tmp_path: Path, dns: Dns) -> None:
    dns.answers["mlgate.acme.test"] = ["127.0.0.1"]  # this server under a name of its own
    dns.answers["half.acme.test"] = [PUBLIC, "10.0.0.5"]
    services = make_services(tmp_path / "home")
    try:
        key = consumer_with_key(services)
        client = TestClient(create_app(services))
        for url, rule in [
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://127.0.0.1:6379/", "loopback"),
            ("http://10.0.0.5:8080/admin", "private"),
            ("http://localhost:8000/v1/models", "loopback"),
            ("http://[::1]:8000/", "loopback"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[64:ff9b::a00:5]/", "private"),
            ("http://mlgate.acme.test:8000/hook", "loopback"),
            ("http://half.acme.test/hook", "private"),
            ("http://nowhere.acme.test/hook", "does not resolve"),
        ]:
            answer = client.put("/v1/consumers/acme/webhook", json={"url": url}, headers=key)
            assert answer.status_code == 422, (url, answer.text)
            problem = answer.json()
            assert problem["code"] == "address_refused" and rule in problem["detail"], problem
            assert "Traceback" not in answer.text
        with services.uow() as uow:
            assert uow.plans.consumer_webhook("acme") is None  # nothing half-written
        fine = client.put("/v1/consumers/acme/webhook", json={"url": f"https://{PUBLIC}/hook"},
                          headers=key)  # fmt: skip
        assert fine.status_code == 200 and fine.json()["secret"]
        other = consumer_with_key(services, "other")
        refused = client.put("/v1/consumers/acme/webhook", json={"url": None}, headers=other)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "only admins change another consumer's webhook"
    finally:
        services.close()


def test_a_name_that_turns_inside_after_registration_is_caught_at_send(
    tmp_path: Path, dns: Dns, receiver: Receiver
) -> None:
    name = "hooks.acme.test"
    dns.answers[name] = [PUBLIC]
    services = make_services(
        tmp_path / "home",
        MLGATE_OPERATOR_WEBHOOK_URL="http://169.254.169.254/latest/meta-data/",
        MLGATE_OPERATOR_WEBHOOK_SECRET="operator secret",
    )
    try:
        key = consumer_with_key(services)
        client = TestClient(create_app(services))
        url = f"http://{name}:{receiver.port}/acme"
        answer = client.put("/v1/consumers/acme/webhook", json={"url": url}, headers=key)
        assert answer.status_code == 200, answer.text
        dns.answers[name] = ["127.0.0.1"]  # rebinding: the receiver listens there
        crossing = Crossing("acme", "rows per month", "2026-11", 80, 800, 1000, NOW)
        assert services.notifier.handle(crossing) is True
        assert receiver.got == []  # nothing reached the inside address
        with services.uow() as uow:
            (event,) = uow.audit.query(AuditQuery(action="quota.threshold"))
        consumer, operator = event.detail["deliveries"]
        assert consumer["url"] == url and "127.0.0.1, a loopback address" in consumer["error"]
        assert "169.254.169.254, a link-local address" in operator["error"]
    finally:
        services.close()


def test_an_allowed_receiver_is_called_at_the_address_checked(dns: Dns, receiver: Receiver) -> None:
    name = "pinned.acme.test"
    dns.answers[name] = ["127.0.0.1"]
    outbound = Outbound(AllowList.parse("127.0.0.1"))
    answer = outbound.post(f"http://{name}:{receiver.port}/in?x=1", content=b"{}",
                           headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status == 204
    # One lookup, and the connection went to its answer with the name as the Host.
    assert dns.lookups[name] == 1
    path, headers, body = receiver.got[0]
    assert (path, headers["host"], body) == ("/in?x=1", f"{name}:{receiver.port}", b"{}")
    # Without the allow-list the same receiver is refused, and never called.
    with pytest.raises(AddressRefused, match="loopback"):
        Outbound().post(f"http://{name}:{receiver.port}/in", content=b"{}")
    assert len(receiver.got) == 1
    outbound.close()


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    local = Outbound(AllowList.parse("127.0.0.1"))
    base = f"http://127.0.0.1:{receiver.port}"
    receiver.status, receiver.location = 302, "http://169.254.169.254/latest/meta-data/"
    assert local.post(f"{base}/hook", content=b"{}").status == 302
    outcome = webhook.deliver(f"{base}/hook", "s3cret", {"event": "x"}, outbound=local)
    assert outcome == {"url": f"{base}/hook", "status": 302}
    receiver.location = f"{base}/elsewhere"
    sink = CloudEventsSink(f"{base}/events", outbound=local)
    with pytest.raises(Delivery) as failed:
        sink.send([])
    assert "302" in str(failed.value) and not failed.value.permanent
    assert [path for path, _, _ in receiver.got] == ["/hook", "/hook", "/events"]
    local.close()


def test_answers_are_read_within_a_size_and_a_time_limit(receiver: Receiver) -> None:
    local = Outbound(AllowList.parse("127.0.0.1"), timeout=0.5, max_answer_bytes=1000)
    receiver.status, receiver.answer = 200, b"x" * 1_000_000
    answer = local.post(f"http://127.0.0.1:{receiver.port}/big", content=b"")
    assert len(answer.body) == 1000 and answer.truncated
    silent = socket.socket()  # accepts connections (the kernel's backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="Timeout"):
            local.post(f"http://127.0.0.1:{silent.getsockname()[1]}/", content=b"")
        assert time.monotonic() - started < 3
    finally:
        silent.close()
        local.close()


def test_usage_sinks_refuse_inside_urls_when_made_and_when_sending(dns: Dns) -> None:
    with pytest.raises(AddressRefused, match="a usage sink's host '10.0.0.5'"):
        CloudEventsSink("http://10.0.0.5/events")
    dns.answers["billing.acme.test"] = [PUBLIC]
    sink = CloudEventsSink("https://billing.acme.test/events")
    dns.answers["billing.acme.test"] = ["169.254.169.254"]
    with pytest.raises(Delivery, match="link-local") as failed:
        sink.send([])
    assert not failed.value.permanent  # kept for the next pass, not dead-lettered
