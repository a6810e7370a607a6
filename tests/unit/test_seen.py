"""Rows checked against what training saw: the per-row warnings every protocol answers with."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlgate.schema import Column, Table, columns_to_table, rows_to_table
from mlgate.training.seen import SMALL, Seen, seen_of, warnings_json

COLUMNS = (
    Column("age", "number"),
    Column("plan", "string"),
    Column("vip", "boolean"),
    Column("größe", "number"),  # non-ASCII names are names like any other
    Column("joined", "datetime"),
    Column("notes", "text"),
)
TRAINING = pd.DataFrame(
    {
        "age": [20, 30, 40.5, 35],
        "plan": ["basic", "pro", "pro", "pro"],
        "vip": [True, True, True, True],  # training never saw a false
        "größe": [1.0, None, 3.0, 2.0],  # training saw it missing: missing is no news
        "joined": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"],
        "notes": ["a", "b", None, "c"],
        "churned": [0, 1, 0, 1],  # the target: not an input, not checked
    }
)
GOOD = {"age": 25, "plan": "basic", "vip": True, "größe": None, "joined": "2023-01-05",
        "notes": "words never seen before are fine"}  # fmt: skip


def seen() -> Seen:
    return seen_of(TRAINING, COLUMNS)


def table(*rows: dict[str, object]) -> Table:
    return rows_to_table(list(rows), COLUMNS, max_rows=1_000)


def kinds(found: dict[int, tuple[object, ...]]) -> dict[int, list[tuple[str, str]]]:
    return {r: [(w.column, w.kind) for w in ws] for r, ws in found.items()}  # type: ignore[attr-defined]


def test_a_row_within_what_training_saw_has_no_warnings() -> None:
    assert seen().check(table(GOOD, GOOD)) == {}


def test_a_number_outside_the_range_says_the_range() -> None:
    found = seen().check(table(GOOD, {**GOOD, "age": 50}))
    [warning] = found[1]
    assert warning.to_json() == {
        "column": "age",
        "kind": "outside_range",
        "value": 50,
        "seen": [20, 40.5],
        "message": "age is 50, outside the range training saw (20 to 40.5)",
    }
    assert list(found) == [1]  # the in-range row is absent


def test_the_range_is_inclusive_and_ints_and_floats_compare_alike() -> None:
    check = seen().check
    assert check(table({**GOOD, "age": 20}, {**GOOD, "age": 40.5}, {**GOOD, "age": 20.0})) == {}
    found = check(table({**GOOD, "age": 19.999}, {**GOOD, "age": 41}))
    assert [w.value for ws in found.values() for w in ws] == [19.999, 41]
    assert all(isinstance(w.value, int) for w in found[1])  # 41.0 answered as 41


def test_an_unseen_category_lists_the_most_frequent_first() -> None:
    [warning] = seen().check(table({**GOOD, "plan": "enterprise"}))[0]
    assert (warning.kind, warning.value, warning.seen) == ("unseen_category", "enterprise",
                                                            ["pro", "basic"])  # fmt: skip
    assert warning.message == (
        'plan is "enterprise", a value training never saw; it saw 2: "pro", "basic"'
    )


def test_a_flag_training_saw_one_way_only_is_an_unseen_category() -> None:
    [warning] = seen().check(table({**GOOD, "vip": False}))[0]
    assert (warning.column, warning.kind, warning.value, warning.seen) == (
        "vip", "unseen_category", False, [True])  # fmt: skip


def test_missing_is_a_warning_only_where_training_always_had_a_value() -> None:
    row = {**GOOD, "age": None, "plan": None, "vip": None, "größe": None, "joined": None,
           "notes": None}  # fmt: skip
    found = seen().check(table(row))
    # größe and notes were missing in training; the rest never were (the order: the columns')
    assert kinds(found) == {0: [("age", "missing"), ("plan", "missing"), ("vip", "missing"),
                                ("joined", "missing")]}  # fmt: skip
    assert found[0][0].to_json() == {
        "column": "age", "kind": "missing", "value": None, "seen": None,
        "message": "age is missing; training had a value in every row",
    }  # fmt: skip


def test_nan_from_binary_tensors_is_missing() -> None:
    columns = (Column("age", "number"), Column("größe", "number"))
    check = seen_of(TRAINING, columns).check
    rows = columns_to_table(
        {"age": np.array([np.nan, 30.0, 99.0]), "größe": np.array([np.nan, 2.0, 2.0])},
        columns,
        max_rows=10,
    )
    assert kinds(check(rows)) == {0: [("age", "missing")], 2: [("age", "outside_range")]}


def test_a_row_with_several_warnings_has_them_in_the_columns_order() -> None:
    bad = {**GOOD, "age": -1, "plan": "x", "vip": False, "größe": 99, "joined": None}
    assert kinds(seen().check(table(GOOD, bad, GOOD))) == {
        1: [("age", "outside_range"), ("plan", "unseen_category"), ("vip", "unseen_category"),
            ("größe", "outside_range"), ("joined", "missing")],
    }  # fmt: skip
    assert warnings_json(seen().check(table(bad)))["0"][3]["column"] == "größe"


def test_many_rows_give_what_each_row_gives_alone() -> None:
    """More than SMALL rows take the numpy path; it finds what the per-row path finds."""
    variants = [GOOD, {**GOOD, "age": 99}, {**GOOD, "age": None, "plan": "x"},
                {**GOOD, "größe": -5, "vip": False}, {**GOOD, "joined": None}]  # fmt: skip
    rows = [variants[i % len(variants)] for i in range(3 * SMALL)]
    many = seen().check(table(*rows))
    alone = {i: seen().check(table(row)).get(0) for i, row in enumerate(rows)}
    assert many == {i: found for i, found in alone.items() if found}
    assert sorted(many) == [i for i in range(len(rows)) if i % len(variants)]  # all but GOOD


def test_a_frame_gives_what_a_table_gives() -> None:
    """MLflow's and the CSV parsers hand the use case a DataFrame rather than a Table."""
    rows = table(GOOD, {**GOOD, "age": 99, "plan": "x", "joined": None})
    assert seen().check(rows.to_frame()) == seen().check(rows) != {}


