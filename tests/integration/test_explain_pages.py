"""Why this prediction, on the pages: the dashboard explains a pasted row and a logged one (from
the monitoring page's list), the portal lets a consumer whose plan includes explanations try a
row; each draws the row's waterfall, its numbers adding up to the value."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.access import accounts
from mlgate.access.grants import add_grant
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.columns import Column
from mlgate.errors import ConfigError
from mlgate.plans.service import create_plan, make_plan, subscribe
from mlgate.registry.aliases import promote
from mlgate.settings import Settings
from mlgate.training.profiles import profile_of
from mlgate.training.service import read_snapshot
from tests.integration.test_dashboard import Site, csrf_of, login
from tests.integration.test_explanations import table, trained, world  # noqa: F401

ADMIN = ("root", "operator secret 2026")
ROW = {"x1": 1.5, "x2": None, "color": "red", "size": "M"}
TEXTAREA = re.compile(r'<textarea id="f-row" name="row"[^>]*>(.*?)</textarea>', re.S)
NUMBER = re.compile(r"<th scope=\"row\">(base|x1|x2|color|size|value)</th><td>([-+0-9.e]+)</td>")


@pytest.fixture(scope="module")
def site(world: Services) -> Iterator[tuple[Site, str]]:  # noqa: F811
    name = trained(world, "xgboost", "binary")
    now = world.clock()
    accounts.create_user(world.uow(), by=None, name=ADMIN[0], password=ADMIN[1], is_admin=True,
                         now=now)  # fmt: skip
    for consumer, plan, explain in (("seer", "sight", True), ("blind", "nosight", False)):
        create_plan(world.uow(), make_plan(plan, now, explain=explain), by=None)
        accounts.create_consumer(world.uow(), by=None, name=consumer, description="", now=now)
        accounts.set_consumer_password(world.uow(), consumer, f"a long secret for {consumer[::-1]}",
                                       by=None, now=now)  # fmt: skip
        subscribe(world.uow(), by=None, consumer=consumer, plan=plan, now=now)
        add_grant(world.uow(), by=None, subject_kind="consumer", subject=consumer, target=name,
                  role="consumer", now=now, actor="test")  # fmt: skip
    world.monitor.configure(name, sample_rate=1.0)
    with TestClient(create_app(world)) as client:
        yield Site(client.app, world.settings.home, {}), name


def numbers(page: str) -> dict[str, float]:
    return {k: float(v) for k, v in NUMBER.findall(page)}


def test_the_dashboard_explains_a_pasted_row(site: tuple[Site, str]) -> None:
    app, name = site
    admin = login(app, "ui", *ADMIN)
    form = admin.get(f"/ui/models/{name}/explain")
    assert form.status_code == 200 and "&#34;x1&#34;: " in form.text  # a row to start from
    token = csrf_of(admin, f"/ui/models/{name}/explain")
    page = admin.post(f"/ui/models/{name}/explain", data={"row": json.dumps(ROW), "csrf": token})
    assert page.status_code == 200, page.text[:400]
    assert "<svg" in page.text and "Predicted" in page.text and "tree_shap" in page.text
    found = numbers(page.text)
    parts = sum(found[c] for c in ("x1", "x2", "color", "size"))
    assert found["value"] == pytest.approx(found["base"] + parts, abs=2e-3)  # shown to 4 digits
    bad = admin.post(f"/ui/models/{name}/explain", data={"row": "[1, 2]", "csrf": token})
    assert bad.status_code == 422 and "one JSON object" in bad.text
    # The error is shown on the form's own page, the pasted text kept there to correct.
    assert 'id="explain-error"' in bad.text and "Please check the form" not in bad.text
    assert '<textarea id="f-row" name="row" rows="10" spellcheck="false">[1, 2]</textarea>' in (
        bad.text
    )
    unknown = admin.post(f"/ui/models/{name}/explain",
                         data={"row": json.dumps({"x1": "many"}), "csrf": token})  # fmt: skip
    assert unknown.status_code == 422 and 'id="explain-error"' in unknown.text


def test_the_monitoring_page_explains_a_logged_prediction(
    world: Services,  # noqa: F811
    site: tuple[Site, str],
) -> None:
    app, name = site
    admin = login(app, "ui", *ADMIN)
    token = csrf_of(admin, f"/ui/models/{name}/explain")
    admin.post(f"/ui/models/{name}/explain", data={"row": json.dumps(ROW), "csrf": token})
    world.recorder.flush()
    monitoring = admin.get(f"/ui/models/{name}/monitoring")
    link = re.search(r'href="(/ui/models/[^"]+/explain\?request_id=[^"]+)"', monitoring.text)
    assert link, monitoring.text[-2000:]
    logged = admin.get(link.group(1).replace("&amp;", "&"))
    assert logged.status_code == 200 and "A logged prediction" in logged.text
    assert "<svg" in logged.text and numbers(logged.text)["x1"] != 0
    missing = admin.get(f"/ui/models/{name}/explain?request_id=nope")
    assert missing.status_code == 404


def test_the_portal_lets_a_consumer_try_a_row_when_its_plan_says_so(
    site: tuple[Site, str],
) -> None:
    app, name = site
    seer = login(app, "portal", "seer", "a long secret for rees")
    page = seer.get(f"/portal/models/{name}")
    assert "Try a row" in page.text and 'name="row"' in page.text
    token = csrf_of(seer, f"/portal/models/{name}")
    tried = seer.post(
        f"/portal/models/{name}/explain", data={"row": json.dumps(ROW), "csrf": token}
    )
    assert tried.status_code == 200 and "<svg" in tried.text and "log-odds" in tried.text
    blind = login(app, "portal", "blind", "a long secret for dnilb")
    shown: Any = blind.get(f"/portal/models/{name}")
    assert "does not include explanations" in shown.text and 'name="row"' not in shown.text
    token = csrf_of(blind, f"/portal/models/{name}")
    refused = blind.post(f"/portal/models/{name}/explain",
                         data={"row": json.dumps(ROW), "csrf": token})  # fmt: skip
    assert refused.status_code == 403 and "does not include explanations" in refused.text


def test_both_pages_warn_of_a_row_outside_what_training_saw(site: tuple[Site, str]) -> None:
    app, name = site
    odd = {**ROW, "x1": 1e6, "color": "ultraviolet"}
    admin = login(app, "ui", *ADMIN)
    seer = login(app, "portal", "seer", "a long secret for rees")
    for who, area in ((admin, "ui"), (seer, "portal")):
        token = csrf_of(who, f"/{area}/models/{name}" + ("/explain" if area == "ui" else ""))
        within = who.post(f"/{area}/models/{name}/explain",
                          data={"row": json.dumps(ROW), "csrf": token})  # fmt: skip
        assert within.status_code == 200 and 'class="caution"' not in within.text
        page = who.post(f"/{area}/models/{name}/explain",
                        data={"row": json.dumps(odd), "csrf": token})  # fmt: skip
        assert page.status_code == 200 and "<svg" in page.text
        caution = re.search(r'<div class="caution"[^>]*>(.*?)</div>', page.text, re.S)
        assert caution, page.text[:2000]
        shown = html.unescape(caution.group(1))
        assert "<code>outside_range</code>: x1 is 1000000, outside the range" in shown
        assert '<code>unseen_category</code>: color is "ultraviolet"' in shown


def _cell(page: str, column: str, cell: str) -> str:
    """The text of one cell of the portal's input table."""
    row = re.search(rf'<tr data-column="{column}">(.*?)</tr>', page, re.S)
    assert row, page[:2000]
    found = re.search(rf'<td class="{cell}">(?:<code>)?(.*?)(?:</code>)?</td>', row.group(1))
    assert found
    return html.unescape(found.group(1))


