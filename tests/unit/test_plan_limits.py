"""A plan limit is declared once (plans/model.py LIMITS): the plan itself, the API's schemas,
the CLI's options and the dashboard's form all follow it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

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
    # read from the commands themselves, not from their printed help: printed help goes through
    # whatever sys.stdout is at that moment, which CI once found closed (a flaky failure)
    import typer.main

    plans = typer.main.get_command(app).commands["plans"]  # type: ignore[attr-defined]
    for command in ("create", "update"):
        params = plans.commands[command].params
        options = {name: param for param in params for name in param.opts}
        for limit in LIMITS:
            assert limit.option in options, (command, limit.option)
            assert limit.label in (options[limit.option].help or ""), (command, limit.option)
