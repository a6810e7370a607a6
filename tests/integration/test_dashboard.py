"""The dashboard's and the portal's safety, through the whole app in process: the session
cookie's flags, CSRF on forms, credentials that never come back out, keys shown once, consumers
who see only their own things, and logins that slow down and end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from mlgate.access import accounts
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.bootstrap import bootstrap
from mlgate.settings import Settings
from tests.conftest import make_services

BASE = "http://testserver"  # the test client's origin

ADMIN = ("chief", "operator password 2026")
CONSUMERS = {"acme": "first customer secret", "globex": "second customer secret"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    app: Any
    home: Path
    keys: dict[str, str]  # consumer -> token made for it before the server started


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    services = make_services(home)
    now = services.clock()
    accounts.create_user(
        services.uow(), by=None, name=ADMIN[0], password=ADMIN[1], is_admin=True, now=now
    )
    tokens = {}
    for name, password in CONSUMERS.items():
        accounts.create_consumer(services.uow(), by=None, name=name, description="", now=now)
        accounts.set_consumer_password(services.uow(), name, password, by=None, now=now)
        _, tokens[name] = create_key(
            services.uow(), services.server_secret, by=None, owner_kind="consumer", owner=name,
            name=f"{name}-key", now=now,
        )  # fmt: skip
    app = create_app(services)
    with TestClient(app):  # the app's lifespan, as a server runs it; each caller a client
        yield Site(app, home, tokens)
    services.close()


OPEN: list[TestClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def client_for(app: Any) -> TestClient:
    """A browser of its own (its own cookies) on the app."""
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    OPEN.append(client)
    return client


def login(site: Site, area: str, name: str, password: str) -> TestClient:
    client = client_for(site.app)
    form = client.get(f"/{area}/login")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    answer = client.post(
        f"/{area}/login", data={"name": name, "password": password, "csrf": token.group(1)}
    )
    assert answer.status_code == 303, answer.text[:300]
    return client


def csrf_of(client: TestClient, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found
    return found.group(1)


def test_the_session_cookie_is_httponly_samesite_and_not_readable_by_the_api(site: Site) -> None:
    client = client_for(site.app)
    form = client.get("/ui/login")
    token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/ui/login", data={"name": ADMIN[0], "password": ADMIN[1], "csrf": token})
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mls_" in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the next test for HTTPS deployments
    page = client.get("/ui/models")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    # The API takes credentials from the Authorization header only: a cookie is not one.
    assert client.get("/v1/models").status_code == 401


def test_behind_tls_the_cookie_is_secure_with_the_host_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MLGATE_HOME": str(home), "MLGATE_SECURE_COOKIES": "true"}
    services = bootstrap(Settings.from_env(env))
    accounts.create_user(
        services.uow(), by=None, name=ADMIN[0], password=ADMIN[1], is_admin=True,
        now=services.clock(),
    )  # fmt: skip
    app = create_app(services)
    with TestClient(app):
        client = client_for(app)
        form = client.get("/ui/login")
        token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        login_cookie = form.headers["set-cookie"]
        assert "Secure" in login_cookie and "SameSite=strict" in login_cookie
        # Over plain HTTP a client keeps Secure cookies to itself: send it by hand, as a TLS
        # proxy in front would have let it through.
        answer = client.post(
            "/ui/login",
            data={"name": ADMIN[0], "password": ADMIN[1], "csrf": token},
            headers={"Cookie": login_cookie.split(";", 1)[0]},
        )
        cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if "mls_" in c)
        assert session.startswith("__Host-mlgate_session=") and "Secure" in session
    services.close()


def test_forms_need_this_sessions_token_and_our_origin(site: Site) -> None:
    admin = login(site, "ui", *ADMIN)
    other = login(site, "ui", *ADMIN)  # a second session of the same user
    mine, theirs = csrf_of(admin, "/ui/plans"), csrf_of(other, "/ui/plans")
    assert mine != theirs
    plan = {"name": "csrf-plan", "per_minute": "10"}
    assert admin.post("/ui/plans", data=plan).status_code == 403  # no token
    assert admin.post("/ui/plans", data={**plan, "csrf": theirs}).status_code == 403
    foreign = admin.post(
        "/ui/plans", data={**plan, "csrf": mine}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert "csrf-plan" not in admin.get("/ui/plans").text  # nothing was made
    made = admin.post("/ui/plans", data={**plan, "csrf": mine}, headers={"Origin": BASE})
    assert (
        made.status_code == 303
        and made.headers["location"] == "/ui/plans/csrf-plan?notice=plan_saved"
    )
    # A login form posted from elsewhere (no login cookie of ours) is refused too.
    stranger = client_for(site.app).post(
        "/ui/login", data={"name": ADMIN[0], "password": ADMIN[1], "csrf": "x"}
    )
    assert stranger.status_code == 403 and "mls_" not in stranger.headers.get("set-cookie", "")


def test_source_credentials_go_in_and_never_come_back_out(site: Site, postgres_url: str) -> None:
    admin = login(site, "ui", *ADMIN)
    # This machine's PostgreSQL trusts local connections: a password is carried all the same.
    secret = "pg-secret-4711"
    secret_url = sa.make_url(postgres_url).set(password=secret).render_as_string(False)
    added = admin.post(
        "/ui/sources",
        data={"name": "warehouse", "url": secret_url, "csrf": csrf_of(admin, "/ui/sources")},
    )
    assert added.status_code == 303, added.text[:400]
    for path in ("/ui/sources", "/ui/sources/warehouse", "/ui/audit", "/ui/train"):
        page = admin.get(path)
        assert page.status_code == 200
        assert secret not in page.text, path
    assert "***" in admin.get("/ui/sources").text


def test_a_new_key_is_shown_once(site: Site) -> None:
    admin = login(site, "ui", *ADMIN)
    made = admin.post(
        "/ui/keys",
        data={"name": "shown-once", "scopes": "read", "csrf": csrf_of(admin, "/ui/keys")},
    )
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    token = re.search(r'value="(mlg_[0-9a-f]{12}_[^"]+)"', made.text)
    assert token
    listing = admin.get("/ui/keys").text
    assert token.group(1)[:16] in listing and token.group(1) not in listing
    who = client_for(site.app).get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert who.status_code == 200 and who.json()["name"] == ADMIN[0]


def test_a_consumer_sees_only_its_own_things(site: Site) -> None:
    acme = login(site, "portal", "acme", CONSUMERS["acme"])
    page = acme.get("/portal")
    assert page.status_code == 200
    globex_prefix = site.keys["globex"][:16]
    assert site.keys["acme"][:16] in page.text
    assert globex_prefix not in page.text and "globex" not in page.text
    # Revoking globex's key through acme's portal: as if it did not exist; it keeps working.
    revoke = acme.post(
        f"/portal/keys/{globex_prefix}/revoke", data={"csrf": csrf_of(acme, "/portal")}
    )
    assert revoke.status_code == 404
    still = client_for(site.app).get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {site.keys['globex']}"}
    )
    assert still.status_code == 200
    for path in ("/ui/consumers/globex", "/ui/usage", "/ui/keys", "/ui/models"):
        refused = acme.get(path)
        assert refused.status_code == 403 and "consumer:acme" in refused.text, path
    # A team member is no consumer: the portal refuses them.
    admin = login(site, "ui", *ADMIN)
    assert admin.get("/portal").status_code == 403


def test_logins_slow_down_and_logouts_end_the_session(site: Site) -> None:
    client = client_for(site.app)
    statuses = []
    for _ in range(5):
        token = CSRF.search(client.get("/portal/login").text).group(1)  # type: ignore[union-attr]
        statuses.append(
            client.post(
                "/portal/login", data={"name": "globex", "password": "wrong", "csrf": token}
            ).status_code
        )
    assert statuses[:3] == [401, 401, 401] and 429 in statuses[3:]
    acme = login(site, "portal", "acme", CONSUMERS["acme"])
    assert acme.get("/portal").status_code == 200
    out = acme.post("/portal/logout", data={"csrf": csrf_of(acme, "/portal")})
    assert out.status_code == 303 and out.headers["location"].startswith("/portal/login")
    session = acme.cookies.get("mlgate_session")
    assert session is None  # the cookie is cleared...
    again = client_for(site.app).get(
        "/portal", headers={"Cookie": "mlgate_session=mls_" + "0" * 40}
    )
    assert again.status_code == 303  # ...and a made-up one gets the login form


def test_a_logged_out_session_token_is_dead(site: Site) -> None:
    acme = login(site, "portal", "acme", CONSUMERS["acme"])
    token = acme.cookies.get("mlgate_session")
    assert token and token.startswith("mls_")
    acme.post("/portal/logout", data={"csrf": csrf_of(acme, "/portal")})
    replay = client_for(site.app).get("/portal", headers={"Cookie": f"mlgate_session={token}"})
    assert replay.status_code == 303 and replay.headers["location"].startswith("/portal/login")


def test_a_training_job_started_from_the_form_can_be_cancelled(site: Site) -> None:
    from mlgate.sources import demo

    database = site.home.parent / "cancel.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=3000))
    admin = login(site, "ui", *ADMIN)
    token = csrf_of(admin, "/ui/sources")
    added = admin.post(
        "/ui/sources", data={"name": "big", "url": f"sqlite:///{database}", "csrf": token}
    )
    assert added.status_code == 303, added.text[:300]
    started = admin.post(
        "/ui/train",
        data={
            "model": "slow", "source": "big", "table": demo.TABLE, "target": demo.TARGET,
            "drop": demo.ID_COLUMN, "algorithm": "random_forest", "trials": "500",
            "csrf": token,
        },
    )  # fmt: skip
    assert started.status_code == 303, started.text[:300]
    job = started.headers["location"]
    cancelled = admin.post(f"{job}/cancel", data={"csrf": token})
    assert cancelled.status_code == 303
    site.app.state.services.jobs.wait(job.rsplit("/", 1)[-1], timeout=300)
    state = admin.get(f"{job}/state").json()
    assert state["state"] == "cancelled", state
    assert admin.get("/ui/models/slow").status_code == 404  # nothing was registered


def test_the_training_form_can_fit_on_every_row(site: Site) -> None:
    from mlgate.sources import demo

    database = site.home.parent / "small.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=25))
    admin = login(site, "ui", *ADMIN)
    token = csrf_of(admin, "/ui/sources")
    added = admin.post(
        "/ui/sources", data={"name": "small", "url": f"sqlite:///{database}", "csrf": token}
    )
    assert added.status_code == 303, added.text[:300]
    assert 'name="evaluate"' in admin.get("/ui/train").text
    started = admin.post(
        "/ui/train",
        data={
            "model": "every", "source": "small", "table": demo.TABLE, "target": demo.TARGET,
            "drop": demo.ID_COLUMN, "algorithm": "logistic_regression", "evaluate": "every-row",
            "csrf": token,
        },
    )  # fmt: skip
    assert started.status_code == 303, started.text[:300]
    job = started.headers["location"]
    site.app.state.services.jobs.wait(job.rsplit("/", 1)[-1], timeout=300)
    assert admin.get(f"{job}/state").json()["state"] == "succeeded"
    version = site.app.state.services.resolve_version("every", None, None)
    assert version.lineage.test_size == 0
    assert (version.report or {})["evaluation"]["method"] == "leave-one-out predictions (25 fits)"
    page = admin.get("/ui/models/every").text  # the lineage's libraries, as `models show` has
    assert f"scikit-learn {version.library_versions['scikit-learn']}</span>" in page
    assert f"numpy {version.library_versions['numpy']}" in page
    bad = admin.post("/ui/train", data={"model": "x", "source": "small", "table": demo.TABLE,
                                        "target": demo.TARGET, "evaluate": "vibes",
                                        "csrf": token})  # fmt: skip
    assert bad.status_code == 422 and "every row" in bad.text


def test_a_model_file_imported_from_the_form_is_listed_with_its_metrics(site: Site) -> None:
    """The import form: a LightGBM file and a holdout become a version with metrics; a pickle
    is refused on an error page that says why, and nothing is registered."""
    import lightgbm
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    spend = 2 * frame.a - frame.c + rng.normal(scale=0.1, size=120)
    booster = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(frame, spend).booster_
    admin = login(site, "ui", *ADMIN)
    token = csrf_of(admin, "/ui/import")
    holdout = frame.assign(spend=spend).to_csv(index=False).encode()
    files = {"file": ("spend.txt", booster.model_to_string().encode()),
             "holdout": ("holdout.csv", holdout)}  # fmt: skip
    done = admin.post("/ui/import", data={"model": "spend", "csrf": token}, files=files)
    assert done.status_code == 303, done.text[:500]
    assert done.headers["location"] == "/ui/models/spend?notice=imported"
    shown = admin.get("/ui/models/spend")
    assert shown.status_code == 200 and "imported-lightgbm" in shown.text and "rmse" in shown.text
    pickle = {"file": ("model.pkl", b"\x80\x04\x95\x00")}
    refused = admin.post("/ui/import", data={"model": "pickled", "csrf": token}, files=pickle)
    assert refused.status_code == 422 and "never unpickles" in refused.text
    assert admin.get("/ui/models/pickled").status_code == 404


def test_prices_show_their_currency(site: Site) -> None:
    """Plans' prices carry the currency (MLGATE_CURRENCY, USD by default), as the form asks
    for them, to the finest digit the price has."""
    admin = login(site, "ui", *ADMIN)
    token = csrf_of(admin, "/ui/plans")
    plan = {"name": "priced-plan", "price_per_1k_rows": "0.0035", "csrf": token}
    assert admin.post("/ui/plans", data=plan, headers={"Origin": BASE}).status_code == 303
    listed = admin.get("/ui/plans").text
    row = listed[listed.index('data-plan="priced-plan"') :].split("</tr>")[0]
    assert "<td>USD 0.0035</td>" in row
    assert "Price per 1,000 rows (USD)" in listed


def test_an_admin_sets_a_consumers_billing_id_on_its_page(site: Site) -> None:
    admin = login(site, "ui", *ADMIN)
    page = admin.get("/ui/consumers/acme")
    assert "Billing id" in page.text and "sends nothing" in page.text

    def save(value: str) -> Any:
        form = {"billing_id": value, "csrf": csrf_of(admin, "/ui/consumers/acme")}
        return admin.post("/ui/consumers/acme/billing-id", data=form)

    bad = save("cus A;")
    assert bad.status_code == 422 and "letters, digits" in bad.text
    assert save("cus_A1").status_code == 303
    assert "cus_A1" in admin.get("/ui/consumers").text
    assert "names this consumer as cus_A1" in admin.get("/ui/consumers/acme").text
    assert save("").status_code == 303
    assert "cus_A1" not in admin.get("/ui/consumers").text


def test_a_consumer_rotates_its_own_key_in_the_portal_and_sees_both_ends(site: Site) -> None:
    acme = login(site, "portal", "acme", CONSUMERS["acme"])
    services = site.app.state.services
    _, old = create_key(services.uow(), services.server_secret, by=None, owner_kind="consumer",
                        owner="acme", name="to-rotate", now=services.clock())  # fmt: skip
    globex = site.keys["globex"][:16]
    refused = acme.post(f"/portal/keys/{globex}/rotate",
                        data={"overlap_hours": "24", "csrf": csrf_of(acme, "/portal")})  # fmt: skip
    assert refused.status_code == 404  # someone else's key: as if it did not exist
    made = acme.post(f"/portal/keys/{old[:16]}/rotate",
                     data={"overlap_hours": "24", "csrf": csrf_of(acme, "/portal")})  # fmt: skip
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    new = re.search(r'value="(mlg_[0-9a-f]{12}_[^"]+)"', made.text)
    assert new and new.group(1)[:16] == old[:16] and new.group(1) != old
    assert "The old secret keeps working until" in made.text
    page = acme.get("/portal").text
    assert "old secret until" in page and new.group(1) not in page
    api = client_for(site.app)
    for token in (old, new.group(1)):
        assert (
            api.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["name"]
            == "acme"
        )
