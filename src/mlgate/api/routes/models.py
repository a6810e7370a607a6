"""Models: list, describe, predict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.model import Target
from mlgate.api import schemas
from mlgate.api.authorize import AuthorizedRoute, access, authorize, authorize_asked
from mlgate.api.body import decode_json
from mlgate.api.predicting import serve_prediction, serve_whole_model
from mlgate.bootstrap import Services
from mlgate.errors import NotFound
from mlgate.registry import service as registry
from mlgate.schema import Column, Table
from mlgate.serving.openapi import model_openapi
from mlgate.serving.payloads import table_from_body
from mlgate.serving.service import Ask, Prediction
from mlgate.tracing import stage
from mlgate.training.seen import warnings_json

bearer = HTTPBearer(auto_error=False, description="An API key from `mlgate keys create`")
router = APIRouter(
    prefix="/v1", tags=["models"], dependencies=[Security(bearer)], route_class=AuthorizedRoute
)

_PROBLEM_REF = {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {
        "model": schemas.ProblemOut,
        "description": text,
        "content": {"application/problem+json": _PROBLEM_REF},
    }
    for status, text in {
        400: "The body is not JSON",
        401: "No valid credentials (the body's `code` says why)",
        403: "The credentials may not do this (missing scope, no grant, restricted key)",
        404: "No such model or version",
        409: "The request clashes with the current state",
        413: "Body or row count over the limit",
        415: "The body is not JSON",
        422: "Rows that do not fit the model's input schema",
        429: "Too many requests: retry after the Retry-After header's seconds",
    }.items()
}

_ROW_SCHEMA = {
    "type": "object",
    "description": "column name -> value (number, string, boolean or null)",
    "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
}
PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "title": "Rows",
                            "type": "object",
                            "required": ["rows"],
                            "properties": {"rows": {"type": "array", "items": _ROW_SCHEMA}},
                        },
                        {
                            "title": "Columnar",
                            "type": "object",
                            "required": ["columns", "data"],
                            "properties": {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array"}},
                            },
                        },
                    ]
                },
                "example": {"rows": [{"tenure_months": 3, "contract": "month-to-month"}]},
            }
        },
    }
}


@router.get("/models", response_model=list[schemas.ModelSummary], responses=PROBLEMS)
@access("authenticated")
async def list_models(request: Request) -> Response:
    """The models the caller may at least describe."""
    services = _services(request)

    def run() -> list[schemas.ModelSummary]:
        principal = authorize(services, request)
        models = services.registry.models()
        shown = set(policy.visible(principal, [m.name for m in models]))
        return [schemas.summary(m) for m in models if m.name in shown]

    return _json([m.model_dump(mode="json") for m in await run_in_threadpool(run)])


@router.get("/models/{name}", response_model=schemas.ModelDetail, responses=PROBLEMS)
@access("read")
async def get_model(request: Request, name: str) -> Response:
    """Versions with metrics and lineage, aliases, input schema."""
    services = _services(request)

    def run() -> schemas.ModelDetail:
        authorize(services, request, Target(name))
        model, versions = services.registry.versions(name)
        return schemas.detail(model, versions, services.registry.aliases(name))

    return _json((await run_in_threadpool(run)).model_dump(mode="json"))


@router.get("/models/{name}/schema", response_model=schemas.ModelSchema, responses=PROBLEMS)
@access("describe")
async def get_schema(request: Request, name: str) -> Response:
    """The input columns (and classes) of the version the name serves: what a caller sends.
    `name@alias` and `name@3` describe that alias's or version's; the bare name the production
    alias's where there is one, else the latest version's (as /predict answers)."""
    services = _services(request)

    def run() -> schemas.ModelSchema:
        _, asked = authorize_asked(services, request, name)
        model, versions = services.registry.versions(asked.model)
        served = (
            services.resolve_version(asked.model, asked.number, asked.alias) if versions else None
        )
        return schemas.model_schema(model, served)

    return _json((await run_in_threadpool(run)).model_dump(mode="json"))


@router.get("/models/{name}/openapi.json", responses=PROBLEMS)
@access("describe")
async def get_model_openapi(request: Request, name: str) -> Response:
    """An OpenAPI document for this model alone, from its training signature: every input
    column with its type, and the labels and probabilities it answers with. `name@alias` and
    `name@3` describe that alias's or version's signature."""
    services = _services(request)

    def run() -> dict[str, Any]:
        _, asked = authorize_asked(services, request, name)
        version = services.resolve_version(asked.model, asked.number, asked.alias)
        return model_openapi(version, path_name=name)

    return _json(await run_in_threadpool(run))


@router.post(
    "/models/{name}/predict",
    response_model=schemas.PredictOut,
    responses=PROBLEMS,
    openapi_extra=PREDICT_BODY,
    summary="Predict with the latest version",
)
@access("predict")
async def predict_latest(request: Request, name: str) -> Response:
    """`name` alone means the production alias if set, else the latest version;
    `name@alias` an alias, `name@3` version 3."""
    model, number, alias = registry.parse_ref(name)
    return await _predict(request, model, number, alias)


@router.post(
    "/models/{name}/versions/{version}/predict",
    response_model=schemas.PredictOut,
    responses=PROBLEMS,
    openapi_extra=PREDICT_BODY,
    summary="Predict with one version",
)
@access("predict")
async def predict_version(request: Request, name: str, version: str) -> Response:
    if not version.isdecimal() or len(version) > 9 or int(version) < 1:
        raise NotFound(f"model versions are numbered 1, 2, …; {version[:20]!r} is not one")
    return await _predict(request, name, int(version), None)


@router.post(
    "/models/{name}/generate",
    response_model=schemas.GenerateOut,
    responses=PROBLEMS,
    summary="Generate synthetic rows (gan models)",
)
@access("generate")
async def generate(request: Request, name: str, body: schemas.GenerateIn) -> Response:
    """`n` rows that look like the table the gan learned; `seed` makes them repeatable.
    A plan counts them like scored rows."""
    model, number, alias = registry.parse_ref(name)
    version, rows, headers = await serve_whole_model(
        request, model, number, alias, task="generation", rows=body.n,
        work=lambda predictor: predictor.generate(body.n, body.seed),
    )  # fmt: skip
    out = {"model": version.model_name, "version": version.number, "rows": rows}
    return _json(out, headers={"X-Model-Version": str(version.number), **headers})


@router.post(
    "/models/{name}/forecast",
    response_model=schemas.ForecastOut,
    responses=PROBLEMS,
    summary="Forecast the next values of a series (rnn, lstm, gru models)",
)
@access("predict")
async def forecast(request: Request, name: str, body: schemas.ForecastIn) -> Response:
    """The next `horizon` values after `history` (the series' recent values, oldest first;
    the model reads its last `window`). A plan counts one row per forecast."""
    model, number, alias = registry.parse_ref(name)
    version, values, headers = await serve_whole_model(
        request, model, number, alias, task="forecast", rows=1,
        work=lambda predictor: predictor.forecast(body.history),
    )  # fmt: skip
    out = {"model": version.model_name, "version": version.number, "forecast": values}
    return _json(out, headers={"X-Model-Version": str(version.number), **headers})


async def _predict(request: Request, name: str, number: int | None, alias: str | None) -> Response:
    services = _services(request)

    ask = Ask()

    def parse_rows(raw: bytes, content_type: str | None, columns: Sequence[Column]) -> Table:
        body = decode_json(raw, content_type)
        if isinstance(body, dict) and "explain" in body:
            body = dict(body)
            ask.read(body.pop("explain"), "explain")
        return table_from_body(body, columns, max_rows=services.settings.max_rows)

    result, headers = await serve_prediction(request, name, number, alias, parse_rows, ask)
    with stage("encode"):
        return _answer_rows(result, ask, headers)


def _answer_rows(result: Prediction, ask: Ask, headers: dict[str, str]) -> Response:
    body: dict[str, Any] = {
        "model": result.version.model_name,
        "version": result.version.number,
        "predictions": result.predictions,
    }
    if result.probabilities is not None:
        body["classes"] = result.classes
        body["probabilities"] = result.probabilities
    if result.explanation is not None:
        body["explanation"] = result.explanation.about()
        body["explanations"] = result.explanation.rows(ask.top)
    if result.warnings:  # only rows with a value outside what training saw
        body["warnings"] = warnings_json(result.warnings)
    return _json(body, headers={"X-Model-Version": str(result.version.number), **headers})


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
