"""A statistic without a value is stated as "not defined (reason)", by one formatter, from
records that carry the reason: separation, a singular design, one class in the holdout, a
constant target; and a record without a reason (stored before reasons were) still renders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlgate.training.evaluate import Outputs, evaluate
from mlgate.training.undefined import (
    SEPARATION,
    SEPARATION_WARNING,
    stated,
    stated_field,
    stated_optional,
    stated_range,
)
from tests.unit.test_fit_every_row import World


def test_one_formatter_states_what_has_no_value() -> None:
    assert stated(0.123456) == "0.1235" and stated(3, ".2f") == "3.00"
    assert stated(None, reason="too few rows: 3 for 4 terms") == (
        "not defined (too few rows: 3 for 4 terms)"
    )
    assert stated(float("nan"), reason="constant target") == "not defined (constant target)"
    assert stated(float("inf")) == "not defined (no finite value on these rows)"
    # The Longley defect: a term stored with None and no reason crashed `models report`.
    old = {"term": "GNP", "estimate": 1.5, "std_error": None, "low": None, "high": None}
    assert stated_field(old, "std_error") == "not defined (no finite value on these rows)"
    assert stated_range(old, "low", "high") == "not defined (no finite value on these rows)"
    assert stated_optional({"standardized": None}, "standardized") == ""  # not applicable
    told = {"p_value": None, "undefined": {"p_value": SEPARATION}}
    assert stated_field(told, "p_value") == "not defined (perfect separation)"


def test_perfect_separation_is_stated_for_every_coefficient() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(40, dtype="float64")
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=40), "y": (x > 19).astype(int)})
    version = World(frame).train("y", "logistic_regression")
    found = (version.report or {})["inference"]
    assert SEPARATION_WARNING in found["warnings"]
    for term in found["terms"]:
        assert term["estimate"] is None and term["p_value"] is None, term
        assert term["undefined"]["p_value"] == SEPARATION
        assert term["undefined"]["std_error"] == SEPARATION
    # No test was possible, which is not "no coefficient is distinguishable from zero".
    assert (version.report or {})["reading"] == [
        f"No coefficient can be tested: their p-values are not defined ({SEPARATION})."
    ]


def test_a_singular_design_names_the_terms_it_cannot_separate() -> None:
    rng = np.random.default_rng(1)
    n = 60
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "twice": 2 * x1 + 1})
    frame["y"] = 3 * x1 - x2 + rng.normal(scale=0.1, size=n)
    version = World(frame).train("y", "linear_regression")
    terms = {t["term"]: t for t in (version.report or {})["inference"]["terms"]}
    assert terms["x2"]["estimate"] is not None and terms["x2"]["undefined"] == {}
    assert terms["x1"]["estimate"] is None and terms["twice"]["estimate"] is None
    assert "exactly collinear" in terms["twice"]["undefined"]["estimate"]
    # twice - 2 x1 is the intercept column: the intercept is not identified either.
    assert terms["intercept"]["undefined"]["p_value"] == (
        "singular design: exactly collinear with other columns"
    )


def test_metrics_of_a_holdout_of_one_class_or_a_constant_target_say_why() -> None:
    y = np.zeros(8, dtype="int64")
    proba = np.tile([0.7, 0.3], (8, 1))
    found = evaluate("classification", y, Outputs(np.zeros(8, dtype="int64"), proba),
                     np.array([0, 1, 0, 1]), n_classes=2)  # fmt: skip
    assert "roc_auc" not in found.metrics
    assert found.undefined["roc_auc"] == "one class only in the 8 evaluation rows"
    assert found.to_json()["undefined"]["roc_auc"] == found.undefined["roc_auc"]
    flat = evaluate("regression", np.full(6, 2.0), Outputs(np.full(6, 2.5)), np.arange(6.0))
    assert flat.undefined["r2"] == "constant target in the 6 evaluation rows"
