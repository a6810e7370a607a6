"""XGBoost's trees compiled for small batches: every tree as flat numpy arrays, walked level by
level for all rows and all trees at once.

For one row, XGBoost's Python API costs about 300 µs here (building the array interface, the
call's configuration, reading the result back), while the trees themselves (100 × depth 6) are
600 comparisons. Walked here in ~6 numpy steps of (rows × trees), one row takes tens of µs. The
library keeps large batches, where its C++ loop over rows wins.

The walk is the library's: XGBoost reads inputs as float32, goes left when `x < threshold` and
follows a node's default direction for a missing value (NaN). Leaf values are summed per output
group (a class of a multiclass model) on top of the model's base margin, then the objective's link
(logistic, softmax, identity). Only what this reproduces is compiled: a gbtree booster with
numeric splits, one value per leaf, NaN as the missing value, and one of those three objectives;
anything else (categorical splits, dart, other objectives) keeps the library. And it is used only
after it matched the library's outputs on probe rows to 1e-6 (the library sums in float32).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

log = logging.getLogger("mlgate.serving")

TOLERANCE = 1e-6
_LINKS = {"binary:logistic", "multi:softprob", "reg:squarederror"}


@dataclass(frozen=True)
class Trees:
    """All nodes of all trees, indexed globally; a leaf points to itself on both sides."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float32
    left: np.ndarray  # int64
    right: np.ndarray  # int64
    default_left: np.ndarray  # bool
    value: np.ndarray  # float64: the leaf's value, 0 for inner nodes
    roots: np.ndarray  # int64: each tree's root
    groups: np.ndarray  # float64 (trees × groups): which output each tree adds to
    depth: int
    base: np.ndarray  # float64 (groups,): the base margin

    def margins(self, x: np.ndarray) -> np.ndarray:
        """The raw score of each row for each output group (rows × groups)."""
        x32 = np.asarray(x, dtype=np.float32)
        node = np.broadcast_to(self.roots, (len(x32), len(self.roots)))
        rows = np.arange(len(x32))[:, None]
        for _ in range(self.depth):
            values = x32[rows, self.feature[node]]
            go_left = values < self.threshold[node]
            missing = np.isnan(values)
            if missing.any():
                go_left = np.where(missing, self.default_left[node], go_left)
            node = np.where(go_left, self.left[node], self.right[node])
        summed: np.ndarray = self.value[node] @ self.groups + self.base
        return summed


def compile_xgboost(model: Any, booster: Any, iteration_range: tuple[int, int]) -> Scorer | None:
    """A scorer giving `booster.inplace_predict`'s values (probabilities or predictions) from
    the compiled trees, or None when the model is outside what they reproduce."""
    try:
        trees, link = _compile(model, booster, iteration_range)
    except _Unsupported as why:
        log.info("trees not compiled for %s: %s", type(model).__name__, why)
        return None
    scorer = _with_link(trees, link)
    if not _agrees(scorer, trees, model, booster, iteration_range):
        return None
    return scorer


Scorer = Callable[[np.ndarray], np.ndarray]


class _Unsupported(Exception):
    pass


