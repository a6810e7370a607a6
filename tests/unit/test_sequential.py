"""rollouts/sequential.py: the mixture SPRT stays valid at every look. Equal versions are called
different in at most α of 1,000 seeded simulations looked at every 50 rows; a known difference
is found with the documented power; the side a caller lands on is even and fixed."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from mlgate.rollouts import sequential
from mlgate.rollouts.model import side_draw

ALPHA = 0.05
STEP, MOST = 50, 3_000  # a look every 50 labelled rows a side, up to 3,000 a side


def verdicts(
    draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    test: Callable[..., sequential.Look],
    runs: int,
    seed: int,
) -> dict[str, int]:
    """How often runs end "better", "worse" or undecided, stopping at the first decided look."""
    rng = np.random.default_rng(seed)
    out = {"better": 0, "worse": 0, "undecided": 0}
    for _ in range(runs):
        incumbent, candidate = draw(rng)
        verdict = "undecided"
        for n in range(STEP, MOST + 1, STEP):
            verdict = test(incumbent[:n], candidate[:n], alpha=ALPHA).verdict
            if verdict != "undecided":
                break
        out[verdict] += 1
    return out


def errors(accuracy_a: float, accuracy_b: float) -> Callable[[np.random.Generator], tuple]:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return ((rng.random(MOST) >= accuracy_a).astype(float),
                (rng.random(MOST) >= accuracy_b).astype(float))  # fmt: skip

    return draw


@pytest.mark.parametrize("accuracy", [0.8, 0.97])
def test_equal_classifiers_are_called_different_in_at_most_alpha_of_runs(accuracy: float) -> None:
    found = verdicts(errors(accuracy, accuracy), sequential.two_samples, 1_000, seed=1)
    assert found["better"] + found["worse"] <= ALPHA * 1_000, found


def test_equal_regressions_on_the_same_rows_are_called_different_in_at_most_alpha() -> None:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        shared = rng.exponential(size=MOST)  # the rows' own difficulty, common to both sides
        return shared * rng.exponential(size=MOST), shared * rng.exponential(size=MOST)

    found = verdicts(draw, sequential.paired, 1_000, seed=2)
    assert found["better"] + found["worse"] <= ALPHA * 1_000, found


def test_a_known_difference_is_found_with_the_documented_power() -> None:
    # docs: accuracy 0.80 against 0.85, α = 0.05, 3,000 labelled rows a side at most: found
    # "better" in at least 95% of runs (1,000 of 1,000 in the documentation's run)
    better = verdicts(errors(0.80, 0.85), sequential.two_samples, 200, seed=3)
    assert better["better"] >= 190 and better["worse"] == 0, better
    worse = verdicts(errors(0.85, 0.80), sequential.two_samples, 200, seed=4)
    assert worse["worse"] >= 190 and worse["better"] == 0, worse


def test_the_interval_covers_the_difference_at_every_look() -> None:
    rng = np.random.default_rng(5)
    missed = 0
    for _ in range(300):
        a, b = errors(0.80, 0.83)(rng)
        for n in range(STEP, MOST + 1, STEP):
            look = sequential.two_samples(a[:n], b[:n], alpha=ALPHA)
            if not look.low <= 0.03 <= look.high:  # the true difference of error rates
                missed += 1
                break
    assert missed <= ALPHA * 300


def test_no_decision_before_enough_labels_nor_without_variation() -> None:
    few = sequential.two_samples(np.zeros(50), np.ones(50), alpha=ALPHA)
    assert few.verdict == "undecided" and math.isinf(few.high)
    assert few.to_json()["high"] is None  # JSON has no infinity
    flat = sequential.two_samples(np.zeros(500), np.zeros(500), alpha=ALPHA)
    assert flat.verdict == "undecided"
    clear = sequential.two_samples(np.ones(500), np.zeros(500) + (np.arange(500) % 10 == 0),
                                   alpha=ALPHA)  # fmt: skip
    assert clear.verdict == "better" and clear.low > 0


def test_a_hand_computed_interval() -> None:
    a = np.array([1.0, 0.0] * 100)  # mean 0.5
    b = np.array([1.0, 0.0, 0.0, 0.0] * 50)  # mean 0.25
    look = sequential.two_samples(a, b, alpha=0.05)
    v = a.var(ddof=1) / 200 + b.var(ddof=1) / 200
    tau2 = sequential.mixing(0.05) * (a.var(ddof=1) + b.var(ddof=1))
    w = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(20) + math.log((v + tau2) / v)))
    assert look.estimate == pytest.approx(0.25)
    assert (look.low, look.high) == pytest.approx((0.25 - w, 0.25 + w))


@pytest.mark.parametrize("share", [0.05, 0.3])
def test_callers_land_on_the_candidate_in_the_share_and_stay(share: float) -> None:
    callers = [f"consumer:c{i}" for i in range(2_000)]
    inside = sum(side_draw(7, c) < share for c in callers)
    sd = math.sqrt(2_000 * share * (1 - share))
    assert abs(inside - 2_000 * share) <= 3.29 * sd  # a binomial 99.9% interval
    assert [side_draw(7, c) for c in callers[:50]] == [side_draw(7, c) for c in callers[:50]]
    assert side_draw(7, "consumer:c1") != side_draw(8, "consumer:c1")  # each rollout draws anew
