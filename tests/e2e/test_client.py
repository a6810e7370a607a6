"""The Python client against a real `mlgate serve` over a socket: predictions aligned with
lists and DataFrames, batching within the server's row limit, typed errors with the server's
problem details, the 429 retry against a real one-request-per-second plan, training with a job
handle, promotion and rollback, usage as a DataFrame, and the same through AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pandas as pd
import pytest

from mlgate import AsyncClient, Client
from mlgate.client import errors
from mlgate.sources import demo
from tests.e2e.helpers import TOKEN, admin_key, free_port, mlgate, quickstarted, running_server

MAX_ROWS = 50  # the server's limit per request, so that batching shows
FRAME = demo.churn_frame(n_rows=120, seed=4).drop(columns=[demo.ID_COLUMN, demo.TARGET])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, an admin's key, a consumer's key on a plan of one request per second)."""
    home = tmp_path_factory.mktemp("client") / "home"
    quickstarted(home)
    admin = admin_key(home, "predict", "read", "train", "admin")
    mlgate(home, "models", "promote", "churn", "1")
    mlgate(home, "plans", "create", "tiny", "--per-second", "1")
    mlgate(home, "consumers", "create", "acme")
    mlgate(home, "grants", "add", "churn", "consumer", "--consumer", "acme")
    mlgate(home, "consumers", "subscribe", "acme", "tiny")
    made = mlgate(home, "keys", "create", "--consumer", "acme", "--name", "acme").stdout
    match = TOKEN.search(made)
    assert match is not None
    with running_server(home, MLGATE_MAX_ROWS=str(MAX_ROWS), MLGATE_MONITOR_INTERVAL="0") as base:
        yield base, admin, match.group(0)


@pytest.mark.slow(reason="it bears the start of the module's server")
def test_predictions_follow_the_inputs_order_and_index(server: tuple[str, str, str]) -> None:
    base, admin, _ = server
    rows = FRAME.head(5)
    framed = rows.set_axis([10, 11, 12, 13, 14])
    with Client(base, api_key=admin) as client:
        from_list = client.predict("churn", rows.to_dict(orient="records"))
        from_frame = client.predict("churn", framed)
        one = client.predict("churn", rows.iloc[3].to_dict())
        pinned = client.predict("churn", rows, version=1)
        by_alias = client.predict("churn", rows, alias="production")
    assert len(from_list) == 5 and list(from_list) == list(from_frame)
    assert list(one) == [from_list[3]]
    assert list(pinned) == list(by_alias) == list(from_list) and pinned.version == 1
    frame = from_frame.frame()
    assert list(frame.index) == [10, 11, 12, 13, 14]
    assert list(frame["prediction"]) == list(from_list)
    assert from_list.classes == [0, 1]
    assert frame["probability_1"].between(0, 1).all()
    # Predictions agree with the single-row answers: order is kept.
    assert list(from_list) == [client_one(base, admin, r) for r in rows.to_dict(orient="records")]


def client_one(base: str, key: str, row: dict[str, object]) -> object:
    with Client(base, api_key=key) as client:
        return client.predict("churn", [row])[0]


def test_large_inputs_are_split_within_the_servers_limit(server: tuple[str, str, str]) -> None:
    base, admin, _ = server
    with Client(base, api_key=admin) as client:
        whole = client.predict("churn", FRAME)  # 120 rows; the server takes 50 per request
        again = client.predict("churn", FRAME)
        explicit = client.predict("churn", FRAME, batch_size=30)
    assert len(whole) == 120 and list(whole.frame().index) == list(FRAME.index)
    assert len(whole.request_ids) == 3 and len(set(whole.request_ids)) == 3
    assert len(again.request_ids) == 3  # learnt: no refused request this time
    assert len(explicit.request_ids) == 4 and list(explicit) == list(whole)
    pieces = [
        p for i in range(0, 120, 40) for p in client_batch(base, admin, FRAME.iloc[i : i + 40])
    ]
    assert list(whole) == pieces


def test_warnings_are_numbered_by_the_rows_position_across_requests(
    server: tuple[str, str, str],
) -> None:
    """120 rows go as three requests; each answers its rows' warnings from 0, and the client
    numbers them in the input's order."""
    base, admin, _ = server
    changed = FRAME.copy()
    changed.loc[changed.index[[3, 77]], "tenure_months"] = 10_000
    with Client(base, api_key=admin) as client:
        plain = client.predict("churn", FRAME).warnings
        warned = client.predict("churn", changed).warnings
    for row in (3, 77):
        [months] = [w for w in warned[row] if w["column"] == "tenure_months"]
        assert (months["kind"], months["value"]) == ("outside_range", 10_000)
    assert {r: w for r, w in warned.items() if r not in (3, 77)} == {
        r: w for r, w in plain.items() if r not in (3, 77)
    }


def client_batch(base: str, key: str, rows: pd.DataFrame) -> list[object]:
    with Client(base, api_key=key) as client:
        return list(client.predict("churn", rows))


