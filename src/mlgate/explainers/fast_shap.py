"""Path-dependent TreeSHAP for small batches, in numpy, from a leaf's point of view.

XGBoost's `pred_contribs` costs about 1.5 ms for one row here, most of it the call itself
(building a DMatrix, configuring the prediction). The values have a closed form per leaf that
needs no walk at explain time. For a leaf with value v whose path tests the distinct features P
(d of them), let z_j be the share of training cover that follows the path at feature j's tests,
and o_j(x) = 1 if x follows all of them, else 0. The leaf's part of the Shapley value of i ∈ P is

    φ_i = v (o_i − z_i) Σ_{S ⊆ P∖{i}} w(|S|, d) Π_{j∈S} o_j Π_{j∈P∖S∖{i}} z_j,
    w(s, d) = s! (d−s−1)! / d!

Since o is 0 or 1, only the S inside H = {j : o_j = 1} count, so with the table (one per leaf,
2^d entries, computed once)

    G(T) = Σ_{S ⊆ T} w(|S|, d) Π_{j∈P∖S} z_j

the value is v (1 − z_i)/z_i · G(H∖{i}) where x follows i's tests, and −v · G(H) where it does
not (the fast TreeSHAP "v2" idea of Yang, 2021, written for whole batches of leaves). Explaining
a row is then: which tests it passes (one comparison per split), H per leaf (a bit per feature),
two lookups per (leaf, feature), one weighted count into the input features.

Used only where every path tests at most MAX_FEATURES_ON_A_PATH distinct features (tables grow
as 2^d), splits are numeric, and it matched the library's contributions on probe rows. In
numpy here for a few rows; explainers/shap_kernel.py walks the same tables for any batch once
compiled (until then, larger batches go to the library).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("mlgate.serving")

MAX_FEATURES_ON_A_PATH = 10
SMALL_BATCH = 8  # rows up to which these tables beat the library's call (measured here)


class Unsupported(Exception):
    pass


@dataclass(frozen=True)
class LeafShap:
    split_feature: np.ndarray  # (splits,) int: the feature each split tests
    split_threshold: np.ndarray  # (splits,) float32: left when x < threshold
    split_default_left: np.ndarray  # (splits,) bool: where a missing value goes
    step_split: np.ndarray  # (steps,) int: each path step's split
    step_left: np.ndarray  # (steps,) bool: the direction the path takes there
    slot_starts: np.ndarray  # (slots,) int: each (leaf, feature) slot's first step
    slot_bit: np.ndarray  # (slots,) int64: 1 << the slot's place on its leaf
    slot_leaf: np.ndarray  # (slots,) int: its leaf
    leaf_starts: np.ndarray  # (leaves,) int: each leaf's first slot
    group_starts: (
        np.ndarray
    )  # (leaves with slots,) int: their first slot (a one-leaf tree has none)
    slot_group: np.ndarray  # (slots,) int: the slot's leaf among the leaves with slots
    table: np.ndarray  # (leaves * 2**width,) float64: G of every leaf, flat
    width: int  # the most distinct features on a path
    hot_weight: np.ndarray  # (slots,) v (1 − z) / z
    cold_weight: np.ndarray  # (slots,) −v
    into: np.ndarray  # (slots,) int: where each slot's value goes, feature * outputs + output
    base: np.ndarray  # (outputs,) the expected value (the library's bias column)
    n_features: int
    n_outputs: int
    # The compiled loop's layout (explainers/shap_kernel.py): each tree's splits in an order where
    # a node comes before its children, tree by tree; nodes are numbered within their tree.
    leaf_ends: np.ndarray  # (leaves,) int: each leaf's last slot + 1
    leaf_bits: np.ndarray  # (leaves,) int32: all of a leaf's slot bits
    leaf_node: np.ndarray  # (leaves,) int: the leaf's node
    tree_leaves: np.ndarray  # (trees + 1,) int: each tree's first leaf
    tree_splits: np.ndarray  # (trees + 1,) int: each tree's first split in the order
    node: np.ndarray  # (splits,) int: the split's node, its left and right child (3 columns)
    node_feature: np.ndarray  # (splits,) int
    node_threshold: np.ndarray  # (splits,) float32
    node_default_left: np.ndarray  # (splits,) uint8
    node_bit: np.ndarray  # (splits,) int32: the bit of the split's feature on paths below it
    most_nodes: int  # nodes in the largest tree
    # Each leaf's values for every H at once, φ[H, place], flat (empty when over FOLDED_BYTES)
    folded: np.ndarray
    folded_starts: np.ndarray  # (leaves + 1,) int: each leaf's first value in `folded`

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows, outputs, features + 1): the contributions, the base last, as the library
        lays out `pred_contribs`."""
        x32 = np.asarray(x, dtype=np.float32)
        values = x32[:, self.split_feature]
        left = values < self.split_threshold
        missing = np.isnan(values)
        if missing.any():
            left = np.where(missing, self.split_default_left, left)
        follows = left[:, self.step_split] == self.step_left
        hot = np.logical_and.reduceat(follows, self.slot_starts, axis=1)  # (rows, slots)
        bits = np.add.reduceat(np.where(hot, self.slot_bit, 0), self.group_starts, axis=1)
        offsets = self.slot_leaf << self.width  # the slot's leaf's table
        whole = bits[:, self.slot_group]  # H of the slot's leaf, per slot
        g_all = self.table[offsets + whole]
        g_without = self.table[offsets + (whole & ~self.slot_bit)]
        phi = np.where(hot, self.hot_weight * g_without, self.cold_weight * g_all)
        width = self.n_features * self.n_outputs
        where = (np.arange(len(x32))[:, None] * width + self.into[None, :]).ravel()
        summed = np.bincount(where, weights=phi.ravel(), minlength=len(x32) * width)
        out = summed.reshape(len(x32), self.n_features, self.n_outputs)
        base = np.broadcast_to(self.base, (len(x32), 1, self.n_outputs))
        return np.concatenate([out, base], axis=1).transpose(0, 2, 1)


