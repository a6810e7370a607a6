"""Model cards with slice metrics and the ML-BOM (cards/, issue 38), over the fakes: slice
metrics equal scikit-learn's on the same holdout rows; numeric columns are cut into quantile
bins and small slices flagged; the card's fields are edited (audited) at the CLI and the API;
the card reads at the CLI (md, json, html), the API and the dashboard; the ML-BOM validates
against CycloneDX's own schema."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk
from typer.testing import CliRunner

from mlgate.access.model import AuditQuery
from mlgate.bootstrap import Services, bootstrap
from mlgate.cards import bom as boms
from mlgate.cards.model import SMALL_SLICE
from mlgate.cli.main import app
from mlgate.errors import InvalidInput
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.settings import Settings
from mlgate.training.compare import holdout_rows
from tests.fakes import FixedClock, InMemoryArtifactStore, in_memory_uow_factory
from tests.unit.test_batch_rules import NOW, train_churn


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Services]:
    db, files, _ = train_churn()  # churn v1: logistic regression, 300 rows, 60 held out
    artifacts = InMemoryArtifactStore()
    artifacts.files = dict(files)
    made = bootstrap(
        Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}),
        unit_of_work=in_memory_uow_factory(copy.deepcopy(db)),
        artifacts=artifacts,
        clock=FixedClock(NOW),
    )
    yield made
    made.close()


def test_slice_metrics_equal_scikit_learns_on_the_same_holdout_rows(s: Services) -> None:
    record = s.cards.slice("churn", 1, ["contract", "tenure_months"], actor="t")
    version = resolve_version(s.uow(), "churn", 1)
    rows = holdout_rows(s.uow(), s.artifacts, version).reset_index(drop=True)
    pipeline = s.predictors.get(version).pipeline  # the fitted pipeline, asked directly
    proba = pipeline.predict_proba(conform(rows, version.columns))[:, 1]
    predicted = pipeline.predict(conform(rows, version.columns))
    truth = rows[version.target].to_numpy()
    assert record.whole["accuracy"] == pytest.approx(version.metrics["accuracy"])
    by_column = {group.column: group for group in record.slices}
    contract = by_column["contract"]
    assert not contract.binned
    assert [x.value for x in contract.slices] == sorted(rows["contract"].unique())
    for found in contract.slices:
        mask = (rows["contract"] == found.value).to_numpy()
        assert found.n_rows == int(mask.sum())
        accuracy = sk.accuracy_score(truth[mask], predicted[mask])
        assert found.metrics["accuracy"] == pytest.approx(accuracy, abs=1e-9)
        assert found.metrics["f1"] == pytest.approx(
            sk.f1_score(truth[mask], predicted[mask], zero_division=0), abs=1e-9
        )
        assert found.metrics["log_loss"] == pytest.approx(
            sk.log_loss(truth[mask], proba[mask], labels=[0, 1]), abs=1e-9
        )
        if len(set(truth[mask])) == 2:
            auc = sk.roc_auc_score(truth[mask], proba[mask])
            assert found.metrics["roc_auc"] == pytest.approx(auc, abs=1e-9)
        assert found.gaps["accuracy"] == pytest.approx(accuracy - record.whole["accuracy"])
        assert found.small == (found.n_rows < SMALL_SLICE)
        if found.n_rows >= 20 and "accuracy" in found.intervals:
            low, high = found.intervals["accuracy"]
            assert low <= found.metrics["accuracy"] <= high
    tenure = by_column["tenure_months"]  # numeric: four quantile bins covering every row
    assert tenure.binned and len(tenure.slices) == 4
    assert sum(x.n_rows for x in tenure.slices) == len(rows)
    first = tenure.slices[0]
    assert first.value.startswith(f"[{rows['tenure_months'].min():.4g}, ")
    upper = float(first.value.split(", ")[1].rstrip("]"))
    mask = (rows["tenure_months"] <= upper).to_numpy()
    assert first.n_rows == int(mask.sum())
    assert first.metrics["brier"] == pytest.approx(
        float(np.mean((proba[mask] - truth[mask]) ** 2)), abs=1e-9
    )


def test_an_unknown_slice_column_is_refused_with_the_columns_there_are(s: Services) -> None:
    with pytest.raises(InvalidInput, match="region is not one") as info:
        s.cards.slice("churn", 1, ["region"], actor="t")
    assert "contract" in str(info.value)


def test_the_card_at_the_cli_edits_slices_and_renders(s: Services, tmp_path: Path) -> None:
    runner = CliRunner()
    edited = runner.invoke(app, ["models", "card", "churn@1", "--set",
                                 "intended_use=retention offers", "--set", "owner=crm-team",
                                 "--slices", "contract"], obj=s)  # fmt: skip
    assert edited.exit_code == 0, edited.output
    text = edited.output
    assert "# Model card: churn v1" in text and "- intended use: retention offers" in text
    assert "- owner: crm-team" in text and "### contract" in text
    assert re.search(r"\| one-year \(small\) \| \d+ \|", text)
    assert "sha256 " + resolve_version(s.uow(), "churn", 1).lineage.data_sha256 in text
    assert "| contract | string |" in text
    as_json = runner.invoke(app, ["models", "card", "churn@1", "--format", "json"], obj=s)
    data = json.loads(as_json.output)
    assert data["owner"] == "crm-team" and data["edited_by"].startswith("cli:")
    assert data["slices"]["columns"][0]["column"] == "contract"
    assert data["evaluation"]["metrics"]["accuracy"]["interval"] is not None
    page = tmp_path / "card.html"
    written = runner.invoke(app, ["models", "card", "churn@1", "--format", "html", "-o",
                                  str(page)], obj=s)  # fmt: skip
    assert written.exit_code == 0 and "<h2>Metrics per slice</h2>" in page.read_text()
    events = s.access.audit_log(AuditQuery(action="models.card"))
    assert len(events) == 2 and {(e.target, e.result) for e in events} == {("churn@1", "ok")}
    refused = runner.invoke(app, ["models", "card", "churn@1", "--set", "colour=red"], obj=s)
    assert refused.exit_code == 1 and "editable fields are intended_use, owner" in refused.output
    marked = runner.invoke(app, ["models", "card", "churn@1", "--set",
                                 "owner=<img src=x onerror=alert(1)> & co"], obj=s)  # fmt: skip
    assert "- owner: &lt;img src=x onerror=alert(1)&gt; &amp; co" in marked.output


def test_the_ml_bom_validates_against_cyclonedx_and_names_what_the_version_needs(
    s: Services, tmp_path: Path
) -> None:
    s.cards.edit("churn", 1, {"intended_use": "retention offers"}, actor="t")
    s.cards.slice("churn", 1, ["contract"], actor="t")
    s.signing.sign("churn", 1, actor="cli:ops")
    out = tmp_path / "bom.json"
    made = CliRunner().invoke(app, ["models", "bom", "churn@1", "-o", str(out)], obj=s)
    assert made.exit_code == 0, made.output
    document = json.loads(out.read_text())
    boms.validate(document)  # CycloneDX 1.6's own JSON schema, in cyclonedx-python-lib
    version = resolve_version(s.uow(), "churn", 1)
    model = document["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["hashes"] == [{"alg": "SHA-256", "content": version.artifact.sha256}]
    card = model["modelCard"]
    assert card["considerations"]["useCases"] == ["retention offers"]
    sliced = [m for m in card["quantitativeAnalysis"]["performanceMetrics"] if "slice" in m]
    assert {m["slice"] for m in sliced} >= {"contract=month-to-month", "contract=two-year"}
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["mlgate:signature:key-id"] == s.signing.key.key_id
    (data,) = [c for c in document["components"] if c["type"] == "data"]
    assert data["hashes"][0]["content"] == version.lineage.data_sha256
    libraries = {c["name"]: c["version"] for c in document["components"] if c["type"] == "library"}
    assert libraries["scikit-learn"] == version.library_versions["scikit-learn"]
    # what the artifact needs, not every library installed at training (found by the review:
    # a logistic regression's BOM listed torch, catboost and lightgbm)
    assert set(libraries) | {"python"} == set(boms.CORE_LIBRARIES) & set(version.library_versions)
    assert {"xgboost", "torch"} <= set(version.library_versions)  # installed, recorded
    assert not {"xgboost", "lightgbm", "catboost", "torch"} & set(libraries)  # not needed
    booster = dataclasses.replace(version, algorithm="xgboost")
    assert set(boms.needed_libraries(booster)) == set(libraries) | {"python", "xgboost"}
    card["modelParameters"]["task"] = 7  # the check is real: a wrong type is refused
    with pytest.raises(InvalidInput, match="does not validate"):
        boms.validate(document)


def test_the_api_and_the_dashboard_serve_the_card(s: Services) -> None:
    from starlette.testclient import TestClient

    from mlgate.access.accounts import create_user
    from mlgate.api.app import create_app
    from tests.secrets_watch import remember

    password = remember("admin pass phrase for the cards test")
    create_user(s.uow(), by=None, name="boss", password=password, is_admin=True, now=NOW)
    with TestClient(create_app(s), base_url="http://testserver") as client:
        token = client.post("/v1/auth/login", json={"name": "boss", "password": password})
        boss = {"Authorization": f"Bearer {token.json()['token']}"}
        base = "/v1/models/churn/versions/1"
        assert client.get(f"{base}/card").status_code == 401
        put = client.put(f"{base}/card", headers=boss,
                         json={"owner": "risk", "slices": ["internet_service"]})  # fmt: skip
        assert put.status_code == 200, put.text
        card = client.get(f"{base}/card", headers=boss).json()
        assert card["owner"] == "risk" and card["edited_by"] == "user:boss"
        assert card["slices"]["columns"][0]["column"] == "internet_service"
        bom = client.get(f"{base}/bom", headers=boss)
        assert bom.status_code == 200 and bom.headers["content-type"].startswith(
            "application/vnd.cyclonedx+json"
        )
        assert bom.json()["metadata"]["component"]["name"] == "churn"
        form = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        client.post("/ui/login", data={"name": "boss", "password": password,
                                       "csrf": csrf.group(1)})  # fmt: skip
        page = client.get("/ui/models/churn/versions/1/card")
        assert page.status_code == 200, page.text[:300]
        assert "internet_service" in page.text and "risk" in page.text
        assert 'href="/ui/models/churn/versions/1/card"' in client.get("/ui/models/churn").text


def test_training_with_slices_keeps_them_with_the_card(s: Services, tmp_path: Path) -> None:
    import sqlite3

    from mlgate.sources import demo

    with sqlite3.connect(tmp_path / "crm.db") as db:
        demo.churn_frame(n_rows=200).to_sql(demo.TABLE, db, index=False)
    s.sources.add(name="crm2", url=f"sqlite:///{tmp_path / 'crm.db'}", cwd=tmp_path)
    trained = CliRunner().invoke(app, ["train", "churn", "--source", "crm2", "--table",
                                       demo.TABLE, "--target", demo.TARGET, "--drop",
                                       demo.ID_COLUMN, "--no-report", "--slices",
                                       "internet_service"], obj=s)  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "mlgate models card churn@2" in trained.output
    card = s.cards.card("churn", 2).to_json()
    (group,) = card["slices"]["columns"]
    assert group["column"] == "internet_service"
    assert sum(x["n_rows"] for x in group["slices"]) == card["evaluation"]["n_rows"] == 40


def test_an_id_column_a_repeated_column_and_an_import_without_holdout_slice_sensibly(
    s: Services,
) -> None:
    # found trying the cards as a new user would: an id column gave a slice per holdout row
    # (unbounded work and card), a column named twice was computed twice, and an imported
    # version without a holdout failed with KeyError (a traceback; a 500 at the API)

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from mlgate.cards.model import MAX_SLICES
    from mlgate.cards.slices import slice_metrics
    from mlgate.imports.files import identify
    from mlgate.imports.service import ImportRequest, import_model
    from mlgate.training.evaluate import Outputs

    version = resolve_version(s.uow(), "churn", 1)
    rows = holdout_rows(s.uow(), s.artifacts, version)
    many = rows.sample(MAX_SLICES + 1, replace=True, random_state=0).reset_index(drop=True)
    many["row_id"] = [f"R{i}" for i in range(len(many))]
    truth = np.asarray(many[version.target].to_numpy(), dtype="int64")
    outputs = Outputs(truth, np.column_stack([1.0 - truth, truth]).astype("float64"))
    with pytest.raises(InvalidInput, match=f"row_id has {MAX_SLICES + 1} distinct values"):
        slice_metrics(version, many, truth, outputs, ["row_id"])
    record = s.cards.slice("churn", 1, ["contract", "contract"], actor="t")
    assert [group.column for group in record.slices] == ["contract"]

    frame = rows[["tenure_months", "monthly_charges"]].astype("float64")
    fitted = LogisticRegression().fit(frame, rows[version.target].astype(int))
    example = frame.head(5)
    import_model(s.uow(), s.artifacts,
                 ImportRequest("ext", identify("ext.skops", sio.dumps(fitted)),
                               input_example=example, task="classification"),
                 now=NOW)  # fmt: skip
    with pytest.raises(InvalidInput, match="imported without a holdout"):
        s.cards.slice("ext", 1, ["tenure_months"], actor="t")


def _crm(s: Services, tmp_path: Path) -> None:
    import sqlite3

    from mlgate.sources import demo

    with sqlite3.connect(tmp_path / "crm.db") as db:
        demo.churn_frame(n_rows=200).to_sql(demo.TABLE, db, index=False)
    s.sources.add(name="crm2", url=f"sqlite:///{tmp_path / 'crm.db'}", cwd=tmp_path)


def test_a_slice_column_that_is_not_there_is_refused_before_anything_is_fitted(
    s: Services, tmp_path: Path
) -> None:
    from mlgate.sources import demo

    _crm(s, tmp_path)
    trained = CliRunner().invoke(app, ["train", "churn", "--source", "crm2", "--table",
                                       demo.TABLE, "--target", demo.TARGET, "--no-report",
                                       "--slices", "internet_service,regoin"], obj=s)  # fmt: skip
    assert trained.exit_code != 0
    flat = " ".join(trained.output.split())
    assert "regoin is not a column of the rows read" in flat and "internet_service" in flat
    assert [v.number for v in s.registry.versions("churn")[1]] == [1]  # nothing was registered
    targeted = CliRunner().invoke(app, ["train", "churn", "--source", "crm2", "--table",
                                        demo.TABLE, "--target", demo.TARGET, "--no-report",
                                        "--slices", demo.TARGET], obj=s)  # fmt: skip
    assert targeted.exit_code != 0 and "nor may the target slice itself" in targeted.output


def test_training_from_the_api_and_the_dashboard_slices_the_card(
    s: Services, tmp_path: Path
) -> None:
    import time

    from starlette.testclient import TestClient

    from mlgate.access.accounts import create_user
    from mlgate.api.app import create_app
    from mlgate.sources import demo
    from tests.secrets_watch import remember

    _crm(s, tmp_path)
    password = remember("admin pass phrase for the slices test")
    create_user(s.uow(), by=None, name="boss", password=password, is_admin=True, now=NOW)

    def finished(client: TestClient, job: str, boss: dict[str, str]) -> dict[str, object]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = client.get(f"/v1/jobs/{job}", headers=boss).json()
            if state["state"] not in ("queued", "running"):
                return state  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"job {job} did not finish")

    with TestClient(create_app(s), base_url="http://testserver") as client:
        token = client.post("/v1/auth/login", json={"name": "boss", "password": password})
        boss = {"Authorization": f"Bearer {token.json()['token']}"}
        body = {"source": "crm2", "table": demo.TABLE, "target": demo.TARGET,
                "drop": [demo.ID_COLUMN], "report": False}  # fmt: skip
        too_many = client.post("/v1/models/churn/train", headers=boss,
                               json=body | {"slices": [f"c{i}" for i in range(21)]})  # fmt: skip
        assert too_many.status_code == 422
        started = client.post("/v1/models/churn/train", headers=boss,
                              json=body | {"slices": ["contract"]})  # fmt: skip
        assert started.status_code == 202, started.text
        state = finished(client, started.json()["id"], boss)
        assert state["state"] == "succeeded", state
        card = client.get("/v1/models/churn/versions/2/card", headers=boss).json()
        assert [g["column"] for g in card["slices"]["columns"]] == ["contract"]
        assert card["edited_by"] == "user:boss"  # sliced in the trainer's name

        wrong = client.post("/v1/models/churn/train", headers=boss,
                            json=body | {"slices": ["regoin"]})  # fmt: skip
        failed = finished(client, wrong.json()["id"], boss)
        assert failed["state"] == "failed" and "regoin" in str(failed["error"])
        assert [v.number for v in s.registry.versions("churn")[1]] == [1, 2]

        form = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        client.post("/ui/login", data={"name": "boss", "password": password,
                                       "csrf": csrf.group(1)})  # fmt: skip
        page = client.get("/ui/train")
        assert 'name="slices"' in page.text
        token_ui = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token_ui
        sent = client.post("/ui/train", follow_redirects=False,
                           data={"model": "churn", "source": "crm2", "table": demo.TABLE,
                                 "target": demo.TARGET, "drop": demo.ID_COLUMN,
                                 "slices": "internet_service, contract",
                                 "csrf": token_ui.group(1)})  # fmt: skip
        assert sent.status_code == 303, sent.text[:300]
        job = sent.headers["location"].rsplit("/", 1)[1]
        assert finished(client, job, boss)["state"] == "succeeded"
        card = client.get("/v1/models/churn/versions/3/card", headers=boss).json()
        assert [g["column"] for g in card["slices"]["columns"]] == ["internet_service", "contract"]


def test_a_card_edit_refused_for_its_slices_leaves_the_owner_as_it_was(s: Services) -> None:
    """Found in review: `PUT …/card {"owner": ..., "slices": ["nope"]}` answered 422 yet kept
    the new owner (and so did `mlgate models card --set owner=... --slices nope`)."""
    from starlette.testclient import TestClient

    from mlgate.access.accounts import create_user
    from mlgate.api.app import create_app
    from tests.secrets_watch import remember

    s.cards.edit("churn", 1, {"owner": "risk"}, actor="cli:t")
    password = remember("admin pass phrase for the half-written card test")
    create_user(s.uow(), by=None, name="boss", password=password, is_admin=True, now=NOW)
    with TestClient(create_app(s), base_url="http://testserver") as client:
        token = client.post("/v1/auth/login", json={"name": "boss", "password": password})
        boss = {"Authorization": f"Bearer {token.json()['token']}"}
        put = client.put("/v1/models/churn/versions/1/card", headers=boss,
                         json={"owner": "half-written", "slices": ["nope"]})  # fmt: skip
        assert put.status_code == 422 and "nope is not one" in put.text
    assert s.cards.card("churn", 1).data["owner"] == "risk"
    result = CliRunner().invoke(
        app,
        ["models", "card", "churn@1", "--set", "owner=half-written", "--slices", "nope"],
        obj=s,
    )
    assert result.exit_code == 1 and "nope is not one" in result.output
    assert s.cards.card("churn", 1).data["owner"] == "risk"


def test_card_fields_with_control_characters_or_an_owner_past_its_column_are_refused(
    s: Services,
) -> None:
    """Found in review: a NUL in the owner answered 500 on PostgreSQL (text cannot hold it),
    a line break in it wrote headings into the Markdown card, and the CLI took a 300-character
    owner and kept 255 of it without a word (the API refused it at 255)."""
    from starlette.testclient import TestClient

    from mlgate.access.accounts import create_user
    from mlgate.api.app import create_app
    from tests.secrets_watch import remember

    for fields in ({"owner": "a\x00b"}, {"owner": "crm\n# heading"},
                   {"intended_use": "ok\x01"}, {"owner": "o" * 256}):  # fmt: skip
        with pytest.raises(InvalidInput):
            s.cards.edit("churn", 1, fields, actor="cli:t")
    s.cards.edit("churn", 1, {"intended_use": "line one\nline two\tand a tab"}, actor="cli:t")
    assert s.cards.card("churn", 1).data["intended_use"] == "line one\nline two\tand a tab"
    result = CliRunner().invoke(
        app, ["models", "card", "churn@1", "--set", "owner=" + "o" * 300], obj=s
    )
    assert result.exit_code == 1 and "at most 255 characters" in result.output
    password = remember("admin pass phrase for the control characters test")
    create_user(s.uow(), by=None, name="boss", password=password, is_admin=True, now=NOW)
    with TestClient(create_app(s), base_url="http://testserver") as client:
        token = client.post("/v1/auth/login", json={"name": "boss", "password": password})
        boss = {"Authorization": f"Bearer {token.json()['token']}"}
        put = client.put("/v1/models/churn/versions/1/card", headers=boss,
                         json={"owner": "a\u0000b"})  # fmt: skip
        assert put.status_code == 422 and "control characters" in put.text
    assert s.cards.card("churn", 1).data["owner"] == ""


def test_a_card_edit_s_audit_event_says_what_was_set(s: Services) -> None:
    """Found in review: each `models.card` event's detail was empty, so the audit trail in the
    dossier showed that the intended use changed but never from what to what."""
    from mlgate.access.audit import acting

    with acting("cli:t"):
        s.cards.annotate("churn", 1, {"intended_use": "retention offers", "owner": "crm"},
                         ["contract", "contract"], actor="cli:t")  # fmt: skip
    events = s.access.audit_log(AuditQuery(action="models.card"))
    details = sorted((e.detail for e in events), key=len)
    assert details == [{"slices": ["contract"]},
                       {"intended_use": "retention offers", "owner": "crm"}]  # fmt: skip


def test_the_cards_integrity_says_what_checking_the_signature_finds_now(s: Services) -> None:
    # found by the review: a tampered version's card still said "signed with key …"
    from mlgate.cards import render

    assert "signature checked now" not in render.markdown(s.cards.card("churn", 1))  # unsigned
    s.signing.sign("churn", 1, actor="t")
    assert "signature checked now: the files are the ones signed" in render.markdown(
        s.cards.card("churn", 1)
    )
    version = resolve_version(s.uow(), "churn", 1)
    key = version.artifact.key
    assert isinstance(s.artifacts, InMemoryArtifactStore)
    s.artifacts.files[key] = s.artifacts.files[key] + b"tampered"
    card = s.cards.card("churn", 1)
    assert card.to_json()["verification"]["state"] == "mismatch"
    text = render.markdown(card)
    assert "**signature checked now: mismatch**" in text
    assert "signature checked now: mismatch" in render.html_page(card)
