"""Decision trees, random forests, XGBoost and LightGBM as SQL: each tree one nested CASE, the
trees summed in groups (one column each) and the groups summed again, each sum balanced.

Each library's own reading of a split is kept:

- scikit-learn compares the row as float32 with a float64 threshold (`float32(x) <= t`); a
  missing value goes where the split learned (`missing_go_to_left`).
- XGBoost compares float32 with float32 (`float32(x) < s`), sends a missing value to its
  `default_left` side and a category in a categorical split's set to the right; its base score
  (a probability for binary:logistic, a margin otherwise) starts the sum. Read from the model's
  own JSON (`Booster.save_raw("json")`), which holds every number to the bit.
- LightGBM compares doubles (`x <= t`); by `missing_type` a missing value takes the default side
  (NaN), counts as zero (None), or zero and missing both take the default side (Zero); a
  categorical split sends the codes it lists left, anything else (missing too) right. Read
  from `Booster.dump_model()`; its boost-from-average is inside the first trees' leaves.

A float32 comparison is written as the double comparison that agrees with it on every double
(`f32_at_most`), so the engine, in double precision, sends each row where the library does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from sqlglot import exp

from mlgate.errors import Conflict
from mlgate.exports.sql.compile import (
    Model,
    Written,
    balanced_sum,
    balanced_text,
    feature,
    number,
    number_text,
    part,
)
from mlgate.registry.model import ModelVersion

GROUP = 50  # trees summed in one column
LIGHTGBM_ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| at most this counts as zero


@dataclass(frozen=True)
class Leaf:
    values: tuple[float, ...]


@dataclass(frozen=True)
class Split:
    feature: int
    at_most: float  # left when x <= at_most (numeric splits)
    missing_left: bool
    left: Node
    right: Node
    categories: frozenset[int] | None = None  # categorical: a code in the set goes right,
    in_set_left: bool = False  # or left (LightGBM), where a missing code goes right
    missing: str = "nan"  # "nan" | "none" (missing is 0) | "zero" (0 and missing: default)


Node = Leaf | Split


def f32_at_most(threshold: float) -> float:
    """The double T such that `float32(x) <= threshold` exactly when `x <= T`, for any double
    x (rounding to float32 is to nearest, ties to even)."""
    f = np.float32(threshold)
    if float(f) > threshold:
        f = np.nextafter(f, np.float32(-np.inf))
    up = np.nextafter(f, np.float32(np.inf))
    if not np.isfinite(up):
        return float(np.finfo(np.float64).max)
    middle = (float(f) + float(up)) / 2  # exact: two float32 apart fit a double
    even = int(np.asarray(f, dtype=np.float32).view(np.uint32)) & 1 == 0
    return middle if even else math.nextafter(middle, -math.inf)


def f32_below(threshold: float) -> float:
    """The double T such that `float32(x) < float32(threshold)` exactly when `x <= T`."""
    below = np.nextafter(np.float32(threshold), np.float32(-np.inf))
    return f32_at_most(float(below))


def to_sql(node: Node, output: int = 0) -> exp.Expr:
    """One tree's value (its `output`-th) for a row, as nested CASEs over the features."""
    if isinstance(node, Leaf):
        return number(node.values[output])
    x = feature(node.feature)
    go_left: exp.Expr
    if node.categories is not None and node.in_set_left:
        codes = [number(float(c)) for c in sorted(node.categories)]
        go_left = exp.In(this=x.copy(), expressions=codes) if codes else exp.false()
    elif node.categories is not None:
        codes = [number(float(c)) for c in sorted(node.categories)]
        outside = exp.Not(this=exp.In(this=x.copy(), expressions=codes)) if codes else exp.true()
        go_left = outside
        if node.missing_left:
            go_left = exp.Or(this=exp.Is(this=x.copy(), expression=exp.Null()), expression=outside)
    elif node.missing == "none":
        zero = exp.Coalesce(this=x.copy(), expressions=[number(0.0)])
        go_left = exp.LTE(this=zero, expression=number(node.at_most))
    elif node.missing == "zero":
        zeroish = exp.Paren(this=exp.Or(
            this=exp.Is(this=x.copy(), expression=exp.Null()),
            expression=exp.And(
                this=exp.GTE(this=x.copy(), expression=number(-LIGHTGBM_ZERO)),
                expression=exp.LTE(this=x.copy(), expression=number(LIGHTGBM_ZERO)),
            ),
        ))  # fmt: skip
        below = exp.LTE(this=x.copy(), expression=number(node.at_most))
        go_left = (
            exp.Or(this=zeroish, expression=below)
            if node.missing_left
            else exp.And(this=exp.Not(this=zeroish), expression=below)
        )
    else:
        go_left = exp.LTE(this=x.copy(), expression=number(node.at_most))
        if node.missing_left:
            go_left = exp.Or(this=go_left, expression=exp.Is(this=x.copy(), expression=exp.Null()))
    # The right subtree's CASE joins this one as further WHENs (`CASE WHEN a THEN l WHEN b
    # THEN r1 ELSE r2 END`, the same answer): CASEs nest only along left turns, so a deep
    # tree stays inside SQLite's parser stack (about 23 nested CASEs in SQLite 3.40).
    right = to_sql(node.right, output)
    if isinstance(right, exp.Case):
        return exp.Case(
            ifs=[exp.If(this=go_left, true=to_sql(node.left, output)), *right.args["ifs"]],
            default=right.args.get("default"),
        )
    return exp.Case(ifs=[exp.If(this=go_left, true=to_sql(node.left, output))], default=right)