def from_booster_json(document: dict[str, Any], chosen: range | None = None) -> LeafShap:
    """The tables of an XGBoost model's trees (its JSON document; `chosen`, the trees that
    count). Raises Unsupported for what they do not cover."""
    learner = document["learner"]
    forest = learner["gradient_booster"]["model"]
    if learner["gradient_booster"]["name"] != "gbtree":
        raise Unsupported("not a gbtree booster")
    trees = forest["trees"]
    indices = chosen if chosen is not None else range(len(trees))
    n_outputs = max(1, int(learner["learner_model_param"].get("num_class", "0") or 0))
    n_features = int(learner["learner_model_param"]["num_feature"])
    split_feature: list[int] = []
    split_threshold: list[float] = []
    split_default: list[bool] = []
    steps: list[tuple[int, bool]] = []
    slots: list[tuple[int, int, int]] = []  # (leaf, feature, output) per slot
    slot_starts: list[int] = []
    leaf_starts: list[int] = []
    leaf_z: list[list[float]] = []
    leaf_value: list[float] = []
    leaf_node: list[int] = []
    leaf_output: list[int] = []  # the output each leaf adds to (a single-leaf tree has no slot)
    tree_leaves: list[int] = [0]
    tree_splits: list[int] = [0]
    program: list[tuple[int, int, int, int, float, bool, int]] = []
    offset = most_nodes = 0
    for index in indices:
        tree = trees[index]
        if any(tree["split_type"]) or tree["tree_param"].get("size_leaf_vector", "1") not in (
            "0", "1"
        ):  # fmt: skip
            raise Unsupported("categorical splits or vector leaves")
        lefts, rights = tree["left_children"], tree["right_children"]
        cover = tree["sum_hessian"]
        output = int(forest["tree_info"][index])
        most_nodes = max(most_nodes, len(lefts))
        split_feature.extend(tree["split_indices"])
        split_threshold.extend(tree["split_conditions"])
        split_default.extend(bool(v) for v in tree["default_left"])
        stack: list[tuple[int, list[tuple[int, bool, int, float]]]] = [(0, [])]
        while stack:
            node, path = stack.pop()
            if lefts[node] == -1:
                features: list[int] = []
                z: list[float] = []
                grouped: list[list[tuple[int, bool]]] = []
                for split, went_left, feature, ratio in path:
                    if feature not in features:
                        features.append(feature)
                        z.append(1.0)
                        grouped.append([])
                    k = features.index(feature)
                    z[k] *= ratio
                    grouped[k].append((split, went_left))
                if len(features) > MAX_FEATURES_ON_A_PATH:
                    raise Unsupported(f"a path tests {len(features)} features")
                if any(v <= 0 for v in z):
                    raise Unsupported("a branch without cover")
                leaf_starts.append(len(slots))
                for feature, group in zip(features, grouped, strict=True):
                    slot_starts.append(len(steps))
                    steps.extend(group)
                    slots.append((len(leaf_value), feature, output))
                leaf_z.append(z)
                leaf_value.append(float(tree["split_conditions"][node]))
                leaf_node.append(node)
                leaf_output.append(output)
                continue
            if cover[node] <= 0:
                raise Unsupported("a split without cover")
            feature = int(tree["split_indices"][node])
            above = list(dict.fromkeys(f for _, _, f, _ in path))
            rank = above.index(feature) if feature in above else len(above)
            program.append((node, lefts[node], rights[node], feature,
                            tree["split_conditions"][node], bool(tree["default_left"][node]),
                            1 << rank))  # fmt: skip
            for child, went_left in ((lefts[node], True), (rights[node], False)):
                ratio = cover[child] / cover[node]
                stack.append((child, [*path, (offset + node, went_left, feature, ratio)]))
        offset += len(lefts)
        tree_leaves.append(len(leaf_value))
        tree_splits.append(len(program))
    if not slots:
        raise Unsupported("no splits")
    width = max(len(z) for z in leaf_z)
    table = np.zeros((len(leaf_z), 1 << width))
    expected = np.zeros(n_outputs)
    for d in sorted({len(z) for z in leaf_z}):
        leaves = [i for i, z in enumerate(leaf_z) if len(z) == d]
        table[leaves, : 1 << d] = _tables(np.array([leaf_z[i] for i in leaves]))
    for leaf, z in enumerate(leaf_z):
        expected[leaf_output[leaf]] += leaf_value[leaf] * math.prod(z)
    slot_leaf = np.array([s[0] for s in slots], dtype=np.int64)
    place = np.array([i - leaf_starts[s[0]] for i, s in enumerate(slots)], dtype=np.int64)
    z_of_slot = np.array([leaf_z[s[0]][p] for s, p in zip(slots, place, strict=True)])
    value_of_slot = np.array([leaf_value[s[0]] for s in slots])
    into = np.array([s[1] * n_outputs + s[2] for s in slots], dtype=np.int64)
    step_split = np.array([s for s, _ in steps], dtype=np.int64)
    slot_bit = np.left_shift(1, place).astype(np.int64)
    leaf_starts_ = np.asarray(leaf_starts, dtype=np.int64)
    leaf_ends = np.append(leaf_starts_[1:], len(slots))
    # np.add.reduceat over an empty range gives the next element, not 0 (and fails past the
    # end): a leaf without slots (a single-leaf tree) is left out of every reduction.
    filled = leaf_ends > leaf_starts_
    leaf_bits = np.zeros(len(leaf_starts_), dtype=np.int64)
    np.add.at(leaf_bits, slot_leaf, slot_bit)
    hot_weight = value_of_slot * (1 - z_of_slot) / z_of_slot
    folded, folded_starts = _folded(table, width, leaf_starts_, leaf_ends, hot_weight,
                                    np.asarray(leaf_value))  # fmt: skip
    return LeafShap(
        split_feature=np.asarray(split_feature, dtype=np.int64),
        split_threshold=np.asarray(split_threshold, dtype=np.float32),
        split_default_left=np.asarray(split_default, dtype=bool),
        step_split=step_split,
        step_left=np.array([left for _, left in steps], dtype=bool),
        slot_starts=np.asarray(slot_starts, dtype=np.int64),
        slot_bit=slot_bit,
        slot_leaf=slot_leaf,
        leaf_starts=leaf_starts_,
        group_starts=leaf_starts_[filled],
        slot_group=(np.cumsum(filled) - 1)[slot_leaf],
        table=table.ravel(),
        width=width,
        hot_weight=hot_weight,
        cold_weight=-value_of_slot,
        into=into,
        base=expected,
        n_features=n_features,
        n_outputs=n_outputs,
        leaf_ends=leaf_ends,
        leaf_bits=leaf_bits.astype(np.int32),
        leaf_node=np.asarray(leaf_node, dtype=np.int64),
        tree_leaves=np.asarray(tree_leaves, dtype=np.int64),
        tree_splits=np.asarray(tree_splits, dtype=np.int64),
        node=np.array([p[:3] for p in program], dtype=np.int64).reshape(-1, 3),
        node_feature=np.array([p[3] for p in program], dtype=np.int64),
        node_threshold=np.array([p[4] for p in program], dtype=np.float32),
        node_default_left=np.array([p[5] for p in program], dtype=np.uint8),
        node_bit=np.array([p[6] for p in program], dtype=np.int32),
        most_nodes=most_nodes,
        folded=folded,
        folded_starts=folded_starts,
    )


