"""Ordinary least squares for inference, computed so that ill-conditioned tables keep their digits.

The design is centred (the intercept then separates from the slopes: most of a raw table's
condition number is often its columns' offsets) and each column scaled to unit length; the
slopes come from its singular value decomposition, then one step of iterative refinement with
the residual accumulated in extended precision, which recovers the digits that a condition
number up to ~1e12 would otherwise cost. Never normal equations on raw columns (that squares the
condition number). Standard errors are classical or HC3 (MacKinnon and White, 1985); the
diagnostics are those of a regression table: F, R², adjusted R², log-likelihood, AIC, BIC,
residual standard error, Durbin-Watson and Breusch-Pagan (Koenker's studentized form, as
statsmodels computes it by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

REFINEMENTS = 2


@dataclass(frozen=True)
class OLSFit:
    params: np.ndarray  # intercept first
    cov: np.ndarray  # covariance of params (classical or HC3)
    fitted: np.ndarray
    resid: np.ndarray
    n: int
    df_resid: int
    ssr: float
    rank: int

    @property
    def bse(self) -> np.ndarray:
        return np.asarray(np.sqrt(np.diag(self.cov)))

    @property
    def tvalues(self) -> np.ndarray:
        return np.asarray(self.params / self.bse)

    @property
    def pvalues(self) -> np.ndarray:
        return np.asarray(2 * stats.t.sf(np.abs(self.tvalues), self.df_resid))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        q = stats.t.ppf(1 - alpha / 2, self.df_resid)
        return np.column_stack([self.params - q * self.bse, self.params + q * self.bse])


def fit_ols(X: np.ndarray, y: np.ndarray, *, se: str = "classical") -> OLSFit:
    """OLS of y on an intercept and the columns of X (which holds no intercept column)."""
    X = np.asarray(X, dtype="float64")
    y = np.asarray(y, dtype="float64")
    n, p = X.shape
    means = X.mean(axis=0)
    y_mean = float(y.mean())
    Z = X - means
    yc = y - y_mean
    norms = np.linalg.norm(Z, axis=0)
    norms[norms == 0] = 1.0
    Zs = Z / norms
    U, s, Vt = np.linalg.svd(Zs, full_matrices=False)
    keep = s > s[0] * max(n, p) * np.finfo("float64").eps if len(s) else s > 0
    inverse = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)

    def solve(rhs: np.ndarray) -> np.ndarray:
        return np.asarray(Vt.T @ (inverse * (U.T @ rhs)))

    scaled = solve(yc)
    # Refined in extended precision (see _refined), centring included: float64 means are off
    # by an ulp, which a condition number of 1e11 magnifies past the 7th digit.
    wide_X, wide_y = X.astype(np.longdouble), y.astype(np.longdouble)
    wide_means, wide_y_mean = wide_X.mean(axis=0), wide_y.mean()
    wide_Z = (wide_X - wide_means) / norms
    wide_y = wide_y - wide_y_mean
    wide_x, _ = _refined(wide_Z, wide_y, Zs, U, inverse, Vt, scaled)
    scaled = wide_x.astype("float64")
    residual = wide_y - wide_Z @ wide_x
    slopes = scaled / norms
    intercept = float(wide_y_mean - np.sum(wide_means * (wide_x / norms)))
    params = np.concatenate([[intercept], slopes])
    resid = residual.astype("float64")  # y - fitted, without the cancellation of X @ slopes
    fitted = y - resid
    rank = int(keep.sum()) + 1
    df_resid = n - rank
    ssr = float(residual @ residual)
    # (Z'Z)^-1 = D^-1 V S^-2 V' D^-1 for the slopes. The intercept's terms go through
    # w = S^-1 V' D^-1 m and never through that matrix: m' (Z'Z)^-1 m = |w|^2 is a sum of
    # squares, where the matrix's large entries of opposite sign would cancel (an offset of
    # 5e4 on nearly collinear columns cost the intercept's standard error 2 digits per decade
    # of condition number that way).
    # The singular values again, as |Z v| in extended precision: a Rayleigh quotient's error
    # is second order in v's, where the SVD's own smallest value is good to eps x cond only.
    refined = np.sqrt(np.sum((wide_Z @ Vt.T.astype(np.longdouble)) ** 2, axis=0)).astype("float64")
    inverse = np.where(keep, 1.0 / np.where(keep, refined, 1.0), 0.0)
    slope_inverse = (Vt.T * inverse**2) @ Vt / np.outer(norms, norms)
    w = inverse * (Vt @ (means / norms))
    g = (Vt.T @ (inverse * w)) / norms  # (Z'Z)^-1 m
    if se == "hc3":
        leverage = 1.0 / n + np.sum(U[:, keep] ** 2, axis=1)
        weights = (resid / (1.0 - leverage)) ** 2
        # The rows of (X'X)^-1 X' for [intercept, slopes]: (Z'Z)^-1 Z' = D^-1 V S^-1 U'.
        slope_rows = (Vt.T * inverse) @ U.T / norms[:, None]
        intercept_row = 1.0 / n - Z @ g
        rows = np.vstack([intercept_row, slope_rows])
        cov = (rows * weights) @ rows.T
    else:
        sigma2 = ssr / df_resid if df_resid > 0 else math.nan
        cov = np.empty((p + 1, p + 1))
        cov[1:, 1:] = sigma2 * slope_inverse
        cov[0, 1:] = cov[1:, 0] = -sigma2 * g
        cov[0, 0] = sigma2 * _intercept_factor(X, wide_X, 1.0 / n + float(w @ w))
    return OLSFit(params, cov, fitted, resid, n, df_resid, ssr, rank)


def _refined(
    wide_A: np.ndarray,
    wide_b: np.ndarray,
    A: np.ndarray,
    U: np.ndarray,
    inverse: np.ndarray,
    Vt: np.ndarray,
    x: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """min |A x - b| refined from `x` (Bjorck): the augmented system [I A; A' 0][r; x] = [b; 0],
    its residuals in extended precision, its corrections through A's float64 SVD (U, 1/s, V').
    It converges to the least-squares solution of the data as given, where refining x alone
    settles on the solution of the rounded design."""
    wide_x = x.astype(np.longdouble)
    wide_r = wide_b - wide_A @ wide_x
    for _ in range(REFINEMENTS):
        f = (wide_b - wide_r - wide_A @ wide_x).astype("float64")
        g = (-(wide_A.T @ wide_r)).astype("float64")
        dx = Vt.T @ (inverse * (U.T @ f - inverse * (Vt @ g)))
        wide_x = wide_x + dx.astype(np.longdouble)
        wide_r = wide_r + (f - A @ dx).astype(np.longdouble)
    return wide_x, wide_b - wide_A @ wide_x


def _intercept_factor(X: np.ndarray, wide_X: np.ndarray, fallback: float) -> float:
    """[(A'A)^-1]_00 for A = [1, X]: one over the residual sum of squares of the ones column
    regressed on X's columns (Frisch-Waugh), by the same refined least squares. Accurate where
    1/n + m'(Z'Z)^-1 m loses the digits of m's projection on nearly null directions."""
    norms = np.linalg.norm(X, axis=0)
    if not len(norms) or (norms == 0).any():
        return fallback
    scaled = X / norms
    U, s, Vt = np.linalg.svd(scaled, full_matrices=False)
    if s[-1] <= s[0] * max(X.shape) * np.finfo("float64").eps:
        return fallback
    inverse = 1.0 / s
    ones = np.ones(len(X))
    start = Vt.T @ (inverse * (U.T @ ones))
    _, residual = _refined(
        wide_X / norms, ones.astype(np.longdouble), scaled, U, inverse, Vt, start
    )
    rss = float(residual @ residual)
    return 1.0 / rss if rss > 0 else fallback


def diagnostics(fit: OLSFit, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What a regression table reports beside its coefficients."""
    y = np.asarray(y, dtype="float64")
    n, k = fit.n, fit.rank - 1  # k: slopes
    centred = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - fit.ssr / centred if centred > 0 else math.nan
    adj_r2 = 1.0 - (n - 1) / fit.df_resid * (1.0 - r2) if fit.df_resid > 0 else math.nan
    explained = (centred - fit.ssr) / k if k else math.nan
    f = explained / (fit.ssr / fit.df_resid) if k and fit.df_resid > 0 and fit.ssr > 0 else math.nan
    llf = -n / 2 * (math.log(2 * math.pi) + math.log(fit.ssr / n) + 1) if fit.ssr > 0 else math.inf
    bp, bp_p = breusch_pagan(fit.resid, X)
    return {
        "r2": r2,
        "adj_r2": adj_r2,
        "f": f,
        "f_p_value": float(stats.f.sf(f, k, fit.df_resid)) if math.isfinite(f) else math.nan,
        "log_likelihood": llf,
        "aic": -2 * llf + 2 * fit.rank,
        "bic": -2 * llf + math.log(n) * fit.rank,
        "residual_std_error": math.sqrt(fit.ssr / fit.df_resid) if fit.df_resid > 0 else math.nan,
        "durbin_watson": float(np.sum(np.diff(fit.resid) ** 2) / fit.ssr)
        if fit.ssr > 0
        else math.nan,
        "breusch_pagan": bp,
        "breusch_pagan_p_value": bp_p,
        "n": float(n),
        "df_residual": float(fit.df_resid),
    }


def breusch_pagan(resid: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    """Koenker's studentized Breusch-Pagan test: n R² of the squared residuals on the inputs."""
    squared = np.asarray(resid, dtype="float64") ** 2
    auxiliary = fit_ols(X, squared)
    centred = float(np.sum((squared - squared.mean()) ** 2))
    if centred == 0:
        return math.nan, math.nan
    statistic = len(squared) * (1.0 - auxiliary.ssr / centred)
    return statistic, float(stats.chi2.sf(statistic, auxiliary.rank - 1))