def to_text(node: Node, output: int, names: Sequence[str]) -> str:
    """`to_sql(node, output)` as the dialect writes it, written directly (see Written), given
    each feature's name as the dialect quotes it. The tests hold the two equal."""
    if isinstance(node, Leaf):
        return number_text(node.values[output])
    x = names[node.feature]
    if node.categories is not None:
        codes = ", ".join(number_text(float(c)) for c in sorted(node.categories))
        if node.in_set_left:
            go_left = f"{x} IN ({codes})" if codes else "FALSE"
        else:
            go_left = f"NOT {x} IN ({codes})" if codes else "TRUE"
            if node.missing_left:
                go_left = f"{x} IS NULL OR {go_left}"
    elif node.missing == "none":
        go_left = f"COALESCE({x}, {number_text(0.0)}) <= {number_text(node.at_most)}"
    elif node.missing == "zero":
        tiny = number_text(LIGHTGBM_ZERO)
        zeroish = f"({x} IS NULL OR {x} >= -{tiny} AND {x} <= {tiny})"
        below = f"{x} <= {number_text(node.at_most)}"
        go_left = f"{zeroish} OR {below}" if node.missing_left else f"NOT {zeroish} AND {below}"
    else:
        go_left = f"{x} <= {number_text(node.at_most)}"
        if node.missing_left:
            go_left = f"{go_left} OR {x} IS NULL"
    left, right = to_text(node.left, output, names), to_text(node.right, output, names)
    if isinstance(node.right, Split):  # its CASE joins this one (see to_sql)
        return f"CASE WHEN {go_left} THEN {left} {right.removeprefix('CASE ')}"
    return f"CASE WHEN {go_left} THEN {left} ELSE {right} END"


def _group_text(group: Sequence[Node], output: int, names: Sequence[str]) -> str:
    return balanced_text([to_text(t, output, names) for t in group])


def grouped(
    trees: Sequence[Node],
    output: int,
    parts: list[exp.Expr | Written],
    start: float,
    scale: float = 1.0,
) -> exp.Expr:
    """Append the trees' sums, GROUP trees a part, to `parts`; the score over those parts:
    `start` plus their sum, times `scale`."""
    first = len(parts)
    for k in range(0, len(trees), GROUP):
        parts.append(Written(partial(_group_text, trees[k : k + GROUP], output)))
    total = balanced_sum([part(j) for j in range(first, len(parts))])
    if start != 0.0:
        total = exp.Add(this=exp.Paren(this=total), expression=number(start))
    if scale != 1.0:
        total = exp.Mul(this=exp.Paren(this=total), expression=number(scale))
    return total


def tree_model(version: ModelVersion, estimator: Any, n_features: int) -> Model:
    algorithm = version.algorithm
    classifier = version.task == "classification"
    if algorithm in ("decision_tree", "random_forest"):
        return _sklearn(estimator, classifier, n_features)
    if algorithm == "xgboost":
        return _xgboost(estimator, classifier)
    return _lightgbm(estimator, classifier)


# -- scikit-learn ---------------------------------------------------------------------------


def _sklearn_tree(tree: Any, classifier: bool) -> Node:
    left, right = tree.children_left, tree.children_right
    missing_left = getattr(tree, "missing_go_to_left", None)

    def build(node: int) -> Node:
        if left[node] == -1:
            values = np.asarray(tree.value[node][0], dtype="float64")
            if classifier:
                total = values.sum()
                values = values / (total if total != 0 else 1.0)
            return Leaf(tuple(float(v) for v in values))
        return Split(
            feature=int(tree.feature[node]),
            at_most=f32_at_most(float(tree.threshold[node])),
            missing_left=bool(missing_left[node]) if missing_left is not None else False,
            left=build(int(left[node])),
            right=build(int(right[node])),
        )

    return build(0)


