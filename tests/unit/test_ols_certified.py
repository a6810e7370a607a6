"""mlgate's least squares for inference (training/ols.py and training/inference.py), certified:
against NIST's published values for the Longley data, against statsmodels computed here on the
same rows, and against an exact reference (50-digit arithmetic) on designs with condition
numbers from 1e8 to 1e12."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.datasets import longley
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.stattools import durbin_watson

from mlgate.training.inference import (
    CONDITION_LIMIT,
    VIF_LIMIT,
    collinearity_warnings,
    condition_number,
    hosmer_lemeshow,
    variance_inflation,
)
from mlgate.training.ols import diagnostics, fit_ols

LONGLEY = longley.load_pandas().data
# NIST StRD, Longley (certified to 15 digits): https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml
NIST_ESTIMATES = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01,
                  -2.02022980381683, -1.03322686717359, -0.511041056535807e-01,
                  1829.15146461355]  # fmt: skip
NIST_ERRORS = [890420.383607373, 84.9149257747669, 0.334910077722432e-01, 0.488399681651699,
               0.214274163161675, 0.226073200069370, 455.478499142212]  # fmt: skip
NIST_RESIDUAL_SD = 304.854073561965
NIST_R2 = 0.995479004577296


def longley_xy() -> tuple[np.ndarray, np.ndarray]:
    return LONGLEY.drop(columns="TOTEMP").to_numpy(), LONGLEY["TOTEMP"].to_numpy()


def test_longley_matches_nists_certified_values() -> None:
    X, y = longley_xy()
    fit = fit_ols(X, y)
    np.testing.assert_allclose(fit.params, NIST_ESTIMATES, rtol=1e-12)
    np.testing.assert_allclose(fit.bse, NIST_ERRORS, rtol=1e-12)
    found = diagnostics(fit, X, y)
    assert found["residual_std_error"] == pytest.approx(NIST_RESIDUAL_SD, rel=1e-12)
    assert found["r2"] == pytest.approx(NIST_R2, rel=1e-12)


def well_conditioned(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, 1.0, -2.0]
    noise = rng.normal(size=200) * (1 + np.abs(X[:, 0]))  # heteroscedastic: HC3 differs
    return X, 1.0 + X @ [0.5, -0.2, 3.0, 0.0] + noise


@pytest.mark.parametrize("table", ["longley", "well-conditioned"])
def test_every_figure_equals_statsmodels_on_the_same_rows(table: str) -> None:
    X, y = longley_xy() if table == "longley" else well_conditioned()
    exog = sm.add_constant(X)
    expected = sm.OLS(y, exog).fit()
    fit = fit_ols(X, y)
    # statsmodels' own error on Longley is ~1e-11 (its pinv on raw columns): 1e-8 leaves room.
    np.testing.assert_allclose(fit.params, expected.params, rtol=1e-8)
    np.testing.assert_allclose(fit.bse, expected.bse, rtol=1e-8)
    np.testing.assert_allclose(fit.pvalues, expected.pvalues, rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(fit.conf_int(), expected.conf_int(), rtol=1e-8)
    robust = fit_ols(X, y, se="hc3")
    np.testing.assert_allclose(robust.params, expected.params, rtol=1e-8)
    np.testing.assert_allclose(robust.bse, sm.OLS(y, exog).fit(cov_type="HC3").bse, rtol=1e-8)
    found = diagnostics(fit, X, y)
    bp, bp_p, _, _ = het_breuschpagan(expected.resid, exog)
    pairs = {
        "r2": expected.rsquared, "adj_r2": expected.rsquared_adj, "f": expected.fvalue,
        "f_p_value": expected.f_pvalue, "aic": expected.aic, "bic": expected.bic,
        "log_likelihood": expected.llf, "durbin_watson": durbin_watson(expected.resid),
        "breusch_pagan": bp, "breusch_pagan_p_value": bp_p,
    }  # fmt: skip
    for name, value in pairs.items():
        assert found[name] == pytest.approx(value, rel=1e-8), name
    assert condition_number(exog) == pytest.approx(expected.condition_number, rel=1e-8)
    vifs = [variance_inflation_factor(exog, i) for i in range(1, exog.shape[1])]
    np.testing.assert_allclose(variance_inflation(exog), vifs, rtol=1e-8)


def exact_fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients, standard errors and fitted values of OLS in 50-digit arithmetic, on the
    very float64 numbers given (each is exactly representable)."""
    with mpmath.workdps(50):
        A = mpmath.matrix([[1, *(mpmath.mpf(float(v)) for v in row)] for row in X])
        b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        inverse = mpmath.inverse(A.T * A)
        beta = inverse * (A.T * b)
        residual = b - A * beta
        sigma2 = sum(r**2 for r in residual) / (A.rows - A.cols)
        errors = [mpmath.sqrt(sigma2 * inverse[i, i]) for i in range(A.cols)]
        fitted = A * beta
        as_floats = [np.array([float(v) for v in m]) for m in (beta, errors, fitted)]
    return as_floats[0], as_floats[1], as_floats[2]