def test_errors_are_typed_and_carry_the_problem(server: tuple[str, str, str]) -> None:
    base, admin, _ = server
    with Client(base, api_key=admin) as client:
        with pytest.raises(errors.NotFound) as missing:
            client.predict("no-such-model", FRAME.head(1))
        assert missing.value.status == 404 and "no-such-model" in str(missing.value)
        with pytest.raises(errors.InvalidInput) as invalid:
            client.predict("churn", [{**FRAME.iloc[0].to_dict(), "tenure_months": "many"}])
        assert invalid.value.status == 422
        assert invalid.value.field is not None and "tenure_months" in invalid.value.field
        with pytest.raises(errors.PayloadTooLarge) as large:
            client.predict("churn", FRAME, batch_size=60)  # asked for: not split again
        assert large.value.max_rows == MAX_ROWS
    stranger = Client(base, api_key="mlg_000000000000_notakeynotakeynotakey")
    with stranger, pytest.raises(errors.Unauthenticated):
        stranger.models()
    with Client(f"http://127.0.0.1:{free_port()}", retries=1, timeout=2) as nowhere:
        with pytest.raises(errors.ConnectionFailed):
            nowhere.models()
        assert nowhere.retried == 1


def test_a_429_is_waited_out_as_retry_after_says(server: tuple[str, str, str]) -> None:
    base, _, consumer = server
    with Client(base, api_key=consumer) as client:
        for _ in range(3):  # one request per second: the later calls wait, then succeed
            assert len(client.predict("churn", FRAME.head(2))) == 2
        assert client.retried >= 1
        with pytest.raises(errors.PermissionDenied):
            client.model("churn")  # a consumer may not read the model's versions
    with Client(base, api_key=consumer, retry_on_429=False) as impatient:
        with pytest.raises(errors.QuotaExceeded) as refused:
            for _ in range(3):
                impatient.predict("churn", FRAME.head(1))
        assert refused.value.retry_after is not None and 0 <= refused.value.retry_after <= 1
        assert refused.value.status == 429 and refused.value.limit


def test_train_wait_promote_rollback_and_usage(server: tuple[str, str, str]) -> None:
    base, admin, _ = server
    with Client(base, api_key=admin) as client:
        assert "churn" in {m["name"] for m in client.models()}
        model = client.model("churn")
        assert {c["name"] for c in model["schema"]["input_schema"]} >= {"tenure_months", "contract"}
        report = client.report("churn", 1)  # the quickstart's logistic regression, as data
        assert report["version"] == 1 and report["evaluation"]["method"] == "holdout"
        terms = {t["term"]: t for t in report["inference"]["terms"]}
        assert report["inference"]["kind"] == "Logit" and "tenure_months" in terms
        assert terms["tenure_months"]["odds_ratio"][0] > 0 and "attachments" not in report
        job = client.train("churn", source="demo", target=demo.TARGET, table=demo.TABLE,
                           algorithm="decision_tree", drop=[demo.ID_COLUMN],
                           report=False)  # fmt: skip
        done = job.wait(timeout=120)
        assert done.state == "succeeded"
        number = int(done.result["version"])
        assert number >= 2
        moved = client.promote("churn", number, "production")
        assert moved["to_version"] == number and moved["from_version"] == 1
        assert client.predict("churn", FRAME.head(1)).version == number
        back = client.rollback("churn", "production")
        assert back["to_version"] == 1
        with pytest.raises(errors.Conflict):
            client.promote("churn", 1, "production")  # already there
        usage = client.usage()
    assert isinstance(usage, pd.DataFrame) and usage["rows"].sum() > 0


def test_the_async_client_does_the_same(server: tuple[str, str, str]) -> None:
    base, admin, consumer = server

    async def run() -> tuple[list[object], list[object], int]:
        async with AsyncClient(base, api_key=admin) as client:
            whole = await client.predict("churn", FRAME)
            with pytest.raises(errors.NotFound):
                await client.predict("nope", FRAME.head(1))
            job = await client.train("churn", source="demo", target=demo.TARGET,
                                     table=demo.TABLE, drop=[demo.ID_COLUMN],
                                     report=False)  # fmt: skip
            done = await client.wait_for_job(job["id"], timeout=120)
            assert done["result"]["model"] == "churn"
            assert not (await client.usage()).empty
            number = int(done["result"]["version"])
            compared = await client.compare("churn", 1, number)
            assert (compared["a"], compared["b"]) == (1, number) and "p_value" in compared
        async with AsyncClient(base, api_key=consumer) as paced:
            for _ in range(3):
                await paced.predict("churn", FRAME.head(1))
            retried = paced.retried
        with Client(base, api_key=admin) as sync:
            expected = list(sync.predict("churn", FRAME))
        return list(whole), expected, retried

    got, expected, retried = asyncio.run(run())
    assert got == expected and retried >= 1


def test_explanations_come_as_a_dataframe_of_contributions(server: tuple[str, str, str]) -> None:
    base, admin, consumer = server
    rows = FRAME.head(4).set_axis([7, 8, 9, 10])
    with Client(base, api_key=admin) as client:
        explained = client.predict("churn", rows, explain=True)
        top = client.predict("churn", rows, top=2)
        plain = client.predict("churn", rows)
    assert plain.explanations is None and explained.explanation is not None
    assert explained.explanation["scale"] in ("log-odds", "probability", "margin")
    frame = explained.explanations
    assert list(frame.index) == [7, 8, 9, 10]
    columns = list(FRAME.columns)
    assert set(columns) <= set(frame.columns)
    sums = frame["base"] + frame[columns].sum(axis=1)
    assert (sums - frame["value"]).abs().max() < 1e-9
    assert set(top.explanations.columns) <= {*columns, "other", "base", "value", "class"}
    assert (
        (top.explanations.drop(columns=["base", "value", "class"]).notna()).sum(axis=1) == 3
    ).all()
    with (
        Client(base, api_key=consumer) as client,
        pytest.raises(errors.PermissionDenied) as refused,
    ):
        client.predict("churn", rows.head(1), explain=True)
    assert refused.value.problem["code"] == "plan_excludes_explanations"
