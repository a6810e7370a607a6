"""The dashboard and the portal in a real browser: Debian's Chromium, driven by Playwright,
against `mlgate serve` on a socket. One journey, in order, as a team and a customer live it:
log in; add the quickstart's source; train a model and watch the job finish; promote it; make
a plan, a consumer and a key; call the API with the key; see usage and quota move; log in as the
consumer and see only its own things; try a row and score a file; be refused another consumer's
page. The consumer holds a grant on `churn@production` only (the README's pattern): every call
and page that uses the model must take it as /predict does.

Screenshots of the main pages go to $MLGATE_SCREENSHOTS (default: build/screenshots).
The browser is the system's (`apt-get install chromium`); nothing is downloaded at test time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.access import accounts
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e import http
from tests.e2e.helpers import running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(
    os.environ.get("MLGATE_SCREENSHOTS") or Path(__file__).parents[2] / "build" / "screenshots"
)
ADMIN_PASSWORD = "dashboard operator 2026"
ACME_PASSWORD = "portal secret of a customer"
FLAGS = [  # the closed network refuses Chromium's own background connections: ask for none
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

playwright_api = pytest.importorskip("playwright.sync_api")


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("MLGATE_REQUIRE_SERVICES") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    home = tmp_path_factory.mktemp("browser") / "home"
    services = make_services(home)
    accounts.create_user(
        services.uow(), by=None, name="admin", password=ADMIN_PASSWORD, is_admin=True,
        now=services.clock(),
    )  # fmt: skip
    database = home / "demo" / "churn.db"  # where `mlgate quickstart` puts its demo data
    demo.write_sqlite(database, demo.churn_frame(n_rows=1500))
    services.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(home) as base:
        yield {"base": base, "database": database}


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')].filter(
    (el) => el.labels.length === 0 && !el.getAttribute('aria-label')).map((el) => el.name)"""


def shot(page: object, name: str) -> None:
    """A screenshot of a main page; every form field on it must have a label."""
    assert page.evaluate(UNLABELLED) == [], f"form fields without a label on {name}"  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def nav(page: object, name: str) -> object:
    main = page.get_by_role("navigation", name="Main")  # type: ignore[attr-defined]
    return main.get_by_role("link", name=name, exact=True)