def _pre(page: str, name: str) -> str:
    found = re.search(rf'<pre id="ex-{name}" class="code">(.*?)</pre>', page, re.S)
    assert found
    return html.unescape(found.group(1))


def test_the_portal_examples_send_typical_training_values(
    world: Services,  # noqa: F811
    site: tuple[Site, str],
) -> None:
    app, name = site
    snapshot = read_snapshot(world.uow(), world.artifacts, name, 1)
    median = snapshot["x1"].median()
    colors = snapshot["color"].value_counts()
    page = login(app, "portal", "seer", "a long secret for rees").get(f"/portal/models/{name}")
    assert page.status_code == 200
    assert "answered by <strong>version 1</strong>" in page.text
    # Each column: its type, what training saw of it, and the value the examples send.
    assert float(_cell(page.text, "x1", "example")) == pytest.approx(median, rel=1e-5)
    low, high = _cell(page.text, "x1", "seen").split(" – ")
    assert float(low) == pytest.approx(snapshot["x1"].min(), rel=1e-5)
    assert float(high) == pytest.approx(snapshot["x1"].max(), rel=1e-5)
    assert _cell(page.text, "color", "example") == json.dumps(colors.index[0])
    assert _cell(page.text, "color", "seen").startswith(json.dumps(colors.index[0]) + ", ")
    # The same row in every example and in "Try a row", which the model scores as it is.
    client, curl, http = (_pre(page.text, tab) for tab in ("client", "curl", "http"))
    sent = json.loads(http.split("\n\n", 1)[1])["rows"][0]
    assert sent["x1"] == pytest.approx(median, rel=1e-5) and sent["color"] == colors.index[0]
    assert json.dumps(sent) in curl and "from mlgate import Client" in client
    assert f'"x1": {sent["x1"]!r},' in client and f'client.predict("{name}", row)' in client
    assert http.startswith(f"POST /v1/models/{name}/predict HTTP/1.1\nHost: testserver\n")
    pasted = re.search(r'<textarea[^>]*name="row"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert pasted and json.loads(html.unescape(pasted.group(1))) == sent
    seer = login(app, "portal", "seer", "a long secret for rees")
    token = csrf_of(seer, f"/portal/models/{name}")
    tried = seer.post(
        f"/portal/models/{name}/explain", data={"row": json.dumps(sent), "csrf": token}
    )
    assert tried.status_code == 200 and "<svg" in tried.text


def test_a_column_training_never_saw_filled_stays_null() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "gone": [None, None, None], "flag": [1, 0, 1],
                          "note": ["one's own words", "another's", "a third"]})  # fmt: skip
    columns = (Column("x", "number"), Column("gone", "number"), Column("flag", "boolean"),
               Column("note", "text"))  # fmt: skip
    typical = profile_of(frame, columns, "typical")
    # Typical: nothing of any one row (free text that no two rows share is left empty).
    assert typical.example == {"x": 2, "gone": None, "flag": True, "note": ""}
    assert typical.columns[1].present == 0 and typical.columns[0].low == 1
    real = profile_of(frame, columns, "row")
    assert real.example == {"x": 1, "gone": None, "flag": True, "note": "one's own words"}


