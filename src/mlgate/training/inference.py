"""Inference for linear and logistic models, in the data's own units.

The served pipeline standardises numbers and one-hot encodes categories; its coefficients read
per standard deviation and per level against nothing. This module rebuilds the design a
statistician would write down from the same fitted preprocessing: each numeric column imputed as
the model imputes it but **not** scaled (its coefficient reads per unit of the column), each
category reference-coded against its first level (`column = level`, and `column (missing)` for
the level that stands for a missing value). statsmodels fits it unpenalized (OLS; Logit or
MNLogit), with classical or heteroscedasticity-robust (HC3) standard errors. Beside each
estimate: the standardized one (per standard deviation of the column), the odds ratio for
logistic models, and the served model's own coefficient in the same units when the served model
is penalized. Diagnostics: F-test, R², adjusted R², AIC/BIC, residual standard error,
Durbin-Watson, Breusch-Pagan (regression); likelihood-ratio test, McFadden's pseudo-R²,
Hosmer-Lemeshow (logistic); the design's condition number and each term's variance inflation
factor, with a warning past CONDITION_LIMIT or VIF_LIMIT.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlgate.errors import InvalidInput
from mlgate.registry.model import Task
from mlgate.runtime.encoders import MISSING_CATEGORY
from mlgate.training import undefined
from mlgate.training.ols import diagnostics as ols_diagnostics
from mlgate.training.ols import fit_ols
from mlgate.training.undefined import UNSTATED

MAX_TERMS = 200
CONDITION_LIMIT = 1e6
VIF_LIMIT = 10.0
STANDARD_ERRORS = {"classical": "nonrobust", "hc3": "HC3"}


@dataclass(frozen=True)
class Term:
    term: str  # "tenure_months", "contract = two-year", "age (missing)", "intercept"
    estimate: float  # in the data's units
    std_error: float
    statistic: float  # t (regression) or z (logistic)
    p_value: float
    low: float  # 95% confidence interval
    high: float
    standardized: float | None = None  # per standard deviation of the column
    odds_ratio: tuple[float, float, float] | None = None  # exp(estimate), exp(low), exp(high)
    served: float | None = None  # the served (penalized) model's coefficient, same units
    vif: float | None = None
    outcome: str = ""  # multiclass: the class whose log-odds against the first class this is
    # Why a statistic of this term has no value ("std_error": "perfect separation: ...");
    # training/undefined.py renders it on every surface.
    undefined: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        skip = ("odds_ratio", "undefined")
        out = {k: _finite(v) for k, v in self.__dict__.items() if k not in skip}
        if self.odds_ratio is not None:
            out["odds_ratio"] = [_finite(v) for v in self.odds_ratio]
        optional = ("standardized", "served", "vif")  # None there: not computed for this term
        shown = {k: v for k, v in out.items() if k not in optional or self.__dict__[k] is not None}
        out["undefined"] = undefined.reasons(
            shown, lambda name, _: self.undefined.get(name, UNSTATED)
        )
        return out


@dataclass(frozen=True)
class Inference:
    kind: str  # "OLS", "Logit" or "MNLogit"
    standard_errors: str  # "classical" or "hc3"
    terms: list[Term]
    diagnostics: dict[str, float]
    condition_number: float
    warnings: list[str] = field(default_factory=list)
    served_difference: float | None = None  # largest |served - inference| / |inference|
    residuals: np.ndarray | None = field(default=None, repr=False)  # OLS: for the Q-Q plot
    reason: str = UNSTATED  # why a statistic of the fit as a whole has no value, if one has not

    def to_json(self) -> dict[str, Any]:
        diagnostics = {"condition_number": self.condition_number, **self.diagnostics}
        return {
            "kind": self.kind,
            "standard_errors": self.standard_errors,
            "terms": [t.to_json() for t in self.terms],
            "diagnostics": {k: _finite(v) for k, v in self.diagnostics.items()},
            "condition_number": _finite(self.condition_number),
            "warnings": self.warnings,
            "served_difference": _finite(self.served_difference),
            "undefined": undefined.reasons(
                diagnostics, lambda name, _: _diagnostic_reason(name, self.reason)
            ),
        }


def _diagnostic_reason(name: str, reason: str) -> str:
    return "singular design" if name == "condition_number" else reason


def standard_errors(params: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """The `se` parameter taken out of an algorithm's parameters: (the rest, its value)."""
    if not params or "se" not in params:
        return params, "classical"
    rest = {k: v for k, v in params.items() if k != "se"}
    chosen = str(params["se"]).lower()
    if chosen not in STANDARD_ERRORS:
        raise InvalidInput(
            f"se must be one of {', '.join(STANDARD_ERRORS)} (standard errors of the "
            f"coefficient table), not {params['se']!r}"
        )
    return rest or None, chosen


