"""mlgate's own prediction body: row objects or columnar, checked against the model's columns.

{"rows": [{"tenure_months": 3, "contract": "one-year"}, ...]}
{"columns": ["tenure_months", "contract"], "data": [[3, "one-year"], ...]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mlgate.errors import FieldError, InvalidInput
from mlgate.schema import Column, Table, columnar_to_table, rows_to_table

_SHAPES = (
    'send {"rows": [{"column": value, ...}, ...]} or '
    '{"columns": ["column", ...], "data": [[value, ...], ...]}'
)


def frame_from_body(body: Any, columns: Sequence[Column], *, max_rows: int) -> pd.DataFrame:
    return table_from_body(body, columns, max_rows=max_rows).to_frame()


def table_from_body(body: Any, columns: Sequence[Column], *, max_rows: int) -> Table:
    if not isinstance(body, dict):
        raise InvalidInput(
            f"the body must be a JSON object; {_SHAPES}",
            errors=[FieldError("body", "expected an object")],
        )
    keys = set(body)
    if keys == {"rows"}:
        return rows_to_table(body["rows"], columns, max_rows=max_rows)
    if keys == {"columns", "data"}:
        return columnar_to_table(body["columns"], body["data"], columns, max_rows=max_rows)
    unexpected = sorted(keys - {"rows", "columns", "data"})
    field = unexpected[0][:64] if unexpected else ("rows" if not keys else "columns")
    raise InvalidInput(
        f"the body has neither of the two accepted shapes; {_SHAPES}",
        errors=[FieldError(field, "unexpected field" if unexpected else "missing field")],
    )