FOLDED_BYTES = 32 << 20  # the most a model's folded values may take; past it, G is looked up


def _folded(
    table: np.ndarray,
    width: int,
    leaf_starts: np.ndarray,
    leaf_ends: np.ndarray,
    hot_weight: np.ndarray,
    leaf_value: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Every leaf's values for each H, laid out H by H, place by place: what a row with that H
    adds at each of the leaf's features (d · 2^d values for d features). A row then reads its
    leaf's values at one offset instead of looking up G once per feature."""
    d = leaf_ends - leaf_starts
    sizes = d << d
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if starts[-1] * 8 > FOLDED_BYTES:
        return np.empty(0), np.empty(0, dtype=np.int64)
    flat = np.empty(int(starts[-1]))
    g = table.reshape(len(d), 1 << width)
    for k in np.unique(d[d > 0]):  # a leaf without features adds nothing
        leaves = np.flatnonzero(d == k)
        h = np.arange(1 << k)[:, None]  # (2^k, 1)
        bits = 1 << np.arange(k)[None, :]  # (1, k)
        hot = (h & bits) != 0  # (2^k, k)
        slots = leaf_starts[leaves][:, None] + np.arange(k)[None, :]  # (leaves, k)
        g_all = g[leaves][:, np.broadcast_to(h, hot.shape)]  # (leaves, 2^k, k)
        g_without = g[leaves][:, h & ~bits]
        values = np.where(hot[None], hot_weight[slots][:, None, :] * g_without,
                          -leaf_value[leaves][:, None, None] * g_all)  # fmt: skip
        at = starts[leaves][:, None] + np.arange(k << k)[None, :]
        flat[at] = values.reshape(len(leaves), -1)
    return flat, starts


def _tables(z: np.ndarray) -> np.ndarray:
    """G for leaves with d distinct features each (z: leaves × d): (leaves × 2^d)."""
    leaves, d = z.shape
    masks = np.arange(1 << d)
    inside = (masks[:, None] >> np.arange(d)[None, :]) & 1  # (2^d, d)
    size = inside.sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
                       if s < d else 0.0 for s in size])  # fmt: skip
    outside = np.where(inside[None, :, :] == 0, z[:, None, :], 1.0).prod(axis=2)
    g = weight[None, :] * outside
    for u in range(d):  # sum over subsets: the zeta transform, one feature at a time
        has = masks[(masks >> u) & 1 == 1]
        g[:, has] += g[:, has ^ (1 << u)]
    out: np.ndarray = g
    return out