def _sklearn(estimator: Any, classifier: bool, n_features: int) -> Model:
    members = list(getattr(estimator, "estimators_", None) or [estimator])
    if getattr(members[0], "n_features_in_", n_features) != n_features:
        raise Conflict("the trees read a different number of features than the preprocessing makes")
    trees = [_sklearn_tree(m.tree_, classifier) for m in members]
    scale = 1.0 / len(trees) if len(trees) > 1 else 1.0
    parts: list[exp.Expr | Written] = []
    if not classifier:
        return Model(parts, [grouped(trees, 0, parts, 0.0, scale)], "identity")
    n_classes = len(trees[0].values) if isinstance(trees[0], Leaf) else _width(trees[0])
    scores = [grouped(trees, k, parts, 0.0, scale) for k in range(n_classes)]
    return Model(parts, scores, "probabilities")


def _width(node: Node) -> int:
    while isinstance(node, Split):
        node = node.left
    return len(node.values)


# -- XGBoost --------------------------------------------------------------------------------


def _xgboost(estimator: Any, classifier: bool) -> Model:
    booster = estimator.get_booster()
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    objective = learner["objective"]["name"]
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise Conflict(f"XGBoost's {gbm['name']} booster has no SQL export (gbtree has)")
    model = gbm["model"]
    base = [
        float(v) for v in str(learner["learner_model_param"]["base_score"]).strip("[]").split(",")
    ]
    n_classes = int(learner["learner_model_param"].get("num_class", "0") or 0)
    limit = _xgboost_rounds(estimator)
    bounds = model.get("iteration_indptr")
    trees = model["trees"]
    info = model["tree_info"]
    if limit is not None and bounds is not None:
        trees, info = trees[: bounds[limit]], info[: bounds[limit]]
    built = [_xgboost_tree(t) for t in trees]
    parts: list[exp.Expr | Written] = []
    if objective == "binary:logistic":
        margin = math.log(base[0] / (1.0 - base[0]))
        return Model(parts, [grouped(built, 0, parts, margin)], "sigmoid")
    if objective in ("multi:softprob", "multi:softmax"):
        starts = base if len(base) == n_classes else [base[0]] * n_classes
        scores = [
            grouped([t for t, c in zip(built, info, strict=True) if c == k], 0, parts, starts[k])
            for k in range(n_classes)
        ]
        return Model(parts, scores, "softmax")
    if (
        objective in ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")
        and not classifier
    ):
        return Model(parts, [grouped(built, 0, parts, base[0])], "identity")
    raise Conflict(f"XGBoost's objective {objective} has no SQL export yet")


def _xgboost_rounds(estimator: Any) -> int | None:
    """The rounds predict() uses: up to the best one where early stopping chose it."""
    try:
        best = estimator.best_iteration
    except AttributeError:
        return None
    return int(best) + 1 if best is not None else None


def _xgboost_tree(tree: dict[str, Any]) -> Node:
    left, right = tree["left_children"], tree["right_children"]
    values, features = tree["split_conditions"], tree["split_indices"]
    default_left, kinds = tree["default_left"], tree.get("split_type") or [0] * len(left)
    categories: dict[int, frozenset[int]] = {}
    nodes, starts = tree.get("categories_nodes", []), tree.get("categories_segments", [])
    for node, start, size in zip(nodes, starts, tree.get("categories_sizes", []), strict=True):
        categories[int(node)] = frozenset(int(c) for c in tree["categories"][start : start + size])
    if int(tree.get("tree_param", {}).get("size_leaf_vector", "1") or 1) > 1:
        raise Conflict("XGBoost trees with vector leaves have no SQL export")

    def build(node: int) -> Node:
        if left[node] == -1:
            return Leaf((float(values[node]),))
        categorical = kinds[node] == 1
        return Split(
            feature=int(features[node]),
            at_most=0.0 if categorical else f32_below(float(values[node])),
            missing_left=bool(default_left[node]),
            left=build(int(left[node])),
            right=build(int(right[node])),
            categories=categories.get(node, frozenset()) if categorical else None,
        )

    return build(0)


# -- LightGBM -------------------------------------------------------------------------------


