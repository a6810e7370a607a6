"""Why this prediction, on a page: one row, pasted as JSON (or picked from the prediction log),
scored and explained through the same use case as the API (the caller's grant, a consumer's
plan and metering), drawn as a waterfall of its contributions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request

from mlgate.access.model import Principal
from mlgate.columns import Column
from mlgate.errors import FieldError, InvalidInput, NotFound
from mlgate.schema import rows_to_table
from mlgate.serving.asking import Asked
from mlgate.serving.service import Ask, Prediction, predict
from mlgate.web import charts, pages

MAX_ROW_BYTES = 64 * 1024
PLACEHOLDER = {"number": 0, "boolean": False, "string": "", "text": "", "datetime": None}
SHOWN = 10  # contributions drawn one by one; the rest as "other"
LABEL_CHARS = 14  # of a value in a waterfall bar's label (the labels have 150 px)


def example_row(columns: Sequence[Column]) -> dict[str, Any]:
    """A row to start from: every column, with a placeholder of its type."""
    return {c.name: PLACEHOLDER[c.type] for c in columns}


def label(column: str, row: dict[str, Any]) -> str:
    """A waterfall bar's label: the column and the row's value of it, short enough to read."""
    if column not in row:
        return column  # "other": the columns past the ones drawn
    value = row[column]
    if value is None:
        shown = "null"
    elif value == "":
        shown = '""'
    elif isinstance(value, float):
        shown = f"{value:.4g}"
    else:
        shown = str(value)
    if len(shown) > LABEL_CHARS:
        shown = shown[: LABEL_CHARS - 1] + "…"
    return f"{column} = {shown}"


def parse_row(raw: str) -> dict[str, Any]:
    """The pasted row: one JSON object of column: value."""
    if len(raw.encode()) > MAX_ROW_BYTES:
        raise InvalidInput(f"the row is over {MAX_ROW_BYTES // 1024} KiB; paste one row")
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"the row is not valid JSON ({exc.msg}); paste one object like "
            '{"column": value, ...}',
            errors=[FieldError("row", "not JSON")],
        ) from None
    if not isinstance(row, dict):
        raise InvalidInput(
            'the row must be one JSON object like {"column": value, ...}',
            errors=[FieldError("row", "expected an object")],
        )
    return row


async def explain_row(
    request: Request, principal: Principal, asked: Asked, row: dict[str, Any]
) -> dict[str, Any]:
    """The row's prediction and its explanation, ready for a template; `asked` is the model as
    the page named it, authorized (pages.member_asking)."""
    services = pages.services_of(request)
    prediction, _ = await predict(
        services.serving,
        principal,
        asked,
        lambda columns: rows_to_table([row], columns, max_rows=1),
        request_id=f"web-{uuid.uuid4().hex[:16]}",
        ask=Ask(explain=True),
    )
    explanation = prediction.explanation
    assert explanation is not None
    shown = explanation.rows(top=SHOWN)[0]
    about = explanation.about()
    steps = sorted(shown["contributions"].items(), key=lambda kv: -abs(kv[1]))
    subject = f" of class {shown['class']}" if "class" in shown else ""
    predicted = prediction.predictions[0]
    return {
        "prediction": predicted,
        "probability": _probability(prediction, predicted),
        "version": prediction.version.number,
        "warnings": [w.to_json() for w in prediction.warnings.get(0, ())],
        "about": about,
        "row": shown,
        "steps": [(column, label(column, row), value) for column, value in steps],
        "chart": charts.waterfall(
            shown["base"],
            [(label(column, row), value) for column, value in steps],
            title=f"{asked.model} v{prediction.version.number}: the {about['scale']}{subject}, "
            "from the base value through each column's contribution",
            unit=about["scale"],
        ),
    }


def _probability(prediction: Prediction, predicted: Any) -> float | None:
    """The probability the model gave the class it predicted (None for a regression, or a
    model that gives no probabilities)."""
    classes = prediction.classes
    if not prediction.probabilities or classes is None or predicted not in classes:
        return None
    return float(prediction.probabilities[0][classes.index(predicted)])


def logged_row(request: Request, name: str, request_id: str, index: int) -> dict[str, Any]:
    """Row `index` of a logged prediction of `name` (the prediction log keeps its inputs)."""
    services = pages.services_of(request)
    with services.uow() as uow:
        logged = uow.monitoring.logged_requests([request_id]).get(request_id)
    if logged is None or logged.model != name:
        raise NotFound(
            f"no logged prediction of {name} with request id {request_id[:64]!r}; the log "
            "keeps a sample of requests (`mlgate monitor-config`)"
        )
    n = len(logged.predictions)
    if not 0 <= index < n:
        raise InvalidInput(f"that request scored {n} row(s); pick a row from 0 to {n - 1}")
    return {column: values[index] for column, values in logged.inputs.items()}
