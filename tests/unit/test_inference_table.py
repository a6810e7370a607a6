"""The coefficient table of linear and logistic models through training (over the in-memory
fakes): HC3 on request and refused where there is no table, a logistic fit on a 16-row table
equal to statsmodels', and the collinearity warning that opens the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from mlgate.errors import InvalidInput
from tests.unit.test_fit_every_row import LONGLEY, World


def test_hc3_standard_errors_on_request_and_refused_without_a_table() -> None:
    world = World(LONGLEY)
    version = world.train("TOTEMP", "linear_regression", params={"se": "hc3"}, test_size=0.0)
    found = (version.report or {})["inference"]
    assert found["standard_errors"] == "hc3"
    X, y = LONGLEY.drop(columns="TOTEMP"), LONGLEY["TOTEMP"]
    expected = sm.OLS(y.to_numpy(), sm.add_constant(X.to_numpy())).fit(cov_type="HC3")
    np.testing.assert_allclose([t["std_error"] for t in found["terms"]], expected.bse, rtol=1e-8)
    assert [t["term"] for t in found["terms"]] == ["intercept", *X.columns]
    assert found["warnings"] and "condition number is 4.86e+09" in found["warnings"][0]
    with pytest.raises(InvalidInput, match="se must be one of classical, hc3"):
        world.train("TOTEMP", "linear_regression", params={"se": "hc9"})
    with pytest.raises(InvalidInput, match="linear_regression and logistic_regression"):
        world.train("TOTEMP", "ridge", params={"se": "hc3"})


def test_a_16_row_logistic_table_equals_statsmodels() -> None:
    frame = LONGLEY.assign(high=(LONGLEY["UNEMP"] > LONGLEY["UNEMP"].median()).astype(int))
    frame = frame[["ARMED", "POP", "high"]]
    version = World(frame).train("high", "logistic_regression", test_size=0.0)
    found = (version.report or {})["inference"]
    design = sm.add_constant(frame[["ARMED", "POP"]].to_numpy())
    expected = sm.Logit(frame["high"].to_numpy(), design).fit(disp=0)
    terms = found["terms"]
    np.testing.assert_allclose([t["estimate"] for t in terms], expected.params, rtol=1e-8)
    np.testing.assert_allclose([t["std_error"] for t in terms], expected.bse, rtol=1e-8)
    np.testing.assert_allclose([t["p_value"] for t in terms], expected.pvalues, rtol=1e-8)
    assert found["diagnostics"]["mcfadden_r2"] == pytest.approx(expected.prsquared, rel=1e-8)
    assert found["diagnostics"]["llr_p_value"] == pytest.approx(expected.llr_pvalue, rel=1e-8)
    assert 0 <= found["diagnostics"]["hosmer_lemeshow_p_value"] <= 1
    odds = np.array([t["odds_ratio"] for t in terms])
    np.testing.assert_allclose(odds[:, 0], np.exp(expected.params), rtol=1e-8)


def test_categories_and_missing_values_are_named_by_column_and_level() -> None:
    rng = np.random.default_rng(2)
    n = 150
    frame = pd.DataFrame({
        "size": rng.normal(50, 10, n),
        "plan": rng.choice(["basic", "pro", "team"], n),
    })  # fmt: skip
    frame.loc[::7, "plan"] = None
    frame.loc[::11, "size"] = np.nan
    frame["spend"] = 2.0 * frame["size"].fillna(50) + frame["plan"].map(
        {"basic": 0.0, "pro": 15.0, "team": 40.0}).fillna(5.0) + rng.normal(0, 3, n)  # fmt: skip
    version = World(frame).train("spend", "linear_regression", test_size=0.0)
    names = [t["term"] for t in (version.report or {})["inference"]["terms"]]
    assert names == ["intercept", "size", "plan = pro", "plan = team", "plan (missing)"]
    by_name = {t["term"]: t for t in (version.report or {})["inference"]["terms"]}
    assert by_name["size"]["estimate"] == pytest.approx(2.0, abs=0.1)  # per unit of size
    assert by_name["plan = team"]["estimate"] == pytest.approx(40.0, abs=2.0)  # vs basic
