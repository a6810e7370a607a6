"""Reports: rendered for every task with the plots people expect; coefficient tables equal
statsmodels fitted by hand on the same data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn import datasets
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import read_attachment, resolve_version
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services

NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "senior_citizen", "support_calls"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("reports")
    built = make_services(home / "home")
    folder = home / "data"
    folder.mkdir()
    demo.churn_frame(n_rows=800, seed=5).to_csv(folder / "churn.csv", index=False)
    iris = datasets.load_iris(as_frame=True).frame
    iris.to_csv(folder / "iris.csv", index=False)
    add_source_to(built, "d", str(folder), cwd=home)
    yield built
    built.close()


def train(
    services: Services, name: str, algorithm: str, table: str, target: str, **kw: object
) -> ModelVersion:
    spec = TrainSpec(name, "d", target, algorithm, table=table, **kw)  # type: ignore[arg-type]
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def figures(page: bytes) -> set[str]:
    return set(re.findall(r"<figcaption>([^<]+)</figcaption><img", page.decode()))


@pytest.mark.parametrize(
    ("algorithm", "table", "target", "expected"),
    [
        (
            "random_forest",
            "churn",
            "churned",
            {
                "confusion matrix",
                "ROC and precision-recall curves",
                "calibration curve",
                "native importance",
            },
        ),
        (
            "lightgbm",
            "iris",
            "target",
            {"confusion matrix", "ROC and precision-recall curves", "native importance"},
        ),
        ("ridge", "churn", "monthly_charges", {"residual plot"}),
    ],
)
def test_reports_render_for_every_task(
    services: Services, algorithm: str, table: str, target: str, expected: set[str]
) -> None:
    drop = ("customer_id",) if table == "churn" else ()
    version = train(services, f"r-{algorithm}", algorithm, table, target, drop=drop)
    page = read_attachment(services.uow(), services.artifacts, version, "report.html")
    shown = figures(page)
    assert expected | {"permutation importance", "learning curve"} <= shown
    assert set((version.report or {})["plots"]) == shown
    assert b"95% bootstrap interval" in page


def reference_dummies(frame: pd.DataFrame) -> pd.DataFrame:
    """Levels sorted, "missing" last where there is one, the first (a real one) dropped."""
    levels = {
        name: pd.Categorical(
            frame[name].astype(object).fillna("__missing__"),
            categories=sorted(frame[name].dropna().unique())
            + (["__missing__"] if frame[name].isna().any() else []),
        )
        for name in frame.columns
    }
    return pd.get_dummies(pd.DataFrame(levels, index=frame.index), drop_first=True, dtype="float64")


def reference_design(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numbers in their own units and first-level-dropped dummies, built by hand with pandas."""
    X = rows[NUMERIC + CATEGORICAL].copy()
    X_train, _ = train_test_split(X, test_size=0.2, random_state=42, stratify=rows["churned"])
    numbers = X_train[NUMERIC].astype("float64")
    numbers = numbers.fillna(numbers.median())  # in the data's units: imputed, not scaled
    dummies = reference_dummies(X_train[CATEGORICAL])
    return sm.add_constant(pd.concat([numbers, dummies], axis=1)), X_train


def test_logistic_coefficients_and_errors_equal_statsmodels(services: Services) -> None:
    rows = demo.churn_frame(n_rows=800, seed=5)
    version = train(
        services, "logit", "logistic_regression", "churn", "churned", drop=("customer_id",)
    )
    design, X_train = reference_design(rows)
    y = rows.loc[X_train.index, "churned"]
    expected = sm.Logit(y.to_numpy(), design.to_numpy()).fit(disp=0)
    table = (version.report or {})["coefficients"]
    assert len(table) == design.shape[1]
    np.testing.assert_allclose([c["estimate"] for c in table], expected.params, rtol=1e-8)
    np.testing.assert_allclose([c["std_error"] for c in table], expected.bse, rtol=1e-8)
    np.testing.assert_allclose(
        [c["p_value"] for c in table], expected.pvalues, rtol=1e-7, atol=1e-300
    )
    assert table[0]["term"] == "intercept"
    # Named by column (and `column = level`); standardized per standard deviation; odds ratios.
    names = [c["term"] for c in table]
    assert names[1 : 1 + len(NUMERIC)] == NUMERIC
    assert all(" = " in n or n.endswith(" (missing)") for n in names[1 + len(NUMERIC) :])
    sd = design.iloc[:, 1:].std(ddof=0).to_numpy()
    np.testing.assert_allclose(
        [c["standardized"] for c in table[1:]], expected.params[1:] * sd, rtol=1e-5, atol=1e-8
    )
    odds = np.array([c["odds_ratio"] for c in table])
    np.testing.assert_allclose(odds[:, 0], np.exp(expected.params), rtol=1e-5)
    np.testing.assert_allclose(odds[:, 1:], np.exp(expected.conf_int()), rtol=1e-5)
    # The served model is penalized (C=1): its own coefficients, in the same units, beside them.
    inference = (version.report or {})["inference"]
    served = np.array([c["served"] for c in table])
    largest = np.max(np.abs(served - expected.params) / np.abs(expected.params))
    assert inference["served_difference"] == pytest.approx(largest, rel=1e-4)
    assert inference["diagnostics"]["mcfadden_r2"] == pytest.approx(expected.prsquared, 1e-6)
    assert inference["diagnostics"]["llr"] == pytest.approx(expected.llr, 1e-6)
    reading = (version.report or {})["reading"]
    assert any("contract" in line for line in reading)
    assert all("the odds of churned = 1 " in line for line in reading)  # the positive class


