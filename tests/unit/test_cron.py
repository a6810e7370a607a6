"""rollouts/cron.py: the next run of five-field cron expressions (cronsim), and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate.errors import InvalidInput
from mlgate.rollouts.cron import parse

AT = datetime(2026, 12, 4, 1, 30, 15, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 3 * * 1", datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),  # next Monday 03:00
        ("*/15 * * * *", datetime(2026, 12, 4, 1, 45, tzinfo=UTC)),
        ("30 1 * * *", datetime(2026, 12, 5, 1, 30, tzinfo=UTC)),  # not this very minute
        ("0 0 1 * *", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 12 * * sun", datetime(2026, 12, 6, 12, 0, tzinfo=UTC)),
        ("0 12 * * 7", datetime(2026, 12, 6, 12, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 9-17/4 * * mon-fri", datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
        ("0 0 29 feb *", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        ("0 0 13 * 5", datetime(2026, 12, 11, 0, 0, tzinfo=UTC)),  # the 13th or a Friday
        ("@weekly", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),
        ("5,35 * * * *", datetime(2026, 12, 4, 1, 35, tzinfo=UTC)),
    ],
)
def test_the_next_run(expression: str, expected: datetime) -> None:
    assert parse(expression).next_after(AT) == expected


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("0 3 * *", "needs 5"),
        ("61 * * * *", "minute field needs values from 0 to 59"),
        ("0 3 * * funday", "day of week field needs values from 0 to 7"),
        ("*/0 * * * *", "minute field needs"),
        ("0 0 30 feb *", "no 30 February"),
        ("5-1 * * * *", "values from 0 to 59"),
    ],
)
def test_a_bad_expression_says_what_is_wrong(expression: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse(expression)