@dataclass(frozen=True)
class Design:
    """The inference design in data units (no intercept column), its term names, and for each
    term the column it came from and a map from the served model's feature index."""

    matrix: np.ndarray
    names: list[str]
    served_index: list[int]  # the served model's feature behind each term
    reference_of: list[int | None]  # for a level: the served feature of its column's reference
    numeric: list[tuple[int, float, float]]  # (served feature, mean, scale) of scaled columns


def design_of(pipeline: Any, X: pd.DataFrame) -> Design | None:
    """The design a statistician would fit, from the fitted preprocessing; None when the model
    has blocks that do not read as terms (text) or more than MAX_TERMS terms."""
    columns = pipeline[:-1][-1]  # the ColumnTransformer
    blocks: list[np.ndarray] = []
    names: list[str] = []
    served_index: list[int] = []
    reference_of: list[int | None] = []
    numeric: list[tuple[int, float, float]] = []
    start = 0
    for name, transformer, selected in columns.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        chosen = [selected] if isinstance(selected, str) else list(selected)
        if name == "numeric":
            values = _numeric_in_data_units(transformer, X[chosen])
            scaler = _scaler(transformer)
            for j, column in enumerate(chosen):
                names.append(column)
                served_index.append(start + j)
                reference_of.append(None)
                if scaler is not None:
                    mean = float(scaler.mean_[j]) if scaler.with_mean else 0.0
                    scale = float(scaler.scale_[j]) if scaler.with_std else 1.0
                    numeric.append((start + j, mean, scale))
            blocks.append(values)
            start += len(chosen)
        elif name == "categorical":
            encoder = transformer[-1] if hasattr(transformer, "steps") else transformer
            encoded = transformer.transform(X[chosen])
            encoded = np.asarray(
                encoded.toarray() if hasattr(encoded, "toarray") else encoded, dtype="float64"
            )
            categories = getattr(encoder, "categories_", None)
            if categories is None or encoded.shape[1] != sum(len(c) for c in categories):
                return None  # ordinal codes: not terms a table can read
            offset = 0
            keep = []
            for column, levels in zip(chosen, categories, strict=True):
                for k, level in enumerate(levels):
                    if k == 0:
                        continue  # the reference level
                    keep.append(offset + k)
                    names.append(
                        f"{column} (missing)"
                        if level == MISSING_CATEGORY
                        else f"{column} = {level}"
                    )
                    served_index.append(start + offset + k)
                    reference_of.append(start + offset)
                offset += len(levels)
            blocks.append(encoded[:, keep])
            start += encoded.shape[1]
        else:
            return None
    if not names or len(names) > MAX_TERMS:
        return None
    matrix = np.column_stack(blocks) if len(blocks) > 1 else blocks[0]
    return Design(matrix, names, served_index, reference_of, numeric)


