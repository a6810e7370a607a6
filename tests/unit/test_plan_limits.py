"""A plan limit is declared once (plans/model.py LIMITS): the plan itself, the API's schemas,
the CLI's options and the dashboard's form all follow it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from typer.testing import CliRunner

from mlgate.api.routes.plans import PlanIn, PlanOut, PlanPatch, _plan
from mlgate.cli.main import app
from mlgate.plans.model import LIMIT_FIELDS, LIMITS, Plan


def test_every_declared_limit_is_a_field_of_the_plan_and_every_limit_is_declared() -> None:
    sizes = {"max_batch_bytes"}  # a file's size, not a counted limit
    numbers = [
        f.name for f in dataclasses.fields(Plan) if f.type == "int | None" and f.name not in sizes
    ]
    assert list(LIMIT_FIELDS) == numbers
    assert len({f.option for f in LIMITS}) == len(LIMITS)


def test_the_api_schemas_carry_every_limit() -> None:
    for schema in (PlanIn, PlanPatch, PlanOut):
        assert set(LIMIT_FIELDS) <= set(schema.model_fields), schema.__name__
    made = PlanIn.model_validate({"name": "pro", "per_minute": 60, "rows_per_month": 10})
    assert made.model_dump()["per_minute"] == 60
    shown = _plan(Plan("pro", datetime(2026, 1, 1, tzinfo=UTC), max_rows_per_request=500))
    assert shown.model_dump()["max_rows_per_request"] == 500


def test_the_cli_has_an_option_per_limit() -> None:
    runner = CliRunner()
    for command in ("create", "update"):
        result = runner.invoke(app, ["plans", command, "--help"], env={"COLUMNS": "200"})
        shown = " ".join(result.output.split())  # however the help was wrapped
        for limit in LIMITS:
            assert limit.option in shown and limit.label in shown, (
                command, limit.option, result.exit_code, result.output[-2000:], result.exception
            )  # fmt: skip
