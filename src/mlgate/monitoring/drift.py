"""Drift statistics: the population stability index and a two-sample test per feature.

PSI = Σ (current% − reference%) · ln(current% / reference%) over bins: ten quantile bins of the
reference for numbers (missing values their own bin), the reference's categories for strings
(the rarest past 20 pooled, unseen values their own bin). Shares are floored at 1e-4 so an
empty bin counts without dividing by zero. Beside it, Kolmogorov-Smirnov for numbers and a
chi-squared test of the two count vectors for categories: PSI says how much, the test whether
it is more than sampling noise. A feature drifts when both say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FLOOR = 1e-4
BINS = 10
TOP_CATEGORIES = 20


@dataclass(frozen=True)
class Drift:
    psi: float
    p_value: float
    test: str  # "ks" or "chi2"

    def drifted(self, psi_threshold: float, p_threshold: float) -> bool:
        return self.psi >= psi_threshold and self.p_value < p_threshold

    def to_json(self, psi_threshold: float, p_threshold: float) -> dict[str, Any]:
        return {
            "psi": round(self.psi, 6),
            "p_value": float(f"{self.p_value:.6g}"),
            "test": self.test,
            "drifted": self.drifted(psi_threshold, p_threshold),
        }


def numeric(reference: np.ndarray, current: np.ndarray) -> Drift:
    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    ref_known, cur_known = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref_known) == 0:
        edges = np.array([])
    else:
        edges = np.unique(np.quantile(ref_known, np.linspace(0, 1, BINS + 1)[1:-1]))

    def shares(values: np.ndarray, known: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
        return np.append(counts, len(values) - len(known)) / max(len(values), 1)

    psi = _psi(shares(ref, ref_known), shares(cur, cur_known))
    if len(ref_known) and len(cur_known):
        from scipy import stats  # here: the CLI and the server start without scipy

        p_value = float(stats.ks_2samp(ref_known, cur_known).pvalue)
    else:
        p_value = 1.0
    return Drift(psi, p_value, "ks")


def categorical(reference: pd.Series, current: pd.Series) -> Drift:
    ref = reference.astype(object).where(reference.notna(), "\0missing")
    cur = current.astype(object).where(current.notna(), "\0missing")
    ref = ref.map(str)
    cur = cur.map(str)
    top = ref.value_counts().index[:TOP_CATEGORIES].tolist()
    known = set(top)

    def counts(values: pd.Series) -> np.ndarray:
        pooled = values.where(values.isin(known), "\0other")
        tally = pooled.value_counts()
        return np.array([tally.get(c, 0) for c in [*top, "\0other"]], dtype="float64")

    ref_counts, cur_counts = counts(ref), counts(cur)
    psi = _psi(ref_counts / max(len(ref), 1), cur_counts / max(len(cur), 1))
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    from scipy import stats

    p_value = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table).pvalue)
    return Drift(psi, p_value, "chi2")


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, FLOOR)
    a = np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))