def test_an_all_number_model_reads_the_parsed_matrix() -> None:
    columns = (Column("age", "number"), Column("größe", "number"))
    rows = rows_to_table([{"age": 30, "größe": 2}, {"age": 90, "größe": None}], columns,
                         max_rows=10)  # fmt: skip
    assert rows.matrix is not None
    assert kinds(seen_of(TRAINING, columns).check(rows)) == {1: [("age", "outside_range")]}


def test_numbers_used_as_labels_compare_as_training_read_them() -> None:
    """A string column whose training values were numbers: conform made them text, and a
    request's text is compared with that text."""
    columns = (Column("zone", "string"),)
    check = seen_of(pd.DataFrame({"zone": [10, 20, 20]}), columns).check
    assert check(rows_to_table([{"zone": "10"}], columns, max_rows=1)) == {}
    [warning] = check(rows_to_table([{"zone": "30"}], columns, max_rows=1))[0]
    assert (warning.kind, warning.seen) == ("unseen_category", ["20", "10"])


def test_a_column_training_only_saw_missing_has_no_range() -> None:
    columns = (Column("age", "number"),)
    check = seen_of(pd.DataFrame({"age": [math.nan, math.nan]}), columns).check
    assert check(rows_to_table([{"age": 1e9}, {"age": None}], columns, max_rows=2)) == {}


def test_a_column_the_snapshot_lacks_is_not_checked() -> None:
    columns = (Column("age", "number"), Column("new", "number"))
    check = seen_of(TRAINING, columns).check
    assert check(rows_to_table([{"age": 30, "new": 1e9}], columns, max_rows=1)) == {}


@pytest.mark.parametrize("n", [1, SMALL + 1])
def test_many_categories_are_listed_ten_at_most(n: int) -> None:
    columns = (Column("city", "string"),)
    training = pd.DataFrame({"city": [f"c{i:02}" for i in range(30)] + ["c07"]})
    rows = rows_to_table([{"city": "nowhere"}] * n, columns, max_rows=n)
    [warning] = seen_of(training, columns).check(rows)[n - 1]
    assert warning.seen[0] == "c07" and len(warning.seen) == 10
    assert "it saw 30 (the 10 most frequent: " in warning.message