def infer(
    task: Task,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    classes: tuple[Any, ...] | None,
    *,
    se: str = "classical",
) -> Inference | None:
    """The coefficient table and diagnostics; None where the model has no such table."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError as PerfectSeparation

    design = design_of(pipeline, X)
    if design is None:
        return None
    exog = np.column_stack([np.ones(len(design.matrix)), design.matrix])
    names = ["intercept", *design.names]
    cov_type = STANDARD_ERRORS[se]
    target = np.asarray(y)
    kind = "OLS" if task == "regression" else "Logit" if len(classes or ()) == 2 else "MNLogit"
    n_outcomes = 1 if kind != "MNLogit" else max(len(classes or ()) - 1, 1)
    failed = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # separation, singularity: stated as reasons below
        fit: Any = None
        try:
            if kind == "OLS":  # our own: centred, SVD, refined (training/ols.py)
                fit = fit_ols(design.matrix, target, se=se)
            else:
                model: Any = (sm.Logit if kind == "Logit" else sm.MNLogit)(target, exog)
                fit = model.fit(disp=0, maxiter=200, cov_type=cov_type)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, PerfectSeparation) as exc:
            # Separation and singular designs make statsmodels raise on some data: the table
            # then states each statistic as not defined, with this reason.
            failed = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    shape = (len(names), n_outcomes)
    nan = np.full(shape, math.nan)
    params = nan if fit is None else np.asarray(fit.params).reshape(len(names), -1)
    errors = nan if fit is None else np.asarray(fit.bse).reshape(len(names), -1)
    statistics = nan if fit is None else np.asarray(fit.tvalues).reshape(len(names), -1)
    p_values = nan if fit is None else np.asarray(fit.pvalues).reshape(len(names), -1)
    intervals = (
        np.full((len(names) * n_outcomes, 2), math.nan)
        if fit is None
        else np.asarray(fit.conf_int(0.05)).reshape(-1, 2)  # MNLogit: outcome by outcome
    )
    sd = design.matrix.std(axis=0)
    vifs = variance_inflation(exog)
    reason, unidentified = _reasons(kind, names, exog, target, fit, vifs, caught, failed)
    served = _served_coefficients(pipeline, design, params.shape[1])
    terms: list[Term] = []
    for j in range(params.shape[1]):
        outcome = "" if params.shape[1] == 1 else str((classes or ())[j + 1])
        for i, name in enumerate(names):
            low, high = (float(v) for v in intervals[j * len(names) + i])
            estimate = float(params[i, j])
            values: dict[str, Any] = {
                "estimate": estimate,
                "std_error": float(errors[i, j]),
                "statistic": float(statistics[i, j]),
                "p_value": float(p_values[i, j]),
                "low": low,
                "high": high,
            }
            why = unidentified.get(i, reason if fit is None else None)
            if why is not None:  # not identified: every statistic of the term is undefined
                values = {k: math.nan for k in values}
                estimate = low = high = math.nan
            odds = None if kind == "OLS" else (_exp(estimate), _exp(low), _exp(high))
            terms.append(
                Term(
                    term=name,
                    **values,
                    standardized=None if i == 0 else estimate * float(sd[i - 1]),
                    odds_ratio=odds,
                    served=None if served is None else float(served[i, j]),
                    vif=None if i == 0 else float(vifs[i - 1]),
                    outcome=outcome,
                    undefined=_term_reasons(why or reason, odds),
                )
            )
    condition = condition_number(exog)
    if fit is None:
        diagnostics: dict[str, float] = {"n": float(len(target))}
    elif kind == "OLS":
        diagnostics = ols_diagnostics(fit, design.matrix, target)
    else:
        diagnostics = _diagnostics(kind, fit, exog, target)
    difference = _largest_difference(params, served) if served is not None else None
    return Inference(
        kind,
        se,
        terms,
        diagnostics,
        condition,
        collinearity_warnings(condition, design.names, vifs)
        + ([undefined.SEPARATION_WARNING] if reason == undefined.SEPARATION else []),
        None if difference is None or not math.isfinite(difference) else difference,
        np.asarray(fit.resid) if kind == "OLS" and fit is not None else None,
        reason,
    )


def _term_reasons(reason: str, odds: tuple[float, float, float] | None) -> dict[str, str]:
    """The reason for each statistic of a term, should it have no value: the term's own, or the
    fit's; an odds ratio that overflows says so."""
    out = dict.fromkeys(
        ("estimate", "std_error", "statistic", "p_value", "low", "high", "standardized", "vif"),
        reason,
    )
    if odds is not None:
        overflow = any(math.isinf(v) for v in odds) and all(not math.isnan(v) for v in odds)
        out["odds_ratio"] = undefined.OVERFLOW if overflow else reason
    return out


