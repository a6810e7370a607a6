"""The trees' SQL is written as text (exports/sql/trees.to_text) for speed; sqlglot's writing of
the same nodes (trees.to_sql) is the reference, in every dialect, for every kind of split."""

from __future__ import annotations

import random

import pytest

from mlgate.exports.sql.compile import balanced_sum, balanced_text, feature, number, number_text
from mlgate.exports.sql.model import SQLGLOT_DIALECT
from mlgate.exports.sql.trees import Leaf, Node, Split, to_sql, to_text

VALUES = [0.0, -0.0, 1.0, -2.5, 1e-300, -2e300, 0.1, 1 / 3, 5e-324, 123456789.0]


def _tree(rng: random.Random, depth: int) -> Node:
    if depth == 0 or rng.random() < 0.2:
        return Leaf((rng.choice(VALUES), rng.choice(VALUES)))
    kind = rng.choice(["plain", "categories", "none", "zero"])
    categories = None
    if kind == "categories":
        categories = frozenset(rng.sample(range(6), rng.randint(0, 3)))
    return Split(
        feature=rng.randrange(4),
        at_most=rng.choice(VALUES),
        missing_left=rng.random() < 0.5,
        left=_tree(rng, depth - 1),
        right=_tree(rng, depth - 1),
        categories=categories,
        in_set_left=rng.random() < 0.5,
        missing=kind if kind in ("none", "zero") else "nan",
    )


@pytest.mark.parametrize("dialect", sorted(SQLGLOT_DIALECT))
def test_a_tree_written_as_text_is_what_sqlglot_writes(dialect: str) -> None:
    write = SQLGLOT_DIALECT[dialect]  # type: ignore[index]
    names = [feature(j).sql(dialect=write) for j in range(4)]
    rng = random.Random(7)
    kinds: set[str] = set()
    for _ in range(120):
        tree = _tree(rng, rng.randint(0, 5))
        if isinstance(tree, Split):
            kinds.add("categories" if tree.categories is not None else tree.missing)
        for output in (0, 1):
            assert to_text(tree, output, names) == to_sql(tree, output).sql(dialect=write)
    assert kinds == {"categories", "nan", "none", "zero"}


@pytest.mark.parametrize("dialect", sorted(SQLGLOT_DIALECT))
def test_numbers_and_balanced_sums_are_written_as_sqlglot_writes_them(dialect: str) -> None:
    write = SQLGLOT_DIALECT[dialect]  # type: ignore[index]
    for value in VALUES:
        assert number_text(value) == number(value).sql(dialect=write)
    for n in range(0, 9):
        terms = VALUES[:n]
        assert balanced_text([number_text(v) for v in terms]) == balanced_sum(
            [number(v) for v in terms]
        ).sql(dialect=write)


def _deep(depth: int, turn: str) -> Node:
    """A tree `depth` splits deep, each split sending row value x <= k one way."""
    node: Node = Leaf((float(depth), 0.0))
    for k in reversed(range(depth)):
        leaf = Leaf((float(k), 0.0))
        left, right = (node, leaf) if turn == "left" else (leaf, node)
        node = Split(feature=0, at_most=k + 0.5 if turn == "left" else float(k),
                     missing_left=False, left=left, right=right)  # fmt: skip
    return node


@pytest.mark.fast
def test_a_random_forest_deeper_than_sqlites_parser_stack_exports_to_sqlite() -> None:
    # Found by review 37: a default random forest (no max_depth) was refused by SQLite with
    # "parser stack overflow" (a 502), since each split nested one more CASE; a right
    # subtree's CASE now joins its parent's, so a chain of 60 right turns is one CASE.
    import sqlite3

    tree = _deep(60, "right")
    text = to_text(tree, 0, [feature(0).sql(dialect="sqlite")])
    assert text == to_sql(tree, 0).sql(dialect="sqlite")
    assert text.count("CASE") == 1
    db = sqlite3.connect(":memory:")
    for x, want in [(-1.0, 0.0), (0.5, 1.0), (30.2, 31.0), (99.0, 60.0), (None, 60.0)]:
        assert db.execute(f"SELECT {text} FROM (SELECT ? AS mlgate_x0)", (x,)).fetchone() == (want,)


@pytest.mark.fast
def test_a_query_past_sqlites_parser_stack_is_refused_as_a_conflict_naming_the_limit() -> None:
    # Found by review 37: a LightGBM tree of 30 left turns still passes SQLite's limit, and
    # the export answered 502 Bad Gateway; it is a 409 that names the limit.
    from mlgate.errors import Conflict
    from mlgate.sources.scratch import SqliteScratch

    text = to_text(_deep(60, "left"), 0, [feature(0).sql(dialect="sqlite")])
    scratch = SqliteScratch()
    try:
        with pytest.raises(Conflict, match="past SQLite's limits.*nested CASEs.*max_depth"):
            scratch.query(f"SELECT {text} FROM (SELECT 1.0 AS mlgate_x0)")
    finally:
        scratch.close()