def _compile(model: Any, booster: Any, iteration_range: tuple[int, int]) -> tuple[Trees, str]:
    if not (isinstance(model.missing, float) and np.isnan(model.missing)):
        raise _Unsupported("a missing value other than NaN")
    document = json.loads(bytes(booster.save_raw(raw_format="json")))
    learner = document["learner"]
    link = learner["objective"]["name"]
    if link not in _LINKS:
        raise _Unsupported(f"objective {link}")
    gradient_booster = learner["gradient_booster"]
    if gradient_booster["name"] != "gbtree":
        raise _Unsupported(f"booster {gradient_booster['name']}")
    forest = gradient_booster["model"]
    indptr = forest.get("iteration_indptr") or []
    first, last = iteration_range
    if last > 0:
        if len(indptr) <= last:
            raise _Unsupported("no iteration index")
        chosen = range(indptr[first], indptr[last])
    else:
        chosen = range(len(forest["trees"]))
    n_groups = max(1, int(learner["learner_model_param"].get("num_class", "0") or 0))
    feature, threshold, left, right, default_left, value, roots = [], [], [], [], [], [], []
    depth = 0
    offset = 0
    groups = np.zeros((len(chosen), n_groups))
    for k, index in enumerate(chosen):
        tree = forest["trees"][index]
        if tree["tree_param"].get("size_leaf_vector", "1") not in ("0", "1"):
            raise _Unsupported("vector leaves")
        if any(tree["split_type"]):
            raise _Unsupported("categorical splits")
        lefts = np.asarray(tree["left_children"], dtype=np.int64)
        rights = np.asarray(tree["right_children"], dtype=np.int64)
        leaf = lefts == -1
        own = np.arange(len(lefts), dtype=np.int64)
        feature.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
        conditions = np.asarray(tree["split_conditions"], dtype=np.float64)
        threshold.append(np.where(leaf, 0.0, conditions).astype(np.float32))
        left.append(np.where(leaf, own, lefts) + offset)
        right.append(np.where(leaf, own, rights) + offset)
        default_left.append(np.asarray(tree["default_left"], dtype=bool))
        value.append(np.where(leaf, conditions, 0.0))
        roots.append(offset)
        depth = max(depth, _depth(lefts, rights))
        groups[k, int(forest["tree_info"][index])] = 1.0
        offset += len(lefts)
    if not roots:
        raise _Unsupported("no trees")
    trees = Trees(
        feature=np.concatenate(feature),
        threshold=np.concatenate(threshold),
        left=np.concatenate(left),
        right=np.concatenate(right),
        default_left=np.concatenate(default_left),
        value=np.concatenate(value),
        roots=np.asarray(roots, dtype=np.int64),
        groups=groups,
        depth=depth,
        base=np.zeros(n_groups),
    )
    # The base margin (base_score through the link, per group): what the library adds to the
    # trees' sum, read off one row.
    row = np.zeros((1, int(model.n_features_in_)))
    library = _library_margins(booster, row, iteration_range, n_groups)
    base = library[0] - trees.margins(row)[0]
    return replace(trees, base=base), link


def _depth(lefts: np.ndarray, rights: np.ndarray) -> int:
    deepest, level = 0, [0]
    while level:
        nxt = [c for n in level for c in (lefts[n], rights[n]) if c != -1]
        if nxt:
            deepest += 1
        level = nxt
    return deepest


def _library_margins(
    booster: Any, x: np.ndarray, iteration_range: tuple[int, int], n_groups: int
) -> np.ndarray:
    raw = booster.inplace_predict(x, iteration_range=iteration_range, predict_type="margin")
    return np.asarray(raw, dtype=np.float64).reshape(len(x), n_groups)


def _with_link(trees: Trees, link: str) -> Scorer:
    if link == "binary:logistic":

        def logistic(x: np.ndarray) -> np.ndarray:
            margin = trees.margins(x)[:, 0]
            out: np.ndarray = 1.0 / (1.0 + np.exp(-margin))
            return out

        return logistic
    if link == "multi:softprob":

        def softmax(x: np.ndarray) -> np.ndarray:
            margin = trees.margins(x)
            e = np.exp(margin - margin.max(axis=1, keepdims=True))
            out: np.ndarray = e / e.sum(axis=1, keepdims=True)
            return out

        return softmax

    def identity(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = trees.margins(x)[:, 0]
        return out

    return identity


def _agrees(
    scorer: Scorer, trees: Trees, model: Any, booster: Any, iteration_range: tuple[int, int]
) -> bool:
    """The compiled values (probabilities, predictions) against the library's on probe rows:
    whole numbers, each threshold and the float64 numbers either side of it (where float64 and
    float32 comparisons part), values far out, and missing values."""
    n = int(model.n_features_in_)
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 4, size=(64, n)).astype("float64"), rng.normal(size=(64, n)) * 3]
    inner = trees.threshold[trees.left != np.arange(len(trees.left))]
    if len(inner):  # each threshold, and the float64 numbers just below and above it
        at = rng.choice(inner, size=(64, n)).astype("float64")
        parts += [at, np.nextafter(at, -np.inf), np.nextafter(at, np.inf)]
    probe = np.vstack(parts)
    probe[::3, ::2] = np.nan
    probe[1::11] *= 1e6
    try:
        want = np.asarray(
            booster.inplace_predict(probe, iteration_range=iteration_range, predict_type="value")
        )
        got = scorer(probe)
    except Exception as exc:
        log.warning("trees not compiled: the probe failed (%s)", type(exc).__name__)
        return False
    same = np.allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE)
    if not same:
        log.warning("trees not compiled: they disagreed with the library on probe rows")
    return bool(same)