def _reasons(
    kind: str,
    names: list[str],
    exog: np.ndarray,
    target: np.ndarray,
    fit: Any,
    vifs: np.ndarray,
    caught: list[warnings.WarningMessage],
    failed: str | None,
) -> tuple[str, dict[int, str]]:
    """Why statistics of this fit have no value: the fit's reason, and the terms that are not
    identified (a separated classification: all of them; a singular design: the columns that
    are constant or exact combinations of others, and the intercept beside a constant one)."""
    n, k = exog.shape
    rank = int(np.linalg.matrix_rank(exog))
    said = [str(w.message).lower() for w in caught] + [(failed or "").lower()]
    separated = any("separation" in text for text in said)
    if kind != "OLS" and fit is not None and not separated:
        fitted = np.asarray(fit.predict())
        if fitted.ndim == 1:
            separated = bool(np.all(np.abs(fitted - (target == np.max(target))) < 1e-6))
        else:
            onehot = np.eye(fitted.shape[1])[np.searchsorted(np.unique(target), target)]
            separated = bool(np.all(np.abs(fitted - onehot) < 1e-6))
    unidentified: dict[int, str] = {}
    if n <= rank:
        reason = f"too few rows: {n} for {k} terms"
    elif separated:
        reason = undefined.SEPARATION
    elif len(np.unique(target)) < 2:
        reason = "constant target"
    elif rank < k:
        reason = "singular design"
    elif failed is not None:
        reason = f"the fit failed: {failed[:80]}"
    else:
        reason = "no finite value in the fit"
    if separated and kind != "OLS":
        return reason, dict.fromkeys(range(len(names)), reason)
    constant = {i for i in range(1, k) if np.ptp(exog[:, i]) == 0}
    for i in sorted(_unidentified(exog) | constant):
        unidentified[i] = (
            "singular design: a constant column"
            if i in constant
            else "singular design: a constant column beside the intercept"
            if i == 0 and constant
            else "singular design: exactly collinear with other columns"
        )
    return reason, unidentified


def _unidentified(exog: np.ndarray) -> set[int]:
    """The columns of the design (intercept included) that take part in an exact linear
    dependence: those with weight in a null direction of the column-scaled design."""
    norms = np.linalg.norm(exog, axis=0)
    zero = {int(i) for i in np.flatnonzero(norms == 0)}
    live = np.flatnonzero(norms > 0)
    _, s, Vt = np.linalg.svd(exog[:, live] / norms[live], full_matrices=False)
    null = Vt[s <= s[0] * max(exog.shape) * np.finfo("float64").eps] if len(s) else Vt[:0]
    if len(Vt) < len(live):  # fewer rows than columns: the missing directions are null too
        return zero | {int(i) for i in live}
    involved = np.any(np.abs(null) > 1e-6, axis=0)
    return zero | {int(live[j]) for j in np.flatnonzero(involved)}


def condition_number(exog: np.ndarray) -> float:
    """The 2-norm condition number of the design (intercept column included), as statsmodels
    prints it: the ratio of its largest to its smallest singular value."""
    singular = np.linalg.svd(exog, compute_uv=False)
    return float(singular[0] / singular[-1]) if singular[-1] > 0 else math.inf


