"""Single sign-on in a real browser (issue 36): Chromium, driven by Playwright, signs in to
`mlgate serve` through an OpenID Connect provider (oidc-provider-mock, offline, on a thread of
this process) from the login page; lands on the dashboard with the role its group gives; and
is refused, with a clear page, where its group does not reach.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.helpers import running_server
from tests.e2e.test_browser import CHROMIUM, FLAGS, _browser_missing

oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [
    # oidc-provider-mock 0.3.4 still calls Authlib's older JWT hooks, which warn
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

PEOPLE = [
    oidc_provider_mock.User(sub="s-alice", claims={"preferred_username": "alice",
                                                   "groups": ["mlgate-admins"]}),
    oidc_provider_mock.User(sub="s-bob", claims={"preferred_username": "bob",
                                                 "groups": ["data-science"]}),
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _browser_missing()
    if missing:
        import os

        if os.environ.get("MLGATE_REQUIRE_SERVICES") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("browser-sso") / "home"
    with oidc_provider_mock.run_server_in_thread(require_nonce=True, user_claims=PEOPLE) as idp:
        env = {
            "MLGATE_OIDC_ISSUER": f"http://localhost:{idp.server_port}",
            "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_CLIENT_SECRET": "s3cret",
            "MLGATE_OIDC_SCOPES": "openid profile", "MLGATE_OIDC_PROVIDER_NAME": "Acme",
            "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins",
        }  # fmt: skip
        with running_server(home, **env) as url:
            yield url


def sign_in(browser: object, base: str, sub: str, next_: str) -> object:
    """From the login page, through the provider's page (the user picks `sub`), back."""
    context = browser.new_context(base_url=base)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"/ui/login?next={next_}")
    page.get_by_role("link", name="Sign in with Acme").click()
    playwright_api.expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_role("button", name=sub, exact=True).click()
    return page


def test_an_admin_group_member_lands_on_the_dashboard_as_admin(browser: object, base: str) -> None:
    page = sign_in(browser, base, "s-alice", "/ui/consumers")
    expect = playwright_api.expect
    expect(page).to_have_url(f"{base}/ui/consumers")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Consumers")
    page.goto("/ui/audit")  # her first sign-in made her, and the audit log says so
    expect(page.locator("body")).to_contain_text("auth.sso_login")
    expect(page.locator("body")).to_contain_text("user:alice")


def test_a_member_of_another_group_is_refused_with_a_clear_page(browser: object, base: str) -> None:
    page = sign_in(browser, base, "s-bob", "/ui/models")
    expect = playwright_api.expect
    expect(page).to_have_url(f"{base}/ui/models")  # signed in: the models page is everyone's
    answer = page.goto("/ui/consumers")  # the admins' page: bob's group does not reach it
    assert answer is not None and answer.status == 403  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    body = page.locator("body")
    expect(body).to_contain_text("user:bob is not an admin")
    expect(body).not_to_contain_text("Traceback")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