def _lightgbm(estimator: Any, classifier: bool) -> Model:
    booster = getattr(estimator, "booster", None) or estimator.booster_
    dump = booster.dump_model()
    objective = str(dump.get("objective", "")).split()
    n_classes = int(dump.get("num_class", 1))
    per_round = int(dump.get("num_tree_per_iteration", n_classes))
    trees = [_lightgbm_tree(t["tree_structure"]) for t in dump["tree_info"]]
    parts: list[exp.Expr | Written] = []
    if not objective:
        raise Conflict("the LightGBM model names no objective")
    name = objective[0]
    options = dict(o.split(":", 1) for o in objective[1:] if ":" in o)
    if name == "binary":
        sigma = float(options.get("sigmoid", "1"))
        return Model(parts, [grouped(trees, 0, parts, 0.0, sigma)], "sigmoid")
    if name in ("multiclass", "softmax"):
        scores = [grouped(trees[k::per_round], 0, parts, 0.0) for k in range(per_round)]
        return Model(parts, scores, "softmax")
    if name in ("regression", "regression_l1", "huber", "fair", "quantile") and not classifier:
        return Model(parts, [grouped(trees, 0, parts, 0.0)], "identity")
    raise Conflict(f"LightGBM's objective {name} has no SQL export yet")


def _lightgbm_tree(node: dict[str, Any]) -> Node:
    if "leaf_value" in node:
        return Leaf((float(node["leaf_value"]),))
    if node.get("decision_type", "<=") == "==":  # the codes listed go left; missing right
        codes = frozenset(int(c) for c in str(node["threshold"]).split("||") if c != "")
        return Split(
            feature=int(node["split_feature"]), at_most=0.0, missing_left=False,
            left=_lightgbm_tree(node["left_child"]), right=_lightgbm_tree(node["right_child"]),
            categories=codes, in_set_left=True,
        )  # fmt: skip
    if node.get("decision_type", "<=") != "<=":
        raise Conflict(f"LightGBM's {node['decision_type']} splits have no SQL export")
    return Split(
        feature=int(node["split_feature"]),
        at_most=float(node["threshold"]),
        missing_left=bool(node.get("default_left", False)),
        left=_lightgbm_tree(node["left_child"]),
        right=_lightgbm_tree(node["right_child"]),
        missing={"NaN": "nan", "None": "none", "Zero": "zero"}[node.get("missing_type", "None")],
    )


def float64_reference(version: ModelVersion, estimator: Any, matrix: Any) -> np.ndarray | None:
    """XGBoost sums its trees in float32: past a few hundred trees its own answer drifts from
    the exact sum of its leaves by more than 1e-6, while the SQL adds in double precision.
    This is that exact sum, from the leaves XGBoost itself picks for each row (`pred_leaf`)
    added in float64 and put through the same link: probabilities (n x k) or values (n).
    None for the other libraries, which add in double precision themselves."""
    if version.algorithm != "xgboost":
        return None
    import xgboost as xgb

    booster = estimator.get_booster()
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    model = learner["gradient_booster"]["model"]
    limit = _xgboost_rounds(estimator)
    data = xgb.DMatrix(matrix, feature_types=booster.feature_types, enable_categorical=True)
    rounds = (0, limit) if limit is not None else (0, 0)
    leaves = np.asarray(booster.predict(data, pred_leaf=True, iteration_range=rounds))
    leaves = leaves.reshape(len(leaves), -1).astype(int)
    trees = model["trees"][: leaves.shape[1]]
    info = np.asarray(model["tree_info"][: leaves.shape[1]])
    values = np.column_stack(
        [np.asarray(t["split_conditions"], dtype="float64")[leaves[:, k]] for k, t in
         enumerate(trees)]
    )  # fmt: skip
    params = learner["learner_model_param"]
    base = [float(v) for v in str(params["base_score"]).strip("[]").split(",")]
    objective = learner["objective"]["name"]
    if objective == "binary:logistic":
        margin = math.log(base[0] / (1.0 - base[0])) + values.sum(axis=1)
        p = 1.0 / (1.0 + np.exp(-margin))
        return np.column_stack([1.0 - p, p])
    if objective.startswith("multi:"):
        k = int(params["num_class"])
        starts = base if len(base) == k else [base[0]] * k
        margins = np.column_stack([starts[c] + values[:, info == c].sum(axis=1) for c in range(k)])
        margins -= margins.max(axis=1, keepdims=True)
        e = np.exp(margins)
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return np.asarray(base[0] + values.sum(axis=1))