def variance_inflation(exog: np.ndarray) -> np.ndarray:
    """Each non-intercept term's VIF, 1 / (1 - R²) of that column on all the others (intercept
    included), as statsmodels' variance_inflation_factor gives it, from one SVD: with the
    columns centred and scaled to unit length (Z = U S V'), VIF_j = [(Z'Z)^-1]_jj =
    sum_k V_jk² / s_k². One decomposition instead of a regression per term (200 of them on a
    large table took minutes)."""
    centred = exog[:, 1:] - exog[:, 1:].mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    out = np.full(centred.shape[1], math.inf)
    live = norms > 0
    if not live.any():
        return out
    _, s, Vt = np.linalg.svd(centred[:, live] / norms[live], full_matrices=False)
    keep = s > s[0] * max(centred.shape) * np.finfo("float64").eps
    found = np.sum((Vt[keep].T / s[keep]) ** 2, axis=1)
    # A column with weight in a null direction repeats others exactly: its VIF is infinite. The
    # others keep theirs (rounding must not spread the infinity to a column outside the
    # dependence, as inf x 1e-17 did).
    involved = np.any(np.abs(Vt[~keep]) > 1e-6, axis=0)
    if Vt.shape[0] < int(live.sum()):  # fewer rows than columns
        involved[:] = True
    out[live] = np.where(involved, np.inf, found)
    return out


def collinearity_warnings(condition: float, names: list[str], vifs: np.ndarray) -> list[str]:
    """Plain words when the design is nearly singular: which columns, and what it means."""
    out = []
    inflated = [(n, v) for n, v in zip(names, vifs, strict=True) if v > VIF_LIMIT]
    if condition > CONDITION_LIMIT:
        out.append(
            f"The inputs are nearly collinear: the design's condition number is "
            f"{condition:.3g} (above {CONDITION_LIMIT:.0e}), so small changes in the rows can "
            "move the coefficients a lot; read each one with its standard error."
        )
    if inflated:
        listed = ", ".join(f"{n} (VIF {v:.3g})" for n, v in sorted(inflated, key=lambda x: -x[1]))
        out.append(
            f"These columns are largely explained by the others: {listed}. Their separate "
            "effects are poorly determined; consider dropping some or combining them."
        )
    return out


def hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10) -> tuple[float, float]:
    """The Hosmer-Lemeshow statistic over deciles of the predicted probability, and its p-value
    (chi-squared with groups - 2 degrees of freedom)."""
    order = np.argsort(p, kind="stable")
    statistic = 0.0
    used = 0
    for part in np.array_split(order, groups):
        if len(part) == 0:
            continue
        used += 1
        observed, expected, n = float(y[part].sum()), float(p[part].sum()), len(part)
        mean = expected / n
        if 0 < mean < 1:
            statistic += (observed - expected) ** 2 / (n * mean * (1 - mean))
    dof = max(used - 2, 1)
    return statistic, float(stats.chi2.sf(statistic, dof))


def _diagnostics(kind: str, fit: Any, exog: np.ndarray, y: np.ndarray) -> dict[str, float]:
    out = {
        "llr": float(fit.llr),
        "llr_p_value": float(fit.llr_pvalue),
        "mcfadden_r2": float(fit.prsquared),
        "aic": float(fit.aic),
        "bic": float(fit.bic),
        "log_likelihood": float(fit.llf),
        "n": float(fit.nobs),
    }
    if kind == "Logit":
        statistic, p_value = hosmer_lemeshow(y.astype("float64"), np.asarray(fit.predict()))
        out["hosmer_lemeshow"] = statistic
        out["hosmer_lemeshow_p_value"] = p_value
    return out


def _served_coefficients(pipeline: Any, design: Design, n_outcomes: int) -> np.ndarray | None:
    """The served model's coefficients in the inference design's units (intercept first), or
    None when the served model has none to compare (or a shape that does not match)."""
    model = pipeline[-1]
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if coef is None or intercept is None:
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype="float64"))  # (outcomes or 1, features)
    intercept = np.atleast_1d(np.asarray(intercept, dtype="float64"))
    if coef.shape[0] > 1:  # multinomial: log-odds of each class against the first
        coef, intercept = coef[1:] - coef[0], intercept[1:] - intercept[0]
    if coef.shape[0] != n_outcomes:
        return None
    scale_of = {index: (mean, scale) for index, mean, scale in design.numeric}
    out = np.zeros((len(design.names) + 1, n_outcomes))
    for j in range(n_outcomes):
        base = float(intercept[j])
        for i, (index, reference) in enumerate(
            zip(design.served_index, design.reference_of, strict=True)
        ):
            if reference is not None:
                out[i + 1, j] = coef[j, index] - coef[j, reference]
            elif index in scale_of:
                mean, scale = scale_of[index]
                out[i + 1, j] = coef[j, index] / scale
                base -= coef[j, index] * mean / scale
            else:
                out[i + 1, j] = coef[j, index]
        references = {r for r in design.reference_of if r is not None}
        base += sum(coef[j, r] for r in references)
        out[0, j] = base
    return out