def test_team_and_consumer_journey(browser: object, site: dict[str, object]) -> None:
    base = str(site["base"])
    expect = playwright_api.expect
    team = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)  # type: ignore[attr-defined]
    page = team.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of risky forms
    page.set_default_timeout(30_000)

    # Log in: an unauthenticated visit lands on the login form, and comes back after it.
    page.goto("/ui/sources")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/sources"))
    shot(page, "01-login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")
    # This time by keyboard alone: the name field has focus, Tab moves on, Enter submits.
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/ui/sources")

    # Add the quickstart's source; its schema preview.
    page.get_by_label("Name").fill("demo")
    page.get_by_label("Connection URL or file path").fill(f"sqlite:///{site['database']}")
    page.get_by_role("button", name="Connect and add").click()
    expect(page.get_by_role("status")).to_contain_text("credentials are stored sealed")
    page.get_by_role("link", name=demo.TABLE, exact=True).click()
    expect(page.get_by_role("heading", name=f"{demo.TABLE}: columns")).to_be_visible()
    expect(page.locator("table.sample tbody tr")).to_have_count(8)
    shot(page, "02-source")

    # Train from the form, and watch the job finish live (the page polls; no reload here).
    page.get_by_role("link", name=f"Train on {demo.TABLE}").click()
    page.get_by_label("Model name").fill("churn")
    page.get_by_label("Target column").fill(demo.TARGET)
    page.get_by_label("Columns to leave out").fill(demo.ID_COLUMN)
    page.get_by_label("Algorithm").select_option("logistic_regression")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/[0-9a-f]+$"))
    expect(page.locator(".job-state")).to_have_attribute("data-state", "succeeded", timeout=180_000)
    expect(page.locator(".job-log")).to_contain_text("registered churn@v1")
    expect(page.locator(".job-progress")).to_have_js_property("value", 1)
    shot(page, "03-job")

    # A second version, to compare and to promote.
    page.goto("/ui/train?model=churn&source=demo&table=" + demo.TABLE)
    page.get_by_label("Target column").fill(demo.TARGET)
    page.get_by_label("Columns to leave out").fill(demo.ID_COLUMN)
    page.get_by_label("Algorithm").select_option("decision_tree")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator(".job-state")).to_have_attribute("data-state", "succeeded", timeout=180_000)
    page.locator(".job-link").click()

    # Promote v1 to production, with a reason and a confirmation.
    expect(page.get_by_role("heading", name="churn", exact=True)).to_be_visible()
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_label("Reason (kept in the history)").first.fill("first release")
    page.get_by_label("I confirm the move").check()
    page.get_by_role("button", name="Promote").click()
    expect(page.get_by_role("status")).to_contain_text("now points at the new version")
    expect(page.locator("ul.aliases")).to_contain_text("production → v1")
    expect(page.locator("section", has_text="Alias history")).to_contain_text("first release")
    shot(page, "04-model")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name=re.compile("^Verdict"))).to_be_visible()
    expect(page.locator(".side-by-side figure")).not_to_have_count(0)
    shot(page, "05-compare")
    page.goto("/ui/models/churn/versions/1/report")
    expect(page.locator("h2", has_text="Holdout metrics")).to_be_visible()
    expect(nav(page, "Models")).to_have_attribute("aria-current", "page")  # type: ignore[attr-defined]
    expect(page.locator("#plot-learning-curve figcaption")).to_contain_text(
        "training rows; each share scored by 3-fold cross-validation"
    )
    expect(page.get_by_role("link", name="Download report.html")).to_be_visible()
    shot(page, "06-report")
    # Why this prediction: the typical row, changed to values training never saw.
    page.goto("/ui/models/churn/explain")
    edited = json.loads(page.locator("#f-row").input_value())
    edited.update(tenure_months=500, contract="lifetime")
    page.locator("#f-row").fill(json.dumps(edited, indent=1))
    page.get_by_role("button", name="Predict and explain").click()
    caution = page.get_by_role("note", name="warnings")
    expect(caution).to_contain_text("outside_range")
    expect(caution).to_contain_text("unseen_category")
    expect(page.locator("svg.chart").first).to_contain_text("tenure_months = 500")
    shot(page, "13-explain")

    # A plan, a consumer on it, a grant, a key shown once.
    nav(page, "Models").click()  # type: ignore[attr-defined]
    nav(page, "Plans").click()
    page.get_by_label("Name").fill("starter")
    page.get_by_label("Calls per minute").fill("600")
    page.get_by_label("Requests per day (quota)").fill("1000")
    page.get_by_label("Rows per day (quota)").fill("5000")
    page.get_by_label("Explanations: consumers may ask why").check()
    page.get_by_role("button", name="Create plan").click()
    expect(page.get_by_role("status")).to_contain_text("plan is saved")
    for name in ("acme", "globex"):
        nav(page, "Consumers").click()
        page.get_by_label("Name").fill(name)
        page.get_by_label("Portal password").fill(ACME_PASSWORD if name == "acme" else "")
        page.get_by_role("button", name="Create consumer").click()
        expect(page.get_by_role("status")).to_contain_text("consumer is created")
        page.get_by_label("Put on plan").select_option("starter")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_label("Allow").fill("churn@production" if name == "acme" else "churn")
        page.get_by_role("button", name="Grant").click()
        expect(page.get_by_role("status")).to_contain_text("grant is added")
    page.goto("/ui/consumers/acme")
    page.get_by_label("Key name").fill("acme-app")
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-key").input_value()
    assert re.fullmatch(r"mlg_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}", token)
    shot(page, "07-key-once")
    page.get_by_role("link", name="Done").click()
    assert token not in page.content(), "a key is shown once, never again"
    expect(page.locator("tr[data-key]")).to_have_count(1)

    # Predictions with the key, over the API.
    row = demo.churn_frame(n_rows=5).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    rows = [{k: (None if v != v else v) for k, v in r.items()} for r in row.to_dict("records")]
    for _ in range(3):
        answer = http.post(
            f"{base}/v1/models/churn/predict",
            json={"rows": rows[:2]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text

    # Usage: the chart and the quota moved (the quota at once; the ledger within a second).
    page.goto("/ui/usage?consumer=acme")
    quota = page.locator("[data-quota=acme] tr[data-limit='requests per day'] .used")
    expect(quota).to_have_text("3")
    expect(page.locator("[data-quota=acme] tr[data-limit='rows per day'] .used")).to_have_text("6")
    # The flusher may write the three calls in more than one batch: wait for all of them.
    ledger = page.locator("tr[data-account='consumer:acme'] td").first
    for _ in range(40):
        if ledger.count() and ledger.inner_text().strip() == "3":
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(ledger).to_have_text("3")
    calls_per_day = page.locator(".charts svg.chart").first
    expect(calls_per_day.locator("rect title", has_text=": 3 calls")).to_have_count(1)
    shot(page, "08-usage")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("day,account,key_prefix,model")
    assert ",consumer:acme," in csv_text
    page.goto("/ui/audit?action=web.")
    expect(page.locator("table.audit")).to_contain_text("web.promote")
    shot(page, "09-audit")
    page.goto("/ui/models")
    # The consumer's three calls and the admin's "why this prediction" (13-explain) above.
    expect(page.locator("tr[data-model=churn] .count")).to_have_text("4")
    shot(page, "00-models")
    team.close()

    # The consumer's own portal: its plan, quota, keys and models; nothing of anyone else.
    portal = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)  # type: ignore[attr-defined]
    mine = portal.new_page()
    mine.on("dialog", lambda dialog: dialog.accept())
    mine.set_default_timeout(30_000)
    mine.goto("/portal")
    expect(mine).to_have_url(re.compile(r"/portal/login"))
    mine.get_by_label("Consumer").fill("acme")
    mine.get_by_label("Password").fill(ACME_PASSWORD)
    mine.get_by_role("button", name="Log in").click()
    expect(mine.get_by_role("heading", name="acme", exact=True)).to_be_visible()
    expect(mine.locator("tr[data-limit='requests per day'] .used")).to_have_text("3")
    expect(mine.locator("tr[data-key]")).to_have_count(1)
    assert "globex" not in mine.content()
    shot(mine, "10-portal")
    mine.get_by_role("link", name="churn@production").click()  # the model, as granted
    expect(mine.locator("#ex-curl")).to_contain_text(token[:16] + "_")
    expect(mine.locator("#ex-client")).to_be_visible()  # the first tab; the others hidden
    expect(mine.locator("#ex-client")).to_contain_text('alias="production"')
    expect(mine.locator("#ex-curl")).to_be_hidden()
    mine.locator("label[for=tab-curl]").click()
    expect(mine.locator("#ex-curl")).to_be_visible()
    expect(mine.locator("#ex-curl")).to_contain_text("/v1/models/churn@production/predict")
    expect(mine.locator("#ex-curl")).not_to_contain_text(token[17:])
    box = mine.locator("#ex-curl").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280  # wrapped, never clipped
    expect(mine.locator("#version")).to_contain_text("version 1")
    mine.locator("label[for=tab-client]").click()
    shot(mine, "11-portal-model")

    # Try a row (the page's example row), then score a file: both through the alias grant.
    mine.get_by_role("button", name="Predict and explain").click()
    expect(
        mine.get_by_role("heading", name=re.compile(r"^Predicted .* \(version 1\)$"))
    ).to_be_visible()
    expect(mine.locator("#why-h + p svg, section.card svg").first).to_be_visible()
    shot(mine, "12-portal-try-a-row")
    upload = Path(str(site["database"])).parent / "to-score.csv"
    row.to_csv(upload, index=False)
    mine.locator("#b-file").set_input_files(str(upload))
    mine.get_by_role("button", name="Score it").click()
    expect(mine).to_have_url(re.compile(r"/portal/batches/[0-9a-f]+$"))
    result_link = mine.get_by_role("link", name=re.compile("^Download the result"))
    expect(result_link).to_be_visible(timeout=60_000)  # the page refreshes itself meanwhile
    with mine.expect_download() as scored:
        result_link.click()
    lines = Path(scored.value.path()).read_text().splitlines()
    assert "prediction" in lines[0].split(",") and len(lines) == 1 + len(row)
    expect(mine.get_by_role("link", name=re.compile("churn@production"))).to_be_visible()

    # Over the API the same grant opens the batch route, bare or by the alias, and nothing else.
    key = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    for named, status in (("churn", 202), ("churn@production", 202), ("churn@2", 403)):
        sent = http.post(f"{base}/v1/models/{named}/batches", content=upload.read_bytes(),
                          headers=key)  # fmt: skip
        assert sent.status_code == status, (named, sent.text)
    assert sent.json()["code"] == "no_grant" and "churn@2" in sent.json()["detail"]

    # Another consumer's page, and the team's pages: refused.
    refused = mine.goto("/ui/consumers/globex")
    assert refused is not None and refused.status == 403
    expect(mine.get_by_role("alert")).to_contain_text("consumer:acme")
    assert mine.goto("/ui/usage?consumer=globex").status == 403  # type: ignore[union-attr]
    # A key of acme's, made and revoked in the portal.
    mine.goto("/portal")
    mine.get_by_label("Key name").fill("spare")
    mine.get_by_role("button", name="Create key").click()
    spare = mine.locator("#new-key").input_value()
    mine.get_by_role("link", name="Done").click()
    mine.locator(f"tr[data-key='{spare[:16]}'] button", has_text="Revoke").click()
    expect(mine.get_by_role("status")).to_contain_text("key is revoked")
    gone = http.post(
        f"{base}/v1/models/churn/predict",
        json={"rows": rows[:1]},
        headers={"Authorization": f"Bearer {spare}"},
    )
    assert gone.status_code == 401 and gone.json()["code"] == "key_revoked"
    portal.close()
