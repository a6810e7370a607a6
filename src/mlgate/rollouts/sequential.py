"""A test of "is the candidate better than the version it would replace?" that stays valid
however often it is looked at: the normal-mixture sequential probability ratio test (mSPRT) and
its confidence sequence.

The quantity is θ = mean loss of the incumbent − mean loss of the candidate (positive: the
candidate makes fewer mistakes). A loss is 1 − correct for a classifier, |label − prediction|
for a regression. From the rows labelled so far, θ̂ is the difference of the two sides' mean
losses (canary: two samples, each call answered by one side) or the mean of the per-row
differences (shadow: both sides scored the same rows), and v its estimated variance. Mixing the
likelihood ratio of θ̂ ~ N(θ, v) over θ ~ N(0, τ²) gives

    Λ = sqrt(v / (v + τ²)) · exp(τ² θ̂² / (2 v (v + τ²))),

a martingale under θ = 0, so by Ville's inequality P(Λ ever ≥ 1/α) ≤ α: the chance of calling
two equal versions different, at any of any number of looks, is at most α. Inverting it gives
the confidence sequence θ̂ ± w with

    w² = v (v + τ²) / τ² · (2 log(1/α) + log((v + τ²) / v)),

which covers θ at every look at once with probability 1 − α. The test is decided when the
interval leaves 0: above, the candidate is better; below, it is worse.

τ² = ρ² σ², with σ² the losses' variance per observation and ρ chosen so that the interval is
narrowest after `planned` labelled rows (Waudby-Smith et al.'s choice). The variance is
estimated, so the guarantee is asymptotic (it holds as the counts grow); no decision is taken
before each side has `min_labels` labelled rows.

References: Johari, Koomen, Pekelis & Walsh, "Always valid inference: continuous monitoring of
A/B tests", Operations Research 70(3), 2022; Robbins, "Statistical methods related to the law
of the iterated logarithm", Annals of Mathematical Statistics 41, 1970; Waudby-Smith, Arbour,
Sinha, Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic confidence
sequences", Annals of Statistics 52(6), 2024.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHOD = "mSPRT: normal-mixture sequential test with its confidence sequence"
REFERENCE = (
    "Johari, Koomen, Pekelis & Walsh, Always valid inference: continuous monitoring of A/B "
    "tests, Operations Research 70(3), 2022"
)
MIN_LABELS = 100  # labelled rows per side before any decision
PLANNED = 2_000  # labelled rows (both sides together) at which the interval is tuned narrowest


@dataclass(frozen=True)
class Look:
    """One look at the evidence: the estimate, its always-valid interval and the verdict."""

    estimate: float  # θ̂: incumbent's mean loss − candidate's (positive: candidate better)
    low: float
    high: float
    incumbent_rows: int
    candidate_rows: int
    incumbent_loss: float
    candidate_loss: float
    verdict: str  # "better", "worse" or "undecided"
    alpha: float

    def to_json(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in asdict(self).items()}


def mixing(alpha: float, planned: int = PLANNED) -> float:
    """ρ²: the mixture's spread per unit of variance that makes the interval narrowest after
    `planned` observations (Waudby-Smith et al., section 3.2)."""
    log_term = -2.0 * math.log(alpha)
    return (log_term + math.log(log_term + 1.0)) / planned


def half_width(v: float, tau2: float, alpha: float) -> float:
    """w: the confidence sequence's half-width for an estimate of variance v."""
    if v <= 0.0:
        return 0.0
    return math.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + math.log1p(tau2 / v)))


def two_samples(
    incumbent: np.ndarray,
    candidate: np.ndarray,
    *,
    alpha: float,
    min_labels: int = MIN_LABELS,
    planned: int = PLANNED,
) -> Look:
    """A canary's look: each side's losses on its own rows."""
    a, b, mean_a, mean_b = _sides(incumbent, candidate)
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < max(2, min_labels):
        return _undecided(mean_a - mean_b, n_a, n_b, mean_a, mean_b, alpha)
    var_a, var_b = float(a.var(ddof=1)), float(b.var(ddof=1))
    v = var_a / n_a + var_b / n_b
    tau2 = mixing(alpha, planned) * (var_a + var_b)
    return _look(mean_a - mean_b, v, tau2, n_a, n_b, mean_a, mean_b, alpha)


def paired(
    incumbent: np.ndarray,
    candidate: np.ndarray,
    *,
    alpha: float,
    min_labels: int = MIN_LABELS,
    planned: int = PLANNED,
) -> Look:
    """A shadow's look: both sides' losses on the same rows, in the same order."""
    a, b, mean_a, mean_b = _sides(incumbent, candidate)
    n = len(a)
    if n < max(2, min_labels):
        return _undecided(mean_a - mean_b, n, n, mean_a, mean_b, alpha)
    d = a - b
    var = float(d.var(ddof=1))
    tau2 = mixing(alpha, planned) * var
    return _look(float(d.mean()), var / n, tau2, n, n, mean_a, mean_b, alpha)


def _sides(
    incumbent: np.ndarray, candidate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    a = np.asarray(incumbent, dtype="float64")
    b = np.asarray(candidate, dtype="float64")
    return a, b, float(a.mean()) if len(a) else math.nan, float(b.mean()) if len(b) else math.nan


def _look(
    estimate: float,
    v: float,
    tau2: float,
    n_a: int,
    n_b: int,
    mean_a: float,
    mean_b: float,
    alpha: float,
) -> Look:
    if v <= 0.0 or tau2 <= 0.0:  # every loss equal on both sides: nothing tells them apart
        return _undecided(estimate, n_a, n_b, mean_a, mean_b, alpha)
    w = half_width(v, tau2, alpha)
    low, high = estimate - w, estimate + w
    verdict = "better" if low > 0 else "worse" if high < 0 else "undecided"
    return Look(estimate, low, high, n_a, n_b, mean_a, mean_b, verdict, alpha)


def _undecided(
    estimate: float, n_a: int, n_b: int, mean_a: float, mean_b: float, alpha: float
) -> Look:
    return Look(estimate, -math.inf, math.inf, n_a, n_b, mean_a, mean_b, "undecided", alpha)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no infinity: an unbounded side is null
    return value