def _largest_difference(params: np.ndarray, served: np.ndarray) -> float:
    scale = np.maximum(np.abs(params), 1e-12)
    return float(np.max(np.abs(served - params) / scale))


def _exp(value: float) -> float:
    return math.exp(value) if value < 700 else math.inf


def _numeric_in_data_units(transformer: Any, frame: pd.DataFrame) -> np.ndarray:
    """The numeric block as the model sees it before scaling: imputed, in the data's units."""
    steps = transformer.steps if hasattr(transformer, "steps") else []
    values: Any = frame
    for _, step in steps:
        if type(step).__name__ != "StandardScaler":
            values = step.transform(values)
    return np.asarray(values, dtype="float64")


def _scaler(transformer: Any) -> Any:
    for _, step in getattr(transformer, "steps", []):
        if type(step).__name__ == "StandardScaler":
            return step
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reading(
    inference: Inference, target: str, classes: tuple[Any, ...] | None, limit: int = 5
) -> list[str]:
    """A few sentences on the strongest effects distinguishable from zero, in the data's units.
    With two classes, the odds are those of the second (the positive) class."""
    effects = [t for t in inference.terms if t.term != "intercept" and t.p_value < 0.05]
    effects.sort(key=lambda t: -abs(t.statistic))
    lines = []
    for t in effects[:limit]:
        step = 1.0
        if " = " in t.term or t.term.endswith(" (missing)"):
            subject = f"Having {t.term} (against the column's first level)"
        else:
            step = _step(t)
            subject = f"One more unit of {t.term}" if step == 1 else f"{step:g} more of {t.term}"
        direction = "raises" if t.estimate > 0 else "lowers"
        if inference.kind == "OLS":
            lines.append(
                f"{subject} {direction} the predicted {target} by {abs(t.estimate) * step:.4g} "
                f"(95% CI {t.low * step:.4g} to {t.high * step:.4g}), other inputs held fixed."
            )
        else:
            if t.outcome:
                against = f" of {t.outcome} (against the first class)"
            elif classes is not None and len(classes) == 2:
                against = f" of {target} = {classes[1]}"
            else:
                against = f" of {target}"
            odds, low, high = (_exp(v * step) for v in (t.estimate, t.low, t.high))
            lines.append(
                f"{subject} multiplies the odds{against} by {odds:.4g} (95% CI {low:.4g} to "
                f"{high:.4g}), other inputs held fixed."
            )
    if not lines:
        slopes = [t for t in inference.terms if t.term != "intercept"]
        untested = [t for t in slopes if t.p_value is None or not math.isfinite(t.p_value)]
        if untested and len(untested) == len(slopes):
            # Separation or a singular design: no test was possible, which is not the same
            # as a test that found nothing.
            why = sorted({t.undefined.get("p_value", UNSTATED) for t in untested})
            lines.append(
                f"No coefficient can be tested: their p-values are not defined ({'; '.join(why)})."
            )
        else:
            lines.append("No coefficient is distinguishable from zero at the 5% level.")
    return lines


def _step(term: Term) -> float:
    """A step of the column that reads naturally: one unit, unless the column's spread is far
    from one (a share between 0 and 1, an amount in millions); then the power of ten nearest
    below its standard deviation. The estimate stays in the data's units either way."""
    if term.standardized is None or term.estimate == 0:
        return 1.0
    sd = abs(term.standardized / term.estimate)
    if 0.5 <= sd <= 50 or not math.isfinite(sd) or sd == 0:
        return 1.0
    return float(10 ** math.floor(math.log10(sd)))