def test_the_portal_shows_a_real_row_when_the_operator_says_so(
    world: Services,  # noqa: F811
    site: tuple[Site, str],
) -> None:
    app, name = site
    assert Settings.from_env({"MLGATE_PORTAL_EXAMPLE": "row"}).portal_example == "row"
    assert Settings.from_env({}).portal_example == "typical"
    with pytest.raises(ConfigError, match="MLGATE_PORTAL_EXAMPLE is one of typical, row"):
        Settings.from_env({"MLGATE_PORTAL_EXAMPLE": "all"})
    typical = (world.settings, world.__dict__.pop("profiles", None))
    world.settings = replace(world.settings, portal_example="row")
    try:
        page = login(app, "portal", "seer", "a long secret for rees").get(f"/portal/models/{name}")
    finally:
        world.settings = typical[0]
        world.__dict__["profiles"] = typical[1] or world.profiles
    sent = json.loads(_pre(page.text, "http").split("\n\n", 1)[1])["rows"][0]
    snapshot = read_snapshot(world.uow(), world.artifacts, name, 1)
    matches = snapshot[(snapshot["x1"] - sent["x1"]).abs() < 1e-12]
    assert len(matches) == 1  # one of the training rows, as it was
    assert matches.iloc[0]["color"] == sent["color"] and matches.iloc[0]["size"] == sent["size"]
    assert "a real row of version 1" in page.text