TOLERANCE = 1e-5  # the library sums its contributions in float32


def checked(
    document: dict[str, Any], library: Any, n_features: int, chosen: range | None = None
) -> LeafShap | None:
    """The tables, after their contributions matched `library` (a callable giving the
    library's `pred_contribs`, rows × outputs × features + 1) on probe rows (`probe_rows`).
    The library's base margin is read off the probe. None where they do not cover the model,
    do not agree, or fail (logged)."""
    from mlgate.runtime.switches import probed

    try:
        tables = from_booster_json(document, chosen)
    except Unsupported:
        return None
    except Exception as exc:  # a tree shape the tables get wrong: the library explains it
        log.warning("TreeSHAP tables not used: building them raised %s: %s",
                    type(exc).__name__, exc)  # fmt: skip
        return None
    found: list[LeafShap] = []

    def check() -> bool:
        probe = probe_rows(tables, n_features)
        want = library(probe)
        got = tables.contributions(probe)
        shift = (want[:, :, -1] - got[:, :, -1]).mean(axis=0)  # the base margin
        based = LeafShap(**{**tables.__dict__, "base": tables.base + shift})
        found.append(based)
        return agrees(based.contributions(probe), want)

    return found[0] if probed("TreeSHAP tables", check) else None


def probe_rows(tables: LeafShap, n_features: int) -> np.ndarray:
    """Rows that visit every branch: whole numbers, wide normals, each threshold with the
    floats either side, far values and missing values."""
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 4, size=(32, n_features)).astype("float64"),
             rng.normal(size=(32, n_features)) * 3]  # fmt: skip
    if len(tables.split_threshold):
        at = rng.choice(tables.split_threshold, size=(32, n_features)).astype("float64")
        parts += [at, np.nextafter(at, -np.inf), np.nextafter(at, np.inf)]
    probe = np.vstack(parts)
    probe[::3, ::2] = np.nan
    probe[1::11] *= 1e6
    return probe


def agrees(got: np.ndarray, want: np.ndarray) -> bool:
    """Contributions equal to the library's, to the float32 sums it makes."""
    scale = max(1.0, float(np.abs(want).max()))
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=0, atol=TOLERANCE * scale))
