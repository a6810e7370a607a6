"""Rows in requests, checked against the model's columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlgate.errors import InvalidInput, PayloadTooLarge, UnknownColumns
from mlgate.schema import (
    Column,
    columnar_to_frame,
    columns_to_table,
    conform,
    infer_columns,
    rows_to_frame,
    rows_to_table,
)
from mlgate.serving.payloads import frame_from_body

COLUMNS = (Column("age", "number"), Column("plan", "string"), Column("active", "boolean"))


def test_rows_become_a_frame_of_model_dtypes() -> None:
    frame = rows_to_frame(
        [{"age": 31, "plan": "pro", "active": True}, {"age": None, "plan": None, "active": None}],
        COLUMNS,
        max_rows=10,
    )
    assert list(frame.columns) == ["age", "plan", "active"]
    assert frame["age"].dtype == "float64" and math.isnan(frame["age"][1])
    assert frame["plan"].tolist()[0] == "pro" and frame["plan"].isna()[1]
    assert frame["active"].tolist()[0] == 1.0


def test_columnar_and_rows_give_the_same_frame() -> None:
    rows = [{"age": 3, "plan": "a", "active": False}, {"age": 4.5, "plan": "b", "active": True}]
    columnar = columnar_to_frame(
        ["plan", "active", "age"], [["a", False, 3], ["b", True, 4.5]], COLUMNS, max_rows=10
    )
    pd.testing.assert_frame_equal(rows_to_frame(rows, COLUMNS, max_rows=10), columnar)


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        ([{"plan": "a", "active": True}], "rows[0].age", "missing column 'age'"),
        ([{"age": "3", "plan": "a", "active": True}], "rows[0].age", "expected a number"),
        ([{"age": True, "plan": "a", "active": True}], "rows[0].age", "got a boolean"),
        ([{"age": 3, "plan": 7, "active": True}], "rows[0].plan", "expected a string"),
        ([{"age": 3, "plan": "a", "active": 1}], "rows[0].active", "expected true or false"),
        ([{"age": 3, "plan": "a", "active": True, "x": 1}], "rows[0].x", "unknown column 'x'"),
        ([[3, "a", True]], "rows[0]", "expected an object"),
        ([], "rows", "at least one row"),
        ({"age": 3}, "rows", "expected a list"),
    ],
)
def test_each_bad_row_names_its_field(rows: object, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        rows_to_frame(rows, COLUMNS, max_rows=10)
    assert info.value.errors[0].field == field
    assert message in info.value.errors[0].message


def test_errors_never_echo_the_value() -> None:
    with pytest.raises(InvalidInput) as info:
        rows_to_frame([{"age": "SECRET-VALUE", "plan": "a", "active": True}], COLUMNS, max_rows=10)
    assert "SECRET-VALUE" not in str(info.value)
    assert all("SECRET-VALUE" not in e.message for e in info.value.errors)


def test_too_many_rows_is_its_own_error() -> None:
    rows = [{"age": 1, "plan": "a", "active": True}] * 3
    with pytest.raises(PayloadTooLarge, match="at most 2|more than the 2"):
        rows_to_frame(rows, COLUMNS, max_rows=2)


def test_columnar_checks_shape_and_names() -> None:
    with pytest.raises(InvalidInput) as info:
        columnar_to_frame(["age", "plan"], [[1, "a"]], COLUMNS, max_rows=10)
    assert "missing column 'active'" in info.value.errors[0].message
    with pytest.raises(InvalidInput) as info:
        columnar_to_frame(["age", "plan", "active"], [[1, "a"]], COLUMNS, max_rows=10)
    assert info.value.errors[0].field == "data[0]"


@pytest.mark.parametrize(
    ("sent", "hint"),
    [
        ("agee", "did you mean 'age'?"),
        ("Plan", "did you mean 'plan'?"),  # case is not what tells names apart
        ("is_active", "did you mean 'active'?"),
        ("favourite_colour", "it is not one of the model's 3 columns"),
    ],
)
def test_an_unknown_column_is_named_with_the_nearest_one(sent: str, hint: str) -> None:
    rows = [{"age": 3, "plan": "a", "active": True, sent: 1}]
    columnar = {"columns": ["age", "plan", "active", sent], "data": [[3, "a", True, 1]]}
    tensors = {"age": [3], "plan": ["a"], "active": [True], sent: [1]}
    for attempt in (
        lambda: rows_to_table(rows, COLUMNS, max_rows=10),
        lambda: columnar_to_frame(columnar["columns"], columnar["data"], COLUMNS, max_rows=10),
        lambda: columns_to_table(tensors, COLUMNS, max_rows=10),  # type: ignore[arg-type]
    ):
        with pytest.raises(UnknownColumns) as info:
            attempt()
        assert f"unknown column {sent!r}; {hint}" in str(info.value)
        assert "{name}" not in str(info.value)


def test_the_count_of_further_problems_is_said_in_good_english() -> None:
    def problems(row: dict[str, object]) -> str:
        with pytest.raises(InvalidInput) as info:
            rows_to_table([row], COLUMNS, max_rows=10)
        assert not isinstance(info.value, UnknownColumns)  # no column it did not take
        return str(info.value)

    assert problems({"age": "x", "plan": "a", "active": True}).endswith("got a string")
    assert problems({"age": "x", "plan": 1, "active": True}).endswith("(and 1 more problem)")
    assert problems({"age": "x", "plan": 1, "active": 1}).endswith("(and 2 more problems)")


def test_the_body_must_take_one_of_two_shapes() -> None:
    with pytest.raises(InvalidInput, match="neither of the two accepted shapes"):
        frame_from_body({"instances": []}, COLUMNS, max_rows=10)
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        frame_from_body([1, 2], COLUMNS, max_rows=10)


def test_types_are_inferred_from_dtypes_and_values() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, None],
            "s": ["a", None, "b"],
            "b": [True, False, True],
            "ob": np.array([True, None, False], dtype=object),
            "on": np.array([1, None, 2.5], dtype=object),
        }
    )
    assert [c.type for c in infer_columns(frame)] == [
        "number",
        "string",
        "boolean",
        "boolean",
        "number",
    ]


def test_dates_become_their_parts_from_a_table_or_from_json() -> None:
    stamps = pd.to_datetime(["2026-01-05 10:30", None])
    when = infer_columns(pd.DataFrame({"when": stamps}))
    assert when == (Column("when", "datetime"),)
    from_table = conform(pd.DataFrame({"when": stamps}), when)
    from_json = rows_to_frame([{"when": "2026-01-05T10:30:00"}, {"when": None}], when, max_rows=10)
    pd.testing.assert_frame_equal(from_table, from_json)
    assert from_table.iloc[0].tolist() == [2026.0, 1.0, 5.0, 0.0, 10.0]
    assert from_table.iloc[1].isna().all()
    with pytest.raises(InvalidInput, match="ISO 8601"):
        rows_to_frame([{"when": "last tuesday"}], when, max_rows=10)


def test_long_varied_strings_are_text() -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    reviews = [" ".join(words[(i + j) % 6] for j in range(8)) + f" {i}" for i in range(40)]
    types = infer_columns(pd.DataFrame({"review": reviews, "plan": ["basic", "pro"] * 20}))
    assert [c.type for c in types] == ["text", "string"]


def test_conform_makes_sources_alike() -> None:
    from_database = pd.DataFrame({"age": [1, None], "plan": ["a", None], "active": [True, False]})
    from_csv = pd.DataFrame({"age": [1.0, np.nan], "plan": ["a", np.nan], "active": [1, 0]})
    pd.testing.assert_frame_equal(conform(from_database, COLUMNS), conform(from_csv, COLUMNS))


NUMBERS = (Column("a", "number"), Column("b", "number"))


def test_all_number_models_take_one_matrix_with_the_same_result() -> None:
    rows = [{"a": 1, "b": 2.5}, {"b": None, "a": -3}]  # key order does not matter
    table = rows_to_table(rows, NUMBERS, max_rows=10)
    assert len(table) == 2
    np.testing.assert_array_equal(table["a"], [1.0, -3.0])
    np.testing.assert_array_equal(table["b"], [2.5, np.nan])
    one = rows_to_table([{"a": 7}], NUMBERS[:1], max_rows=10)
    np.testing.assert_array_equal(one["a"], [7.0])
    pd.testing.assert_frame_equal(
        table.to_frame(),
        columnar_to_frame(["b", "a"], [[2.5, 1], [None, -3]], NUMBERS, max_rows=10),
    )


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        ([{"a": 1, "b": "2"}], "rows[0].b", "expected a number"),  # would parse: still refused
        ([{"a": 1, "b": False}], "rows[0].b", "got a boolean"),
        ([{"a": 1, "c": 2}], "rows[0].c", "unknown column 'c'"),  # right count, wrong name
        ([{"a": 1, "b": 2}, {"a": 1}], "rows[1].b", "missing column 'b'"),
    ],
)
def test_the_matrix_path_still_names_each_bad_field(
    rows: list[dict[str, object]], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        rows_to_table(rows, NUMBERS, max_rows=10)
    assert info.value.errors[0].field == field
    assert message in info.value.errors[0].message
