"""TreeSHAP for scikit-learn's trees and forests, computed by XGBoost's own implementation.

XGBoost's `pred_contribs` is the path-dependent TreeSHAP of Lundberg et al. (2020, "From local
explanations to global understanding with explainable AI for trees", Algorithm 2), in C++. It
reads a tree as nodes with a feature, a threshold, a default direction for missing values, a
cover (the training weight that reached the node) and leaf values. A scikit-learn tree has each of
those, so it is written out as an XGBoost model (JSON, data only) and XGBoost explains it: exact,
multi-threaded, no new dependency.

The walk must be scikit-learn's. It reads inputs as float32 and goes left when `x <= threshold`
(a float64); XGBoost goes left when `x < condition` (a float32). For float32 x, `x <= t` holds
exactly when `x < c`, with c the float32 just above the largest float32 not above t. A missing
value follows `missing_go_to_left`; covers are `weighted_n_node_samples` (what the shap package
uses for these trees, so the two agree). A forest averages its trees: each leaf is divided by
the number of trees, and XGBoost sums. A classifier's leaves are its class fractions: one model
per class, and the values explain that class's probability.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

_NO_PARENT = 2_147_483_647


def boosters(model: Any, n_outputs: int) -> list[Any]:
    """One XGBoost booster per output (a class's probability, or the regression), or []
    when `model` is not a scikit-learn tree or forest."""
    estimators = getattr(model, "estimators_", None)
    trees = [e.tree_ for e in estimators] if estimators is not None else [model.tree_]
    import xgboost as xgb

    out = []
    for k in range(n_outputs):
        document = _model_json([_tree_json(t, i, k, len(trees)) for i, t in enumerate(trees)],
                               int(model.n_features_in_))  # fmt: skip
        booster = xgb.Booster()
        booster.load_model(bytearray(json.dumps(document).encode()))
        booster.set_param({"nthread": 1})
        out.append(booster)
    return out


def _conditions(threshold: np.ndarray) -> np.ndarray:
    """XGBoost's `x < c` for scikit-learn's `x <= t`, both on float32 x (see the module doc)."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return np.nextafter(t32, np.float32(np.inf))


def _breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """scikit-learn's node ids in the order XGBoost needs: breadth first, each right child
    numbered just after its left one (XGBoost's walk takes `left + 1` as the right child)."""
    order, at = [0], 0
    while at < len(order):
        node = order[at]
        if left[node] != -1:
            order += [int(left[node]), int(right[node])]
        at += 1
    return np.asarray(order, dtype=np.int64)


def _tree_json(tree: Any, index: int, output: int, n_trees: int) -> dict[str, Any]:
    order = _breadth_first(tree.children_left, tree.children_right)
    new_id = np.empty(len(order), dtype=np.int64)
    new_id[order] = np.arange(len(order))
    old_left, old_right = tree.children_left[order], tree.children_right[order]
    leaf = old_left == -1
    left = np.where(leaf, -1, new_id[np.where(leaf, 0, old_left)])
    right = np.where(leaf, -1, new_id[np.where(leaf, 0, old_right)])
    value = np.asarray(tree.value)[order, 0, :]
    if (
        value.shape[1] > 1
    ):  # a classifier: fractions of each class (normalised, whatever the version)
        value = value / value.sum(axis=1, keepdims=True)
    leaves = value[:, output] / n_trees
    conditions = np.where(leaf, leaves, _conditions(tree.threshold[order])).astype(np.float32)
    parents = np.full(len(left), _NO_PARENT, dtype=np.int64)
    for node in np.flatnonzero(~leaf):
        parents[left[node]] = node
        parents[right[node]] = node
    missing_left = getattr(tree, "missing_go_to_left", None)
    default_left = (
        np.zeros(len(left), dtype=np.int64)
        if missing_left is None
        else np.asarray(missing_left, dtype=np.int64)[order]
    )
    default_left[leaf] = 0
    n = len(left)
    return {
        "base_weights": leaves.astype(np.float32).tolist(),
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": default_left.tolist(),
        "id": index,
        "left_children": left.tolist(),
        "loss_changes": [0.0] * n,
        "parents": parents.tolist(),
        "right_children": right.tolist(),
        "split_conditions": conditions.tolist(),
        "split_indices": np.where(leaf, 0, tree.feature[order]).astype(np.int64).tolist(),
        "split_type": [0] * n,
        "sum_hessian": np.asarray(tree.weighted_n_node_samples, dtype=np.float64)[order].tolist(),
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(int(tree.n_features)),
            "num_nodes": str(n),
            "size_leaf_vector": "1",
        },
    }


def _model_json(trees: list[dict[str, Any]], n_features: int) -> dict[str, Any]:
    return {
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "cats": {"enc": [], "feature_segments": [], "sorted_idx": []},
                    "gbtree_model_param": {
                        "num_parallel_tree": "1",
                        "num_trees": str(len(trees)),
                    },
                    "iteration_indptr": list(range(len(trees) + 1)),
                    "tree_info": [0] * len(trees),
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": "[0E0]",
                "boost_from_average": "0",
                "num_class": "0",
                "num_feature": str(n_features),
                "num_target": "1",
            },
            "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [3, 2, 0],
    }
