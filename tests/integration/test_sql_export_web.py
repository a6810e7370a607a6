"""The SQL export in the dashboard, through the whole app in process with real engines behind
it: a maintainer picks a dialect on the version's page, sees the conformance report and the
query, downloads the file and runs it; a viewer is refused; naming a source to check on is an
admin's, as at the API (the same rule, access.policy.authorize_sql_export); a refusal is shown
with its reason and its status; an admin has the function form made and checked on PostgreSQL."""

from __future__ import annotations

import re
import sqlite3

import pytest
from starlette.testclient import TestClient

from mlgate.access import accounts, grants
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from tests.integration.test_explanations import table
from tests.integration.test_sql_export import train, world

__all__ = ["world"]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "a password long enough 2026"


def login(app: object, name: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)  # type: ignore[arg-type]
    form = client.get("/ui/login")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    answer = client.post("/ui/login", data={"name": name, "password": PASSWORD,
                                            "csrf": token.group(1)})  # fmt: skip
    assert answer.status_code == 303, answer.text[:300]
    return client


@pytest.fixture(scope="module")
def people(world: Services) -> str:
    """Users chief (admin), maya (maintainer of the model) and vic (its viewer); the model."""
    name = train(world, "logistic_regression", "binary")
    now = world.clock()
    for user, admin in (("chief", True), ("maya", False), ("vic", False)):
        accounts.create_user(world.uow(), by=None, name=user, password=PASSWORD, is_admin=admin,
                             now=now)  # fmt: skip
    for user, role in (("maya", "maintainer"), ("vic", "viewer")):
        grants.add_grant(world.uow(), by=None, subject_kind="user", subject=user, target=name,
                         role=role, now=now, actor="test")  # fmt: skip
    return name


def test_a_maintainer_exports_checks_and_downloads_from_the_version_page(
    world: Services, people: str
) -> None:
    name = people
    app = create_app(world)
    with TestClient(app):
        maya = login(app, "maya")
        listing = maya.get(f"/ui/models/{name}")
        assert f'/ui/models/{name}/versions/1/sql">SQL</a>' in listing.text
        form = maya.get(f"/ui/models/{name}/versions/1/sql")
        assert form.status_code == 200 and 'name="dialect"' in form.text
        assert 'name="check_source"' not in form.text  # an admin's field
        page = maya.get(f"/ui/models/{name}/versions/1/sql",
                        params={"dialect": "sqlite", "key": "id", "table": "rows"})  # fmt: skip
        assert page.status_code == 200, page.text[-2000:]
        assert "Conformance" in page.text and "SQLite" in page.text
        assert re.search(r"<td>60</td><td>[0-9.e+-]+</td><td>0</td>", page.text), page.text
        assert "Download .sql" in page.text and "SELECT" in page.text
        download = maya.get(f"/ui/models/{name}/versions/1/sql/download",
                            params={"dialect": "sqlite", "key": "id", "table": "rows"})  # fmt: skip
        assert download.status_code == 200
        assert download.headers["content-disposition"] == (
            f'attachment; filename="{name}-v1.sqlite.sql"'
        )
        assert download.headers["x-mlgate-sql-rows-checked"] == "60"
        db = sqlite3.connect(":memory:")
        rows = table(30, seed=8)
        rows.insert(0, "id", range(30))
        rows.to_sql("rows", db, index=False)
        answered = sorted(db.execute(download.text).fetchall())
        version = resolve_version(world.uow(), name, None)
        served = world.predictors.get(version).score(conform(rows, version.columns))
        assert [r[1] for r in answered] == served.predictions
        # the same rule as the API's: naming a server to check on is an admin's
        named = maya.get(f"/ui/models/{name}/versions/1/sql",
                         params={"dialect": "postgresql", "check_source": "pg"})  # fmt: skip
        assert named.status_code == 403 and "only admins name a source" in named.text
        asked = {"dialect": "sqlite", "form": "function", "name": "score"}
        refused = maya.get(f"/ui/models/{name}/versions/1/sql", params=asked)
        assert refused.status_code == 409 and "SQLite has no CREATE FUNCTION" in refused.text
        bad = maya.get(f"/ui/models/{name}/versions/1/sql", params={"dialect": "oracle"})
        assert bad.status_code == 422 and "the dialect is one of" in bad.text
        too_long = maya.get(f"/ui/models/{name}/versions/1/sql", params={"table": "t" * 301})
        assert too_long.status_code == 422


def test_a_viewer_is_refused_and_an_admin_gets_the_checked_function(
    world: Services, people: str
) -> None:
    name = people
    app = create_app(world)
    with TestClient(app):
        vic = login(app, "vic")
        listing = vic.get(f"/ui/models/{name}")
        assert listing.status_code == 200 and "/versions/1/sql" not in listing.text
        for path in ("sql", "sql/download"):
            denied = vic.get(f"/ui/models/{name}/versions/1/{path}", params={"dialect": "sqlite"})
            assert denied.status_code == 403, path
        chief = login(app, "chief")
        page = chief.get(f"/ui/models/{name}/versions/1/sql", params={
            "dialect": "postgresql", "check_source": "pg", "form": "function",
            "name": "score"})  # fmt: skip
        assert page.status_code == 200, page.text[-2000:]
        assert "PostgreSQL" in page.text and '<th scope="row">function</th>' in page.text
        assert "CREATE FUNCTION &#34;score&#34;" in page.text or 'CREATE FUNCTION "score"' in (
            page.text
        )
