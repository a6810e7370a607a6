"""fast_shap.py's tables walked by a compiled loop (numba), for batches where numpy's
intermediate arrays (rows × slots, several of them) cost more than the work itself.

Rows go in blocks, one block per thread, every loop innermost over the block's rows (contiguous,
without branches: hot or not is random, and a mispredicted branch costs more than both sides).
Tree by tree:
- which of each leaf's tests a row fails, as a bit per path feature, found in one pass from the
  root (a node's bits are its parent's, plus the parent's feature where the row goes the other
  way): one comparison per split, where walking each leaf's path took one per step;
- for each leaf, the row's H (the features whose tests it passes) and the leaf's values for that
  H added into their features: read from the folded table (fast_shap._folded) at one offset,
  or, for a model too large to fold, two lookups of G per feature.

Measured for XGBoost 100 × depth 6, 20 features, 1,000 rows on this 2-core host: ~8 ms, against
~57 ms for the previous loop (each leaf's path walked per row) and ~400 ms for the library's
pred_contribs.

Compiled in a thread on first use (a few seconds, once per process; calls meanwhile go to
numpy or the library). Calls are serialised: numba's default threading layer must not be
entered by two threads at once."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

_LOCK = threading.Lock()


def contributions(tables: Any, x: np.ndarray) -> np.ndarray:
    """As LeafShap.contributions, for any number of rows."""
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros((len(x32), tables.n_features * tables.n_outputs))
    _run(tables, x32, out)
    shaped = out.reshape(len(x32), tables.n_features, tables.n_outputs)
    base = np.broadcast_to(tables.base, (len(x32), 1, tables.n_outputs))
    summed: np.ndarray = np.concatenate([shaped, base], axis=1).transpose(0, 2, 1)
    return summed


def ready() -> bool:
    """Both loops are compiled. The first call starts compiling them in a thread and says no:
    no request waits the seconds that takes (until then the caller uses numpy or the library)."""
    if len(_KERNELS) == 2:
        return True
    with _LOCK:
        if not _WARMING:
            _WARMING.append(threading.Thread(target=_warm, name="mlgate-shap-compile", daemon=True))
            _WARMING[0].start()
    return False


def _run(t: Any, x32: np.ndarray, out: np.ndarray) -> None:
    threads = _threads()
    block = max(MIN_BLOCK, min(MAX_BLOCK, -(-len(x32) // threads)))
    arguments = (
        x32, t.node, t.node_feature, t.node_threshold, t.node_default_left, t.node_bit,
        t.tree_splits, t.leaf_node, t.tree_leaves, t.most_nodes, t.leaf_starts, t.leaf_ends,
        t.leaf_bits, t.into, t.folded, t.folded_starts, t.table, t.width, t.slot_bit,
        t.hot_weight, t.cold_weight, out, block,
    )  # fmt: skip
    if len(x32) <= block:  # one block: one thread, no pool to enter
        _kernel(parallel=False)(*arguments)
    else:
        import numba

        with _LOCK:
            numba.set_num_threads(threads)
            _kernel(parallel=True)(*arguments)


def _warm() -> None:
    """Compile both loops for the tables' types, on an empty model."""
    try:
        import numba  # noqa: F401
    except ImportError:  # numba is not installed: numpy and the libraries explain
        return
    ints, no_ints = np.zeros(1, np.int64), np.empty(0, np.int64)
    empty = SimpleNamespace(
        node=np.empty((0, 3), np.int64), node_feature=no_ints,
        node_threshold=np.empty(0, np.float32), node_default_left=np.empty(0, np.uint8),
        node_bit=np.empty(0, np.int32), tree_splits=ints, leaf_node=no_ints, tree_leaves=ints,
        most_nodes=1, leaf_starts=no_ints, leaf_ends=no_ints, leaf_bits=np.empty(0, np.int32),
        into=no_ints, folded=np.empty(0), folded_starts=no_ints, table=np.empty(0), width=1,
        slot_bit=no_ints, hot_weight=np.empty(0), cold_weight=np.empty(0),
    )  # fmt: skip
    for rows in (1, MAX_BLOCK + 1):  # one block (serial), then several (parallel)
        _run(empty, np.zeros((rows, 1), np.float32), np.zeros((rows, 1)))
    with _LOCK:
        _KERNELS.update(_compiling)


