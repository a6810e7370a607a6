"""What is behind a fitted model: coefficient tables with standard errors, importances, and a
plain-language reading of the coefficients."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.registry.model import Task
from mlgate.training.permutation import permutation_drops

MAX_ROWS_FOR_IMPORTANCE = 2_000


MAX_TERMS = 200


@dataclass(frozen=True)
class Coefficient:
    term: str
    estimate: float
    std_error: float
    statistic: float  # t (regression) or z (classification)
    p_value: float
    low: float  # 95% confidence interval
    high: float
    outcome: str = ""  # multiclass: the class whose log-odds against the first class this is

    def to_json(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in self.__dict__.items()}


def coefficient_table(
    task: Task, pipeline: Any, X: pd.DataFrame, y: pd.Series, classes: tuple[Any, ...] | None
) -> list[Coefficient]:
    """statsmodels' unpenalized OLS (regression) or Logit/MNLogit (classification) on the model's
    own preprocessed features, with each categorical column reference-coded (its first level
    dropped) so that every coefficient is identifiable. Empty when there are more than MAX_TERMS
    terms (text columns, say)."""
    import statsmodels.api as sm

    design = pipeline[:-1].transform(X)
    design = design.toarray() if hasattr(design, "toarray") else np.asarray(design, dtype="float64")
    names = _feature_names(pipeline)
    keep = _reference_coded(pipeline, len(names))
    if keep.sum() > MAX_TERMS:
        return []
    names = ["intercept", *(n for n, k in zip(names, keep, strict=True) if k)]
    exog = np.column_stack([np.ones(len(design)), design[:, keep]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "regression":
            fit = sm.OLS(np.asarray(y, dtype="float64"), exog).fit()
        elif len(classes or ()) == 2:
            fit = sm.Logit(np.asarray(y), exog).fit(disp=0, maxiter=200)
        else:
            fit = sm.MNLogit(np.asarray(y), exog).fit(disp=0, maxiter=200)
    params = np.asarray(fit.params).reshape(len(names), -1)
    errors = np.asarray(fit.bse).reshape(len(names), -1)
    stats = np.asarray(fit.tvalues).reshape(len(names), -1)
    pvalues = np.asarray(fit.pvalues).reshape(len(names), -1)
    intervals = np.asarray(fit.conf_int()).reshape(-1, 2)
    n_outcomes = params.shape[1]
    rows = []
    for j in range(n_outcomes):
        outcome = "" if n_outcomes == 1 else str((classes or ())[j + 1])
        for i, term in enumerate(names):
            low, high = intervals[j * len(names) + i]
            rows.append(
                Coefficient(
                    term=term,
                    estimate=float(params[i, j]),
                    std_error=float(errors[i, j]),
                    statistic=float(stats[i, j]),
                    p_value=float(pvalues[i, j]),
                    low=float(low),
                    high=float(high),
                    outcome=outcome,
                )
            )
    return rows


def _reference_coded(pipeline: Any, n_features: int) -> np.ndarray:
    """A mask over the preprocessed features that drops the first level of each categorical."""
    keep = np.ones(n_features, dtype=bool)
    columns = pipeline[:-1][-1]  # the ColumnTransformer
    start = 0
    for name, transformer, _ in columns.transformers_:
        if transformer == "drop":
            continue
        width = len(transformer.get_feature_names_out())
        if name == "categorical":
            encoder = transformer[-1]
            offset = start
            for categories in getattr(encoder, "categories_", []):
                keep[offset] = False
                offset += len(categories)
        start += width
    return keep


def reading(
    task: Task,
    table: list[Coefficient],
    target: str,
    limit: int = 5,
    classes: tuple[Any, ...] | None = None,
) -> list[str]:
    """A few sentences on the strongest effects that are distinguishable from zero. With two
    classes, the odds are those of the second (the positive) class: "the odds of churned = 1"."""
    effects = [c for c in table if c.term != "intercept" and c.p_value < 0.05]
    effects.sort(key=lambda c: -abs(c.statistic))
    lines = []
    for c in effects[:limit]:
        term, unit = _describe(c.term)
        direction = "raises" if c.estimate > 0 else "lowers"
        if task == "regression":
            lines.append(
                f"{unit} {term} {direction} the predicted {target} by {abs(c.estimate):.3g} "
                f"(95% CI {c.low:.3g} to {c.high:.3g}), other inputs held fixed."
            )
        else:
            odds = math.exp(c.estimate)
            if c.outcome:
                against = f" of {c.outcome} (vs the first class)"
            elif classes is not None and len(classes) == 2:
                against = f" of {target} = {classes[1]}"
            else:
                against = f" of {target}"
            lines.append(
                f"{unit} {term} {direction} the odds{against} by a factor of {odds:.2f} "
                f"(p = {c.p_value:.2g}), other inputs held fixed."
            )
    if not lines:
        lines.append("No coefficient is distinguishable from zero at the 5% level.")
    return lines


def importances(
    task: Task, pipeline: Any, X: pd.DataFrame, y: pd.Series, seed: int
) -> dict[str, dict[str, float]]:
    """Permutation importance of each input column on the holdout rows (drop in the model's
    score when the column is shuffled), plus the model's native importance if it has one."""
    X, y = X.head(MAX_ROWS_FOR_IMPORTANCE), y.head(MAX_ROWS_FOR_IMPORTANCE)
    drops = permutation_drops(task, pipeline, X, y, repeats=5, seed=seed)
    out: dict[str, dict[str, float]] = {
        "permutation": {c: float(v) for c, v in zip(X.columns, drops.mean(axis=1), strict=True)}
    }
    native = getattr(pipeline[-1], "feature_importances_", None)
    if native is not None:
        names = _feature_names(pipeline)
        if len(names) == len(native):
            out["native"] = {n: float(v) for n, v in zip(names, native, strict=True)}
    return out


def indicative_terms(
    pipeline: Any, classes: tuple[Any, ...] | None, limit: int = 8
) -> dict[str, list[tuple[str, float]]]:
    """For a naive Bayes model on text: the words (and pairs of words) that point most to each
    class, scored by how much more the class's log-probability of the term exceeds the other
    classes' mean (for complement NB, the weights it scores with). Empty for other models."""
    weights = getattr(pipeline[-1], "feature_log_prob_", None)
    if weights is None or classes is None or len(classes) != weights.shape[0]:
        return {}
    names = _feature_names(pipeline)
    text = [i for i, n in enumerate(names) if n.startswith("text_")]
    if not text or len(names) != weights.shape[1]:
        return {}
    weights = np.asarray(weights)[:, text]
    out: dict[str, list[tuple[str, float]]] = {}
    for k, label in enumerate(classes):
        others = np.delete(weights, k, axis=0).mean(axis=0)
        lift = weights[k] - others
        best = np.argsort(-lift)[:limit]
        out[str(label)] = [(names[text[i]].partition("__")[2], float(lift[i])) for i in best]
    return out


def _feature_names(pipeline: Any) -> list[str]:
    try:
        return [str(n) for n in pipeline[:-1].get_feature_names_out()]
    except (AttributeError, ValueError):
        n = pipeline[-1].n_features_in_
        return [f"x{i}" for i in range(n)]


def _describe(feature: str) -> tuple[str, str]:
    """("contract = two-year", "Being") or ("tenure_months", "One standard deviation more of")."""
    block, _, name = feature.partition("__")
    if block == "categorical":
        column, _, value = name.rpartition("_")
        return f"{column} = {value} (vs its reference level)", "Having"
    if block == "numeric":
        return name, "One standard deviation more of"
    return feature, "A unit more of"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
