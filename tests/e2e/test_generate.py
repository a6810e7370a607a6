"""Synthetic rows over HTTP and from the CLI: `POST /v1/models/{name}/generate` behind the
`generate` scope and a grant, metered by the consumer's plan like scored rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e import http
from tests.e2e.helpers import TOKEN, admin_key, mlgate, quickstarted, running_server
from tests.integration.test_gan import customers

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generate")
    home = folder / "home"
    quickstarted(home)  # a plan "starter" and a consumer "demo-customer"
    customers(600).to_csv(folder / "customers.csv", index=False)
    mlgate(home, "sources", "add", "crm", str(folder))
    mlgate(
        home, "train", "synth", "--source", "crm", "--table", "customers", "--algorithm", "gan",
        "--param", "epochs=20", "--no-report",
    )  # fmt: skip
    mlgate(home, "grants", "add", "synth", "consumer", "--consumer", "demo-customer")
    return home


def consumer_key(home: Path, *scopes: str) -> dict[str, str]:
    args = [a for s in scopes for a in ("--scope", s)]
    name = "-".join(scopes)
    out = mlgate(
        home, "keys", "create", "--consumer", "demo-customer", "--name", name, *args
    ).stdout
    match = TOKEN.search(out)
    assert match
    return {"Authorization": f"Bearer {match.group(0)}"}


def test_a_consumer_generates_rows_metered_by_its_plan(home: Path) -> None:
    headers = consumer_key(home, "generate")
    predict_only = consumer_key(home, "predict")
    admin = {"Authorization": f"Bearer {admin_key(home, 'read', 'admin', user='ops')}"}
    with running_server(home) as base, http.Client(base_url=base) as web:
        answer = web.post("/v1/models/synth/generate", json={"n": 25, "seed": 5}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "synth" and body["version"] == 1 and len(body["rows"]) == 25
        assert set(body["rows"][0]) == {"age", "income", "score", "plan", "tenure", "active"}
        assert answer.headers["x-model-version"] == "1" and "ratelimit" in answer.headers
        again = web.post("/v1/models/synth/generate", json={"n": 25, "seed": 5}, headers=headers)
        assert again.json()["rows"] == body["rows"]  # the same seed, the same rows

        refused = web.post("/v1/models/synth/generate", json={"n": 5}, headers=predict_only)
        assert refused.status_code == 403 and "generate" in refused.json()["detail"]
        too_many = web.post("/v1/models/synth/generate", json={"n": 10**9}, headers=headers)
        assert too_many.status_code == 413
        bad = web.post("/v1/models/synth/generate", json={"n": 0}, headers=headers)
        assert bad.status_code == 422
        wrong = web.post("/v1/models/synth/predict", json={"rows": [{}]}, headers=headers)
        assert wrong.status_code in (403, 409)

        month = datetime.now(UTC).strftime("%Y-%m")
        deadline = time.monotonic() + 10  # the usage ledger is written every second
        while True:
            listed = web.get(
                "/v1/usage",
                params={"consumer": "demo-customer", "model": "synth", "month": month},
                headers=admin,
            )
            assert listed.status_code == 200, listed.text
            usage = listed.json()
            served = [u for u in usage if u["status"] == 200]
            if served or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sum(u["requests"] for u in served) == 2
        assert sum(u["rows"] for u in served) == 50  # rows generated count as rows


def test_the_cli_writes_generated_rows_to_a_file(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic.csv"
    result = mlgate(home, "generate", "synth", "-n", "1200", "--seed", "9", "--output", str(out))
    assert "Generated 1,200 rows with synth@v1" in result.stdout
    rows = pd.read_csv(out)
    assert len(rows) == 1200
    assert list(rows.columns) == ["age", "income", "score", "plan", "tenure", "active"]
    parquet = tmp_path / "synthetic.parquet"
    mlgate(home, "generate", "synth", "-n", "1200", "--seed", "9", "--output", str(parquet))
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), rows, check_dtype=False)
    failed = mlgate(home, "generate", "churn", "-n", "5", "--output", str(out), check=False)
    assert (
        failed.returncode != 0 and "only gan models generate rows" in failed.stdout + failed.stderr
    )


def test_a_consumer_forecasts_a_series_over_http(home: Path, tmp_path: Path) -> None:
    from tests.integration.test_forecast import sales

    sales(120).to_csv(tmp_path / "sales.csv", index=False)
    mlgate(home, "sources", "add", "shop", str(tmp_path))
    mlgate(
        home, "train", "demand", "--source", "shop", "--table", "sales", "--target", "sales",
        "--algorithm", "gru", "--no-report", "--param", "order_by=t", "--param", "group_by=store",
        "--param", "season=12", "--param", "window=24", "--param", "horizon=3",
        "--param", "max_epochs=5",
    )  # fmt: skip
    mlgate(home, "grants", "add", "demand", "consumer", "--consumer", "demo-customer")
    headers = consumer_key(home, "predict")
    history = sales(120).query("store == 'north'").sort_values("t")["sales"].tolist()
    with running_server(home) as base, http.Client(base_url=base, headers=headers) as web:
        answer = web.post("/v1/models/demand/forecast", json={"history": history})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "demand" and len(answer.json()["forecast"]) == 3
        short = web.post("/v1/models/demand/forecast", json={"history": history[:4]})
        assert short.status_code == 422 and "reads the last 24" in short.json()["detail"]
        scored = web.post("/v1/models/demand/predict", json={"rows": [{"sales": 1.0}]})
        assert scored.status_code == 409 and "/forecast" in scored.json()["detail"]