_WARMING: list[threading.Thread] = []


def _threads() -> int:
    """As many threads as the model libraries may use (OMP_NUM_THREADS: `mlgate serve` sets
    it to the cores per worker), at most numba's own limit."""
    import numba

    from mlgate.runtime.predictors import model_threads

    most = int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))
    return max(1, min(model_threads() or most, most))


_KERNELS: dict[bool, Any] = {}  # the loops, once compiled
_compiling: dict[bool, Any] = {}
MIN_BLOCK, MAX_BLOCK = 32, 256  # rows walked together: a share of the batch per thread


def _kernel(*, parallel: bool) -> Any:
    if parallel in _compiling:
        return _compiling[parallel]
    import numba

    @numba.njit(parallel=parallel, nogil=True, cache=False, error_model="numpy")
    def kernel(  # type: ignore[no-untyped-def]
        x, node, node_feature, node_threshold, node_default_left, node_bit, tree_splits,
        leaf_node, tree_leaves, most_nodes, leaf_starts, leaf_ends, leaf_bits, into, folded,
        folded_starts, table, width, slot_bit, hot_weight, cold_weight, out, block,
    ):  # fmt: skip
        n_rows, n_columns = x.shape
        n_blocks = (n_rows + block - 1) // block
        is_folded = folded.shape[0] > 0
        for b in numba.prange(n_blocks):
            first = b * block
            count = min(n_rows, first + block) - first
            xt = np.empty((n_columns, count), np.float32)  # the block, column by column
            for i in range(count):
                for f in range(n_columns):
                    xt[f, i] = x[first + i, f]
            acc = np.zeros((out.shape[1], count))
            missed = np.zeros((most_nodes, count), np.int32)  # the root's stays 0
            at = np.empty(count, np.int64)
            cold = np.empty(count)
            for tree in range(tree_leaves.shape[0] - 1):
                for k in range(tree_splits[tree], tree_splits[tree + 1]):
                    column = xt[node_feature[k]]
                    threshold, default_left = node_threshold[k], node_default_left[k]
                    bit = node_bit[k]
                    here, left, right = missed[node[k, 0]], missed[node[k, 1]], missed[node[k, 2]]
                    for i in range(count):
                        v = column[i]
                        goes_left = np.int32((v < threshold) | ((v != v) & default_left))
                        left[i] = here[i] | (bit * (1 - goes_left))
                        right[i] = here[i] | (bit * goes_left)
                for leaf in range(tree_leaves[tree], tree_leaves[tree + 1]):
                    fails = missed[leaf_node[leaf]]
                    passes = leaf_bits[leaf]
                    u0, u1 = leaf_starts[leaf], leaf_ends[leaf]
                    if is_folded:
                        d, start = u1 - u0, folded_starts[leaf]
                        for i in range(count):
                            at[i] = start + (passes & ~fails[i]) * d
                        for u in range(u0, u1):
                            into_row = acc[into[u]]
                            place = u - u0
                            for i in range(count):
                                into_row[i] += folded[at[i] + place]
                        continue
                    offset = leaf << width
                    for i in range(count):
                        at[i] = passes & ~fails[i]
                        cold[i] = table[offset + at[i]]
                    for u in range(u0, u1):
                        bit = slot_bit[u]
                        warm_weight, chill_weight = hot_weight[u], cold_weight[u]
                        into_row = acc[into[u]]
                        for i in range(count):
                            h = at[i]
                            hot = (h & bit) != 0
                            chill = chill_weight * cold[i]
                            warm = warm_weight * table[offset + (h & ~bit)]
                            into_row[i] += chill + hot * (warm - chill)
            for i in range(count):
                for j in range(out.shape[1]):
                    out[first + i, j] += acc[j, i]

    _compiling[parallel] = kernel
    return kernel


def compile_now() -> bool:
    """Compile both loops and wait for them (what `ready` starts in the background): for a
    caller that must know which path the next call takes, such as a test. True once ready."""
    ready()
    if _WARMING:
        _WARMING[0].join()
    return ready()
