"""A version's report inside the dashboard: the dashboard's navigation at full width, the
coefficient table readable (five columns, numbers formatted, "not defined" with the reason),
every plot captioned with the rows it was drawn on, and the standalone page still there to
download."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.bootstrap import Services
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import read_attachment
from mlgate.sources import demo
from mlgate.training.report import MAX_ROWS_FOR_LEARNING_CURVE
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services
from tests.integration.test_compare import admin_browser

CHURN_ROWS = 3_000  # more training rows than the learning curve takes: it samples


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("report-page")
    built = make_services(home / "home")
    folder = home / "data"
    folder.mkdir()
    demo.churn_frame(n_rows=CHURN_ROWS, seed=11).to_csv(folder / "churn.csv", index=False)
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    separated = pd.DataFrame({"x": x, "noise": rng.normal(size=60), "y": (x > 0).astype(int)})
    separated.to_csv(folder / "separated.csv", index=False)
    add_source_to(built, "d", str(folder), cwd=home)
    yield built
    built.close()


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient]:
    with admin_browser(services) as logged_in:
        yield logged_in


def train(services: Services, name: str, table: str, target: str, **kw: object) -> ModelVersion:
    spec = TrainSpec(name, "d", target, "logistic_regression", table=table, **kw)  # type: ignore[arg-type]
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def cells(row: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<t[hd](?:\s[^>]*)?>(.*?)</t[hd]>", row, re.S)]


def test_the_report_renders_in_the_dashboard_with_captions_and_a_readable_table(
    services: Services, browser: TestClient
) -> None:
    version = train(services, "churn", "churn", "churned", drop=("customer_id",))
    report = version.report or {}
    training_rows = version.lineage.n_rows - report["evaluation"]["n_holdout"]
    assert training_rows > MAX_ROWS_FOR_LEARNING_CURVE  # the case the caption must say

    answer = browser.get("/ui/models/churn/versions/1/report")
    assert answer.status_code == 200, answer.text[:500]
    page = answer.text
    # The dashboard's layout: its navigation, the page at full width, the way back.
    assert '<nav aria-label="Main">' in page
    assert '<a href="/ui/models" aria-current="page">Models</a>' in page
    assert '<main id="main" class="wide">' in page
    assert '<a href="/ui/models/churn">&larr; churn: all versions</a>' in page
    assert "script-src 'self'" in answer.headers["content-security-policy"]

    # Every plot captioned; the learning curve says on what rows, split and metric.
    figures = re.findall(
        r'<figure class="plot(?: wide)?" id="plot-([^"]+)" data-kind="[^"]+">\s*'
        r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)">\s*<figcaption>(.*?)</figcaption>',
        page,
        re.S,
    )
    assert [html.unescape(t) for _, t, _ in figures] == [f["title"] for f in report["figures"]]
    assert len(figures) == len(report["plots"]) >= 6
    captions = {kind: html.unescape(re.sub(r"<[^>]+>", "", c)) for kind, _, c in figures}
    assert all(len(c) > 60 for c in captions.values()), captions
    sizes = report["learning_curve"]["sizes"]
    assert sizes[-1] == MAX_ROWS_FOR_LEARNING_CURVE * 2 // 3  # three folds: two fitted
    assert captions["learning-curve"] == (
        f"Learning curve. Accuracy on the rows fitted (training) and on unseen rows (3-fold "
        f"cross-validation) as the model is refitted on growing shares ({sizes[0]:,} to "
        f"{sizes[-1]:,} rows) of a random sample of "
        f"{MAX_ROWS_FOR_LEARNING_CURVE:,} of the {training_rows:,} training rows; each share "
        "scored by 3-fold cross-validation within those rows. The holdout rows are not used."
    )
    holdout = f"{report['evaluation']['n_holdout']:,} holdout rows"
    # Two panels side by side take a whole row of the page.
    assert re.search(r'<figure class="plot wide" id="plot-ROC-and-precision-recall-curves"', page)
    assert re.search(r'<figure class="plot" id="plot-confusion-matrix"', page)
    assert holdout in captions["confusion-matrix"] and holdout in captions["calibration-curve"]

    # The coefficient table: term, estimate, std. error, interval, p-value (and odds ratio).
    table = page[page.index('<table class="numbers coefficients">') :].split("</table>")[0]
    header = cells(table.split("</thead>")[0])
    assert header == [
        "term", "estimate", "std. error", "95% interval", "p-value", "odds ratio (95% interval)"
    ]  # fmt: skip
    rows = [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)]
    terms = report["inference"]["terms"]
    assert [r[0] for r in rows] == [t["term"] for t in terms]
    for row, term in zip(rows, terms, strict=True):
        assert row[1] == f"{term['estimate']:.4g}"
        assert row[2] == f"{term['std_error']:.3g}"
        assert row[3] == f"{term['low']:.4g} to {term['high']:.4g}"
        p = term["p_value"]
        assert row[4] == ("< 0.0001" if p < 1e-4 else f"{p:.4f}")
    assert any(r[4] == "< 0.0001" for r in rows)  # tenure, on 3,000 rows

    # The standalone page, as training stored it, to download.
    stored = read_attachment(services.uow(), services.artifacts, version, "report.html")
    download = browser.get("/ui/models/churn/versions/1/report.html")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="churn-v1-report.html"'
    assert download.content == stored.replace(b"<!--mlgate:version-->", b"v1")
    assert "script-src" not in download.headers["content-security-policy"]
    assert 'href="/ui/models/churn/versions/1/report.html" download' in page


def test_undefined_statistics_say_not_defined_and_why(
    services: Services, browser: TestClient
) -> None:
    version = train(services, "separated", "separated", "y")
    terms = (version.report or {})["inference"]["terms"]
    assert any(t["p_value"] is None for t in terms)  # perfect separation
    page = browser.get("/ui/models/separated/versions/1/report").text
    undefined = re.findall(r'<td class="undefined">(.*?)</td>', page, re.S)
    reason = next(
        t["undefined"]["p_value"] for t in terms if t["p_value"] is None and t.get("undefined")
    )
    assert html.escape(f"not defined ({reason})") in undefined
    assert "Perfect separation" in page  # the warning above the metrics


def test_a_version_without_a_report_and_a_bad_version_are_refused(
    services: Services, browser: TestClient
) -> None:
    train(services, "bare", "churn", "churned", drop=("customer_id",), report=False)
    missing = browser.get("/ui/models/bare/versions/1/report")
    assert missing.status_code == 404 and "trained without one" in missing.text
    assert browser.get("/ui/models/bare/versions/1/report.html").status_code == 404
    bad = browser.get("/ui/models/bare/versions/x1/report")
    assert bad.status_code == 422 and "version must be a version number" in bad.text