def test_an_alias_grant_sees_the_version_its_alias_points_at(
    world: Services,  # noqa: F811
    site: tuple[Site, str],
) -> None:
    app, _ = site
    name = trained(world, "xgboost", "three")
    trained(world, "xgboost", "three")  # version 2, the newest
    now = world.clock()
    promote(world.uow(), name, 1, "production", actor="test", now=now)
    accounts.create_consumer(world.uow(), by=None, name="pinned", description="", now=now)
    accounts.set_consumer_password(world.uow(), "pinned", "an alias holder secret",
                                   by=None, now=now)  # fmt: skip
    subscribe(world.uow(), by=None, consumer="pinned", plan="sight", now=now)
    add_grant(world.uow(), by=None, subject_kind="consumer", subject="pinned",
              target=f"{name}@production", role="consumer", now=now, actor="test")  # fmt: skip
    world.forget_cached()
    pinned = login(app, "portal", "pinned", "an alias holder secret")
    for ref in (f"{name}@production", name):
        page = pinned.get(f"/portal/models/{ref}")
        assert page.status_code == 200, page.text[:400]
        assert "answered by <strong>version 1</strong>" in page.text
        assert "newest version is 2" in page.text
    aliased = pinned.get(f"/portal/models/{name}@production")
    assert f'client.predict("{name}", row, alias="production")' in _pre(aliased.text, "client")
    token = csrf_of(pinned, f"/portal/models/{name}")
    newest = pinned.post(f"/portal/models/{name}@2/explain", data={"row": "{}", "csrf": token})
    assert newest.status_code == 403  # the grant opens its alias's version, not the newest


def test_the_form_starts_from_the_versions_typical_row_and_labels_each_bar(
    world: Services,  # noqa: F811
    site: tuple[Site, str],
) -> None:
    """The row to start from is the training rows' typical one (medians, most frequent
    categories); the waterfall's bars read `column = value`; a classifier's probability of the
    predicted class is shown; another version can be chosen, to fill in and to explain with."""
    app, name = site
    snapshot = read_snapshot(world.uow(), world.artifacts, name, 1)
    admin = login(app, "ui", *ADMIN)
    form = admin.get(f"/ui/models/{name}/explain")
    pasted = json.loads(html.unescape(TEXTAREA.search(form.text).group(1)))  # type: ignore[union-attr]
    assert pasted["x1"] == pytest.approx(snapshot["x1"].median(), rel=1e-5)
    assert pasted["x2"] == pytest.approx(snapshot["x2"].median(), rel=1e-5)  # nulls left out
    assert pasted["color"] == snapshot["color"].mode().iloc[0]
    assert pasted["size"] == snapshot["size"].mode().iloc[0]

    token = csrf_of(admin, f"/ui/models/{name}/explain")
    page = admin.post(f"/ui/models/{name}/explain", data={"row": json.dumps(ROW), "csrf": token})
    assert ">x1 = 1.5</text>" in page.text and ">color = red</text>" in page.text
    assert ">x2 = null</text>" in page.text
    blank = admin.post(f"/ui/models/{name}/explain",
                       data={"row": json.dumps({**ROW, "size": ""}), "csrf": token})  # fmt: skip
    assert '>size = ""</text>' in html.unescape(blank.text)
    probability = re.search(r"Predicted (yes|no), probability (0\.\d{3}|1\.000)", page.text)
    assert probability and float(probability.group(2)) >= 0.5  # the predicted class's

    trained(world, "xgboost", "binary")  # v2
    world.forget_cached()  # a name's latest version is cached for a second
    chooser = admin.get(f"/ui/models/{name}/explain?version=1")
    assert '<option value="1" selected>v1</option>' in chooser.text
    assert '<option value="2">v2</option>' in chooser.text
    older = admin.post(
        f"/ui/models/{name}/explain", data={"row": json.dumps(ROW), "version": "1", "csrf": token}
    )
    assert older.status_code == 200 and "(version 1)" in older.text
    newer = admin.post(f"/ui/models/{name}/explain", data={"row": json.dumps(ROW), "csrf": token})
    assert "(version 2)" in newer.text
