"""Comparing versions with paired statistics, and promotion guarded by them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mlgate.access import accounts
from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.errors import Conflict, InvalidInput
from mlgate.registry import aliases as lifecycle
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import read_attachment
from mlgate.schema import conform
from mlgate.sources import demo
from mlgate.training import data as training_data
from mlgate.training.compare import compare_versions, promote_if_better
from mlgate.training.report import plot_titles
from mlgate.training.service import TrainSpec, read_snapshot, retrain_spec, split_rows, train_model
from mlgate.web import reports
from tests.conftest import add_source_to, admin_token

WEAK_DROP = ("customer_id", "contract", "tenure_months", "total_charges", "support_calls")


@pytest.fixture
def shop(services: Services, tmp_path: Path) -> Services:
    demo.churn_frame(n_rows=3000, seed=21).to_csv(tmp_path / "customers.csv", index=False)
    add_source_to(services, "shop", str(tmp_path), cwd=tmp_path)
    return services


def train(services: Services, target: str, algorithm: str, drop: tuple[str, ...]) -> ModelVersion:
    spec = TrainSpec("m", "shop", target, algorithm, table="customers", drop=drop, report=False)
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def compare(services: Services, a: int, b: int) -> object:
    return compare_versions(
        services.uow(), services.artifacts, services.predictors, "m", a, b, now=services.clock()
    )


def test_a_clearly_better_classifier_wins_with_mcnemar(shop: Services) -> None:
    weak = train(shop, "churned", "logistic_regression", WEAK_DROP)
    strong = train(shop, "churned", "logistic_regression", ("customer_id",))
    result = compare(shop, weak.number, strong.number)
    assert result.verdict == f"v{strong.number} is better"  # type: ignore[attr-defined]
    assert result.interval[0] > 0  # type: ignore[attr-defined]

    # The same numbers, derived by hand from the candidate's holdout rows.
    frame = read_snapshot(shop.uow(), shop.artifacts, "m", strong.number)
    prepared = training_data.prepare(
        frame, target="churned", drop=("customer_id",), task="classification"
    )
    holdout = split_rows(prepared, 0.2, 42).X_test.index
    rows = frame.reset_index(drop=True).loc[holdout]
    right = [
        np.asarray(shop.predictors.get(v).score(conform(rows, v.columns)).predictions)
        == rows["churned"].to_numpy()
        for v in (weak, strong)
    ]
    only_weak, only_strong = int(np.sum(right[0] & ~right[1])), int(np.sum(right[1] & ~right[0]))
    assert result.p_value == pytest.approx(
        stats.binomtest(only_strong, only_weak + only_strong, 0.5).pvalue
    )  # type: ignore[attr-defined]
    assert result.value_b == pytest.approx(right[1].mean())  # type: ignore[attr-defined]
    with shop.uow() as uow:
        assert uow.models.comparisons("m")[-1]["verdict"] == f"v{strong.number} is better"


def test_an_identical_version_is_no_significant_difference(shop: Services) -> None:
    first = train(shop, "churned", "logistic_regression", ("customer_id",))
    again = train_model(
        shop.uow(),
        shop.artifacts,
        shop.open_source,
        retrain_spec(first, from_snapshot=True),
        now=shop.clock,
    ).version
    result = compare(shop, first.number, again.number)
    assert result.verdict == "no significant difference"  # type: ignore[attr-defined]
    assert result.p_value == 1.0 and result.difference == 0.0  # type: ignore[attr-defined]


def test_guarded_promotion_refuses_what_is_not_better(shop: Services) -> None:
    strong = train(shop, "churned", "logistic_regression", ("customer_id",))
    weak = train(shop, "churned", "logistic_regression", WEAK_DROP)
    lifecycle.promote(shop.uow(), "m", strong.number, "production", actor="t", now=shop.clock())

    def guarded(number: int) -> object:
        return promote_if_better(
            shop.uow(),
            shop.artifacts,
            shop.predictors,
            "m",
            number,
            "production",
            alpha=0.05,
            actor="t",
            reason="",
            now=shop.clock(),
        )

    with pytest.raises(Conflict, match="not significantly better than v1.*not promoted"):
        guarded(weak.number)
    assert lifecycle.aliases_of(shop.uow(), "m") == {"production": strong.number}
    same = train(shop, "churned", "logistic_regression", ("customer_id",))  # as good as v1
    with pytest.raises(Conflict):
        guarded(same.number)

    lifecycle.promote(shop.uow(), "m", weak.number, "staging", actor="t", now=shop.clock())
    guarded = promote_if_better(
        shop.uow(),
        shop.artifacts,
        shop.predictors,
        "m",
        strong.number,
        "staging",
        alpha=0.05,
        actor="t",
        reason="wins",
        now=shop.clock(),
    )
    assert guarded.comparison is not None and guarded.comparison.b_is_better
    assert guarded.baseline.number == weak.number and "staging points at" in guarded.baseline.why
    event = guarded.event
    assert event.to_version == strong.number and event.from_version == weak.number


def test_regression_uses_a_paired_test_on_errors(shop: Services) -> None:
    weak = train(
        shop,
        "monthly_charges",
        "linear_regression",
        ("customer_id", "internet_service", "total_charges"),
    )
    strong = train(shop, "monthly_charges", "linear_regression", ("customer_id",))
    result = compare(shop, weak.number, strong.number)
    assert result.metric == "rmse" and "Wilcoxon" in result.test  # type: ignore[attr-defined]
    assert result.verdict == f"v{strong.number} is better" and result.interval[1] < 0  # type: ignore[attr-defined]


def test_comparing_what_cannot_be_compared_says_why(shop: Services) -> None:
    train(shop, "churned", "logistic_regression", ("customer_id",))
    with pytest.raises(InvalidInput, match="two different versions"):
        compare(shop, 1, 1)
    train_model(
        shop.uow(),
        shop.artifacts,
        shop.open_source,
        TrainSpec(
            "m",
            "shop",
            "churned",
            "logistic_regression",
            table="customers",
            drop=("customer_id",),
            report=False,
        ),
        now=shop.clock,
    )
    with pytest.raises(InvalidInput, match="alpha"):
        compare_versions(
            shop.uow(), shop.artifacts, shop.predictors, "m", 1, 2, alpha=0.9, now=shop.clock()
        )


ADMIN = ("chief", "operator password 2026")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@contextmanager
def admin_browser(shop: Services) -> Iterator[TestClient]:
    """The dashboard, logged in as an admin made here."""
    accounts.create_user(shop.uow(), by=None, name=ADMIN[0], password=ADMIN[1], is_admin=True,
                         now=shop.clock())  # fmt: skip
    with TestClient(create_app(shop), base_url="http://testserver",
                    follow_redirects=False) as browser:  # fmt: skip
        token = CSRF.search(browser.get("/ui/login").text)
        assert token
        browser.post("/ui/login", data={"name": ADMIN[0], "password": ADMIN[1],
                                        "csrf": token.group(1)})  # fmt: skip
        yield browser


def test_an_unset_alias_is_guarded_by_what_the_bare_name_serves(shop: Services) -> None:
    """Defect: `promote --require-better` passed silently while the alias pointed nowhere. Now
    the candidate must beat what the bare name serves (production, else the newest version in
    service; the newest other one when that is the candidate), over the CLI, the admin API
    and the dashboard alike, and each says what it compared with."""
    strong = train(shop, "churned", "logistic_regression", ("customer_id",))
    weak = train(shop, "churned", "logistic_regression", WEAK_DROP)
    assert compare(shop, strong.number, weak.number).verdict == f"v{strong.number} is better"  # type: ignore[attr-defined]

    # CLI: v2 is what the bare name serves (the newest, no production alias): it is compared
    # with v1, the newest other version in service, and refused.
    refused = CliRunner().invoke(
        app, ["models", "promote", "m", str(weak.number), "--require-better"], obj=shop
    )
    assert refused.exit_code == 1, refused.output
    said = " ".join(refused.output.split())
    assert f"not significantly better than v{strong.number}" in said, said
    assert "production points nowhere yet" in said and "not promoted" in said
    assert lifecycle.aliases_of(shop.uow(), "m") == {}

    # Admin API: staging is unset, so v2 must beat what the bare name serves: v2 itself, so
    # v1 again. Refused with 409 and the same words.
    token = admin_token(shop, "train", "read")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(shop)) as client:
        answer = client.post("/v1/models/m/aliases/staging", headers=headers,
                             json={"version": weak.number, "require_better": True})  # fmt: skip
        assert answer.status_code == 409, answer.text
        assert f"than v{strong.number}" in answer.json()["detail"]
        # v1 beats v2, the bare name's version today: promoted, and the answer says against what.
        won = client.post("/v1/models/m/aliases/production", headers=headers,
                          json={"version": strong.number, "require_better": True})  # fmt: skip
        assert won.status_code == 200, won.text
        body = won.json()
        assert body["to_version"] == strong.number and body["compared_with"] == weak.number
        assert "without an alias serves today" in body["compared_because"]
        assert body["comparison"]["verdict"] == f"v{strong.number} is better"

    # Dashboard: the same use case behind the form's checkbox; now production (v1) is what the
    # bare name serves, and v2 does not beat it.
    with admin_browser(shop) as browser:
        page = browser.get("/ui/models/m")
        assert 'name="require_better"' in page.text
        csrf = CSRF.search(page.text)
        assert csrf
        form = {"alias": "canary", "version": str(weak.number), "reason": "try",
                "confirm": "yes", "csrf": csrf.group(1), "require_better": "yes"}  # fmt: skip
        no = browser.post("/ui/models/m/promote", data=form)
        assert no.status_code == 409 and "not significantly better" in no.text, no.text[:500]
        assert "canary" not in lifecycle.aliases_of(shop.uow(), "m")

    # v1 is what the bare name serves because production points at it (not because it is the
    # newest): the reason says so, and v2, the newest other version, is what it is held to.
    held = CliRunner().invoke(
        app, ["models", "promote", "m", str(strong.number), "--alias", "canary",
              "--require-better"], obj=shop,
    )  # fmt: skip
    said = " ".join(held.output.split())
    assert f"serves v{strong.number} itself (production points at it); v{weak.number} is" in said


def test_with_nothing_else_in_service_there_is_nothing_to_beat(shop: Services) -> None:
    only = train(shop, "churned", "logistic_regression", ("customer_id",))
    result = CliRunner().invoke(
        app, ["models", "promote", "m", str(only.number), "--require-better"], obj=shop
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "nothing to beat" in said and f"nothing -> v{only.number}" in said


def test_the_pages_show_productions_metrics_and_pair_plots_by_kind(shop: Services) -> None:
    """The models list shows the metrics of the version production serves, naming it; the
    compare page pairs the two reports' plots by kind, with an empty cell where a version
    has no plot of that kind (two algorithms draw different importances)."""
    versions = []
    for algorithm in ("logistic_regression", "random_forest"):
        spec = TrainSpec("m", "shop", "churned", algorithm, table="customers",
                         drop=("customer_id",), params={"n_estimators": 20}
                         if algorithm.startswith("random") else None)  # fmt: skip
        versions.append(train_model(
            shop.uow(), shop.artifacts, shop.open_source, spec, now=shop.clock
        ).version)  # fmt: skip
    first, second = versions
    with admin_browser(shop) as browser:
        latest = browser.get("/ui/models").text
        assert f"v{second.number} (latest)" in latest
        lifecycle.promote(shop.uow(), "m", first.number, "production", actor="test",
                          reason="the simpler one", now=shop.clock())  # fmt: skip
        listed = browser.get("/ui/models").text
        row = listed[listed.index('data-model="m"') :].split("</tr>")[0]
        metrics = row.split('<td class="metrics">')[1]
        assert f"v{first.number} (production)" in metrics
        name, value = next(iter(first.metrics.items()))
        assert f"{name} {value:.4f}" in metrics  # production's value
        if f"{second.metrics[name]:.4f}" != f"{value:.4f}":
            assert f"{name} {second.metrics[name]:.4f}" not in metrics  # not the latest's

        titles = [
            plot_titles(read_attachment(shop.uow(), shop.artifacts, v, "report.html"))
            for v in versions
        ]
        assert set(titles[0]) != set(titles[1])  # the case this test is about
        page = browser.get(f"/ui/models/m/compare?a={first.number}&b={second.number}").text
        cells = re.findall(r'<div class="side-by-side plots" data-plot="([^"]+)" '
                           r'data-kind="[^"]+">(.*?)</div>', page, re.S)  # fmt: skip
        assert [html.unescape(t) for t, _ in cells] == titles[0] + [
            t for t in titles[1] if t not in titles[0]
        ]
        for title, cell in cells:
            shown = [html.unescape(t) in titles[i] for i, t in enumerate([title, title])]
            figures = re.findall(r"<figure.*?</figure>", cell, re.S)
            assert len(figures) == 2  # one cell a side, in step
            for side, (present, figure) in enumerate(zip(shown, figures, strict=True)):
                number = versions[side].number
                assert ("<img" in figure) == present
                assert (f"not in v{number}" in figure) == (not present)

    # A version trained before plots had captions kept only its page, each plot written as
    # <figure id='KIND'><figcaption>TITLE</figcaption><img ...>: it pairs with today's by kind,
    # whatever the titles say, and its captions say what is known.
    stored = [read_attachment(shop.uow(), shop.artifacts, v, "report.html") for v in versions]
    today = [reports.figures(page, v) for page, v in zip(stored, versions, strict=True)]
    old_page = "".join(
        f"<figure id='{f.kind}'><figcaption>{html.escape(f.title.upper())}</figcaption>"
        f"<img alt='{html.escape(f.title.upper())}' src='{f.uri}'></figure>"
        for f in today[0]
    ).encode()
    before = replace(first, report={
        k: v for k, v in (first.report or {}).items() if k not in ("figures", "learning_curve")
    })  # fmt: skip
    old = reports.figures(old_page, before)
    assert [(f.kind, f.uri) for f in old] == [(f.kind, f.uri) for f in today[0]]
    assert all(f.title != t.title for f, t in zip(old, today[0], strict=True))
    assert all("drawn before" in f.caption.lower() for f in old)
    by_kind = reports.paired(old, today[1])
    assert by_kind == [
        (f.title, f, next((g for g in today[1] if g.kind == f.kind), None)) for f in old
    ] + [(g.title, None, g) for g in today[1] if g.kind not in {f.kind for f in old}]
    assert [(a is None, b is None) for _, a, b in by_kind] == [
        (a is None, b is None) for _, a, b in reports.paired(today[0], today[1])
    ]
    page = next(f for f in old if f.kind == "learning-curve")
    assert "at most the first 2,000 training rows" in page.caption