def test_linear_coefficients_and_errors_equal_statsmodels(services: Services) -> None:
    rows = demo.churn_frame(n_rows=800, seed=5)
    version = train(
        services,
        "ols",
        "linear_regression",
        "churn",
        "support_calls",
        drop=("customer_id", "churned"),
    )
    rows = rows.drop(columns=["support_calls"]).assign(support_calls=rows["support_calls"])
    numeric = [c for c in NUMERIC if c != "support_calls"]
    X = rows[numeric + CATEGORICAL]
    X_train, _, y_train, _ = train_test_split(
        X, rows["support_calls"], test_size=0.2, random_state=42
    )
    numbers = X_train[numeric].astype("float64")
    numbers = numbers.fillna(numbers.median())
    dummies = reference_dummies(X_train[CATEGORICAL])
    design = sm.add_constant(pd.concat([numbers, dummies], axis=1))
    expected = sm.OLS(y_train.astype("float64").to_numpy(), design.to_numpy()).fit()
    table = (version.report or {})["coefficients"]
    np.testing.assert_allclose([c["estimate"] for c in table], expected.params, rtol=1e-8)
    np.testing.assert_allclose([c["std_error"] for c in table], expected.bse, rtol=1e-8)
    diagnostics = (version.report or {})["inference"]["diagnostics"]
    assert diagnostics["r2"] == pytest.approx(expected.rsquared, 1e-9)
    assert diagnostics["adj_r2"] == pytest.approx(expected.rsquared_adj, 1e-9)
    assert diagnostics["f"] == pytest.approx(expected.fvalue, 1e-7)
    assert diagnostics["aic"] == pytest.approx(expected.aic, 1e-9)
    assert diagnostics["bic"] == pytest.approx(expected.bic, 1e-9)
    # The served LinearRegression is unpenalized: the same numbers, in the same units.
    np.testing.assert_allclose([c["served"] for c in table], expected.params, rtol=1e-6)
    assert "normal Q-Q plot of the residuals" in (version.report or {})["plots"]
    assert (version.report or {})["inference"]["diagnostics"]["durbin_watson"] > 0


def test_the_report_command_writes_the_html(services: Services, tmp_path: Path) -> None:
    train(services, "cli-report", "decision_tree", "churn", "churned", drop=("customer_id",))
    target = tmp_path / "out.html"
    result = CliRunner().invoke(
        app, ["models", "report", "cli-report@1", "-o", str(target)], obj=services
    )
    assert result.exit_code == 0, result.output
    assert "most important inputs" in result.output
    page = target.read_text()
    assert "<h1>cli-report v1</h1>" in page and "learning curve" in page
    plots = tmp_path / "plots"
    drawn = CliRunner().invoke(
        app, ["models", "report", "cli-report", "-o", str(target), "--plots", str(plots)],
        obj=services,
    )  # fmt: skip
    assert drawn.exit_code == 0, drawn.output
    files = sorted(p.name for p in plots.iterdir())
    contributions = [f for f in files if f.startswith("contributions-")]
    assert "contributions-summary.png" in contributions and len(contributions) == 4
    assert sorted(set(files) - set(contributions)) == [
        "calibration-curve.png", "confusion-matrix.png", "learning-curve.png",
        "native-importance.png", "permutation-importance.png",
        "roc-and-precision-recall-curves.png",
    ]  # fmt: skip
    shown = (resolve_version(services.uow(), "cli-report", 1).report or {})["contributions"]
    assert shown["method"] == "tree_shap" and shown["scale"] == "probability"
    assert "What drives the predictions" in page
    assert all((plots / f).read_bytes().startswith(b"\x89PNG") for f in files)
    train(services, "cli-logit", "logistic_regression", "churn", "churned", drop=("customer_id",))
    linear = CliRunner().invoke(
        app, ["models", "report", "cli-logit", "-o", str(target)], obj=services, terminal_width=200
    )
    assert linear.exit_code == 0, linear.output
    assert "coefficients in the data's units (with standard errors)" in linear.output
    assert "tenure_months" in linear.output and "numeric__" not in linear.output
    bad = CliRunner().invoke(app, ["models", "report", "cli-report@Not Valid"], obj=services)
    assert bad.exit_code == 1 and "MODEL@VERSION" in bad.output
    unknown = CliRunner().invoke(app, ["models", "report", "cli-report@staging"], obj=services)
    assert unknown.exit_code == 1 and "has no alias 'staging'" in unknown.output


def test_a_calibrated_models_learning_curve_refits_its_estimator_alone(services: Services) -> None:
    """The SVMs calibrate their probabilities (six fits a model): the learning curve, which
    reads accuracy, refits the bare SVC and its caption says so; other models refit whole."""
    version = train(services, "r-svm", "svm", "iris", "target")
    report = version.report or {}
    drawn = report["learning_curve"]
    assert drawn["uncalibrated"] == "SVC" and drawn["rows"] == 120 and len(drawn["sizes"]) == 4
    caption = next(f["caption"] for f in report["figures"] if f["title"] == "learning curve")
    assert "The refits are of the SVC alone" in caption and "all 120 training rows" in caption
    forest = train(services, "r-forest-curve", "random_forest", "iris", "target")
    assert "uncalibrated" not in (forest.report or {})["learning_curve"]
