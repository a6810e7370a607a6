"""Monitoring against a real `mlgate serve`: sampled prediction logging (nothing at 0%), drift
of one shifted feature found and of no other, exact live accuracy from feedback, a correctly
signed webhook to a real receiver, the state on /metrics, and `mlgate monitor`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlgate.monitoring.webhook import verify
from mlgate.sources import demo
from tests.e2e import http
from tests.e2e.helpers import admin_key, mlgate, quickstarted, running_server

SECRET = "webhook-secret-0123456789"
PASSWORD = "watch password 2026"
SHIFT = 60.0  # added to monthly_charges (the training rows: ~20 to ~120)


def rows_of(seed: int, n: int, *, shifted: bool) -> list[dict[str, Any]]:
    frame = demo.churn_frame(n_rows=n, seed=seed).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    if shifted:
        frame["monthly_charges"] = frame["monthly_charges"] + SHIFT
    return [
        {k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("monitoring") / "home"
    quickstarted(home)
    key = admin_key(home, "predict", "read", "train", "admin")
    with running_server(
        home, MLGATE_MONITOR_INTERVAL="0", MLGATE_OUTBOUND_ALLOW="127.0.0.1"
    ) as base:
        yield home, base, {"Authorization": f"Bearer {key}"}


def configure(base: str, headers: dict[str, str], **settings: Any) -> dict[str, Any]:
    answer = http.put(f"{base}/v1/models/churn/monitoring/settings", json=settings,
                       headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def send(
    base: str, headers: dict[str, str], batches: list[list[dict[str, Any]]], tag: str
) -> dict[str, list[Any]]:
    """One request per batch with our own request ids; the predictions by request id."""
    out = {}
    with http.Client(base_url=base, headers=headers) as client:
        for i, rows in enumerate(batches):
            request_id = f"{tag}-{i:05d}"
            answer = client.post("/v1/models/churn/predict", json={"rows": rows},
                                 headers={"X-Request-Id": request_id})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == request_id
            out[request_id] = answer.json()["predictions"]
    return out


def report(base: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = http.get(f"{base}/v1/models/churn/monitoring", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def logged_rows(base: str, headers: dict[str, str]) -> int:
    return sum(w["rows"] for w in report(base, headers, by="version")["windows"])


def wait_for_rows(base: str, headers: dict[str, str], rows: int) -> None:
    deadline = time.monotonic() + 15
    while logged_rows(base, headers) < rows:
        assert time.monotonic() < deadline, "the sampled rows never reached the log"
        time.sleep(0.2)


def test_sampling_at_zero_stores_nothing(served: tuple[Path, str, dict[str, str]]) -> None:
    home, base, headers = served
    assert configure(base, headers, sample_rate=0.0)["sample_rate"] == 0.0
    time.sleep(1.1)  # the servers' settings are kept a second
    send(base, headers, [rows_of(1, 20, shifted=False)] * 10, "zero")
    time.sleep(2.5)  # past the writer's next round
    assert logged_rows(base, headers) == 0
    from mlgate.bootstrap import bootstrap
    from mlgate.settings import Settings

    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(home)}), migrate_schema=False)
    try:
        with services.uow() as uow:
            assert uow.monitoring.count_logged("churn") == 0
    finally:
        services.close()


def test_a_shifted_feature_drifts_and_no_other_does_and_feedback_gives_exact_accuracy(
    served: tuple[Path, str, dict[str, str]], receiver: str
) -> None:
    home, base, headers = served
    configure(base, headers, sample_rate=1.0, exclude_columns=["payment_method"],
              min_accuracy=0.99, webhook_url=receiver, webhook_secret=SECRET)  # fmt: skip
    time.sleep(1.1)
    shifted = rows_of(11, 1200, shifted=True)
    predictions = send(base, headers, [shifted[i : i + 40] for i in range(0, 1200, 40)], "drift")
    wait_for_rows(base, headers, 1200)

    window = report(base, headers, by="version")["windows"][0]
    assert window["rows"] == 1200 and window["requests"] == 30
    assert window["drifted"] == ["monthly_charges"], window["features"]
    assert window["features"]["monthly_charges"]["psi"] > 1.0
    assert "payment_method" not in window["features"]  # excluded: never stored
    stable = [f for name, f in window["features"].items() if name != "monthly_charges"]
    assert len(stable) >= 6 and all(f["psi"] < 0.05 for f in stable), window["features"]

    # Feedback: the true label is the prediction for the first 30 rows of each call, the other
    # class for the last 10: accuracy 900 / 1200 exactly.
    feedback = [
        {"request_id": rid, "labels": [p if i < 30 else 1 - p for i, p in enumerate(said)]}
        for rid, said in predictions.items()
    ] + [{"request_id": "never-logged-0001", "label": 1}]
    answer = http.post(f"{base}/v1/models/churn/feedback", json={"feedback": feedback},
                        headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1200
    assert answer.json()["unmatched"] == ["never-logged-0001"]
    window = report(base, headers, by="version")["windows"][0]
    assert window["labelled"] == 1200 and window["accuracy"] == 900 / 1200
    by_day = report(base, headers, by="day")["windows"]
    assert sum(w["labelled"] for w in by_day) == 1200
    by_consumer = report(base, headers, by="consumer")["windows"]
    assert [(w["key"], w["rows"], w["drifted"]) for w in by_consumer] == [
        ("user:ops", 1200, ["monthly_charges"])
    ]
    assert report(base, headers, by="consumer", consumer="consumer:nobody")["windows"] == []

    # A label that is not a class, and a row the call did not have, are refused with the field.
    for item, words in (
        ({"request_id": "drift-00000", "label": "maybe"}, "not one of"),
        ({"request_id": "drift-00000", "row": 40, "label": 1}, "row 40"),
    ):
        bad = http.post(f"{base}/v1/models/churn/feedback", headers=headers,
                         json={"feedback": [item]})  # fmt: skip
        assert bad.status_code == 422 and words in bad.json()["detail"], bad.text

    # The check: drifting and degraded (accuracy 0.75 < 0.99), told to the webhook, signed.
    Receiver.received.clear()
    check = http.post(f"{base}/v1/models/churn/monitoring/check", headers=headers)
    assert check.status_code == 200, check.text
    assert check.json()["state"] == "drifting+degraded"
    assert check.json()["details"]["webhook"]["status"] == 204
    assert len(Receiver.received) == 1
    sent_headers, body = Receiver.received[0]
    timestamp = sent_headers["x-mlgate-timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert sent_headers["x-mlgate-signature"] == "sha256=" + expected.hexdigest()
    assert verify(SECRET, timestamp, body, sent_headers["x-mlgate-signature"])
    assert not verify("another-secret-000000", timestamp, body, sent_headers["x-mlgate-signature"])
    event = json.loads(body)
    assert event["model"] == "churn" and event["state"] == "drifting+degraded"
    assert event["previous"] == "ok"
    # The same state again: no second call.
    assert (
        http.post(f"{base}/v1/models/churn/monitoring/check", headers=headers).json()["state"]
        == "drifting+degraded"
    )
    assert len(Receiver.received) == 1

    metrics = http.get(f"{base}/metrics", headers=headers).text
    assert 'mlgate_model_alert{model="churn",state="drifting"} 1.0' in metrics
    assert 'mlgate_model_alert{model="churn",state="ok"} 0.0' in metrics
    assert 'mlgate_model_live_accuracy{model="churn",version="1"} 0.75' in metrics
    assert 'mlgate_model_drift_psi{model="churn",version="1",feature="monthly_charges"}' in metrics

    shown = mlgate(home, "monitor", "churn", "--by", "version").stdout
    assert "monthly_charges" in shown and "DRIFT" in shown and "accuracy 0.7500" in shown
    assert shown.count("DRIFT") == 1 + window["prediction"]["drifted"]


def test_bad_settings_are_refused_with_the_field(served: tuple[Path, str, dict[str, str]]) -> None:
    _, base, headers = served
    for body, field in (
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"webhook_url": "ftp://example.org/x"}, "webhook_url"),
        ({"webhook_url": "http://10.0.0.5/", "webhook_secret": "s" * 16}, "private address"),
        ({"colour": "red"}, "colour"),
    ):
        answer = http.put(f"{base}/v1/models/churn/monitoring/settings", json=body,
                           headers=headers)  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert field in answer.text
    missing = http.get(f"{base}/v1/models/nope/monitoring", headers=headers)
    assert missing.status_code in (403, 404)


def test_the_dashboard_charts_the_drift(served: tuple[Path, str, dict[str, str]]) -> None:
    """After the drift test above: the model's monitoring page shows the state, the PSI bars
    and the flagged feature."""
    import re

    from mlgate.access import accounts
    from tests.conftest import make_services

    home, base, _ = served
    services = make_services(home)
    try:
        accounts.create_user(services.uow(), by=None, name="watcher", password=PASSWORD,
                             is_admin=True, now=services.clock())  # fmt: skip
    finally:
        services.close()
    with http.Client(base_url=base) as client:
        form = client.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        login = client.post("/ui/login", data={"name": "watcher", "password": PASSWORD,
                                                "csrf": token.group(1)})  # fmt: skip
        assert login.status_code == 303, login.text[:300]
        page = client.get("/ui/models/churn/monitoring")
    assert page.status_code == 200, page.text[:500]
    assert "State: drifting+degraded" in page.text
    assert "PSI per feature, version 1" in page.text and "<svg" in page.text
    assert re.search(
        r"monthly_charges</th><td>[0-9.]+</td><td>ks</td><td>[^<]+</td><td>DRIFT", page.text
    )
    assert "accuracy 0.7500 on 1,200 labels" in page.text