def ill_conditioned(delta: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two columns that differ by `delta` of their spread, around a large offset, and a third."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(40, 3))
    x1 = 5e4 + 1000 * z[:, 0]
    X = np.column_stack([x1, x1 + delta * 1000 * z[:, 1], z[:, 2]])
    return X, 3 + 0.5 * X[:, 0] - 0.25 * X[:, 1] + 2 * X[:, 2] + rng.normal(size=40)


DELTAS = [1e-6, 1e-7, 1e-8, 1e-9, 1e-10]


@pytest.mark.parametrize("delta", DELTAS)
def test_ill_conditioned_designs_keep_seven_digits(delta: float) -> None:
    X, y = ill_conditioned(delta)
    cond = condition_number(np.column_stack([np.ones(len(X)), X]))
    assert 1e8 <= cond <= 1.2e12  # the designs are what the test says they are
    beta, errors, _ = exact_fit(X, y)
    fit = fit_ols(X, y)
    np.testing.assert_allclose(fit.params, beta, rtol=1e-7)
    np.testing.assert_allclose(fit.bse, errors, rtol=1e-7)


def test_the_collinearity_warning_appears_exactly_past_its_thresholds() -> None:
    names = ["a", "b"]
    assert collinearity_warnings(CONDITION_LIMIT, names, np.array([VIF_LIMIT, 1.0])) == []
    above = collinearity_warnings(CONDITION_LIMIT * 1.01, names, np.array([1.0, 2.0]))
    assert len(above) == 1 and "condition number is 1.01e+06" in above[0]
    inflated = collinearity_warnings(10.0, names, np.array([VIF_LIMIT * 1.01, 2.0]))
    assert len(inflated) == 1 and "a (VIF 10.1)" in inflated[0] and "b (VIF" not in inflated[0]
    X, y = longley_xy()
    exog = sm.add_constant(X)
    both = collinearity_warnings(condition_number(exog), list(LONGLEY.columns[1:]),
                                 variance_inflation(exog))  # fmt: skip
    assert len(both) == 2 and "4.86e+09" in both[0] and "GNP (VIF 1.79e+03)" in both[1]
    assert "ARMED" not in both[1]  # its VIF is 3.6
    repeated = np.column_stack([np.ones(16), X[:, 0], X[:, 0] * 2, X[:, 1]])
    assert np.isinf(variance_inflation(repeated)[:2]).all()  # a column that repeats another


def test_hosmer_lemeshow_by_hand() -> None:
    """Ten groups of ten: the statistic summed by hand from each group's counts."""
    p = np.repeat(np.linspace(0.05, 0.95, 10), 10)
    y = np.concatenate([np.r_[np.ones(k), np.zeros(10 - k)] for k in range(1, 11)])
    statistic, p_value = hosmer_lemeshow(y, p)
    by_hand = sum(
        (k - 10 * q) ** 2 / (10 * q * (1 - q))
        for k, q in zip(range(1, 11), np.linspace(0.05, 0.95, 10), strict=True)
    )
    assert statistic == pytest.approx(by_hand, rel=1e-12)
    from scipy import stats

    assert p_value == pytest.approx(stats.chi2.sf(by_hand, 8), rel=1e-12)
