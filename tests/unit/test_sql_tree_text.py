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
