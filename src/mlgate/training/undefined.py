"""Statistics that have no value on some data, stated as such with the reason, never a crash.

A p-value under perfect separation, a coefficient of a column that repeats another, R² of a
constant target, ROC AUC on a holdout of one class: these are *undefined*, not zero and not
missing. The records keep them as `None` (JSON has no NaN) with the reason beside, under the
record's `"undefined"` key (`{"std_error": "perfect separation: ..."}`), and every surface (the
CLI, the HTML report, `report.json`, the dashboard, compare) renders a value through `stated`,
which writes "not defined (reason)" for any value that is not a finite number.

    >>> stated(0.12345)
    '0.1235'
    >>> stated(None, reason="too few rows: 3 rows for 4 terms")
    'not defined (too few rows: 3 rows for 4 terms)'
    >>> stated_field({"p_value": None, "undefined": {"p_value": "perfect separation"}}, "p_value")
    'not defined (perfect separation)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

NOT_DEFINED = "not defined"
UNSTATED = "no finite value on these rows"  # the last resort; the records say better

SEPARATION = "perfect separation"  # short: a reason sits in every cell it explains
SEPARATION_WARNING = (
    "Perfect separation: a combination of the inputs predicts the class exactly on the training "
    "rows, so the maximum-likelihood estimates diverge; the coefficients, their standard errors, "
    "tests and intervals are not defined. Fewer inputs, more rows, or a penalized model's own "
    "coefficients are the way out."
)
OVERFLOW = "overflows: exp of a very large estimate"


def is_defined(value: Any) -> bool:
    """A finite real number (bools are not statistics)."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def stated(value: Any, spec: str = ".4g", reason: str | None = None) -> str:
    """`value` formatted with `spec`, or "not defined (reason)" where it has no finite value."""
    if is_defined(value):
        return format(float(value), spec)
    return f"{NOT_DEFINED} ({reason or UNSTATED})"


def stated_field(record: Mapping[str, Any], name: str, spec: str = ".4g") -> str:
    """`record[name]` through `stated`, with the reason the record keeps for it."""
    return stated(record.get(name), spec, reason_of(record, name))


def reason_of(record: Mapping[str, Any], name: str) -> str | None:
    reasons = record.get("undefined")
    return reasons.get(name) if isinstance(reasons, Mapping) else None


def finite(value: Any) -> Any:
    """A value as JSON keeps it: non-finite floats become None (their reason goes beside)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reasons(values: Mapping[str, Any], reason_for: Any) -> dict[str, str]:
    """The reason of each value in `values` that is undefined: `reason_for(name, value)`."""
    out = {}
    for name, value in values.items():
        if isinstance(value, str):  # a label (a term's name, an outcome), not a statistic
            continue
        items = value if isinstance(value, list | tuple) else [value]
        if any(not is_defined(v) for v in items):
            out[name] = str(reason_for(name, value))
    return out


def sample_reason(task: str, y: Iterable[Any], n_classes: int = 0) -> str:
    """Why a metric has no value on the rows whose truth is `y`: too few of them, one class
    among them, or a constant target."""
    truth = np.asarray(list(y) if not isinstance(y, np.ndarray) else y)
    if len(truth) < 2:
        return f"too few rows: {len(truth)} to evaluate on"
    distinct = len(np.unique(truth))
    if task == "classification" and distinct < max(2, min(n_classes, 2)):
        return f"one class only in the {len(truth)} evaluation rows"
    if task != "classification" and distinct == 1:
        return f"constant target in the {len(truth)} evaluation rows"
    return UNSTATED


def stated_range(record: Mapping[str, Any], low: str, high: str, spec: str = ".4g") -> str:
    """An interval from two fields; one "not defined (reason)" when neither end has a value."""
    if not is_defined(record.get(low)) and not is_defined(record.get(high)):
        return stated(None, spec, reason_of(record, low) or reason_of(record, high))
    return f"{stated_field(record, low, spec)} – {stated_field(record, high, spec)}"


def stated_optional(record: Mapping[str, Any], name: str, spec: str = ".4g") -> str:
    """A field that some records leave out because it does not apply (the intercept has no
    standardized estimate): blank then, "not defined (reason)" when a reason is recorded."""
    if record.get(name) is None and reason_of(record, name) is None:
        return ""
    return stated_field(record, name, spec)


def metric_rows(metrics: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each metric of a version with its interval, its baseline and, where it or the baseline
    has no value on these rows, the reason: the defined ones first, in their order, then the
    undefined ones (a stored evaluation keeps only defined values under "metrics")."""
    why = evaluation.get("undefined") or {}
    intervals = evaluation.get("intervals") or {}
    baseline = evaluation.get("baseline") or {}
    names = list(dict.fromkeys([*metrics, *why]))
    return [
        {
            "name": name,
            "value": metrics.get(name),
            "interval": intervals.get(name),
            "baseline": baseline.get(name),
            "reason": why.get(name),
        }
        for name in names
    ]


def stated_or_blank(value: Any, spec: str = ".4g", reason: str | None = None) -> str:
    """`stated`, but blank for a value that was never computed (None without a reason): a
    baseline a generator has not, say."""
    return "" if value is None and reason is None else stated(value, spec, reason)
