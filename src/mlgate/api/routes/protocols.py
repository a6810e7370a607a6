"""The protocols clients already speak: MLflow's `/invocations` and the Open Inference
Protocol v2. Both run the same prediction flow as our own route (api/predicting.py); each
answers errors in its own shape with the status our error table gives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import pandas as pd
from fastapi import APIRouter, Request, Security
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate import __version__
from mlgate.api.authorize import access, authorize_asked
from mlgate.api.body import decode_json
from mlgate.api.predicting import serve_prediction
from mlgate.api.problems import error_headers, traced
from mlgate.api.routes.models import bearer
from mlgate.bootstrap import Services
from mlgate.errors import MlgateError, NotFound, UnsupportedFormat
from mlgate.outcomes import outcome_of, status_of
from mlgate.registry import service as registry
from mlgate.schema import Column, Table
from mlgate.serving import binary_tensors, mlflow, oip
from mlgate.serving.service import Ask, Prediction
from mlgate.tracing import stage
from mlgate.training.seen import warnings_json

mlflow_router = APIRouter(tags=["mlflow"], dependencies=[Security(bearer)])
oip_router = APIRouter(
    prefix="/v2", tags=["open inference protocol"], dependencies=[Security(bearer)]
)

_MLFLOW_CODES = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "INVALID_STATE",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    422: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}
MLFLOW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {
                    "dataframe_split": {
                        "columns": ["tenure_months", "contract"],
                        "data": [[3, "month-to-month"]],
                    }
                },
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
_ERRORS = {
    s: {"description": d}
    for s, d in [
        (400, "Bad request"),
        (401, "No valid credentials"),
        (403, "Not allowed"),
        (404, "No such model or version"),
        (409, "The model cannot serve in its state (archived, or its version refused)"),
        (413, "Too large"),
        (415, "Not JSON or CSV"),
        (422, "Rows that do not fit"),
        (429, "A plan limit"),
        (503, "Not ready"),
    ]
}


@mlflow_router.post(
    "/v1/models/{name}/invocations",
    openapi_extra=MLFLOW_BODY,
    responses=_ERRORS,  # type: ignore[arg-type]
)
@access("predict")
async def invocations(request: Request, name: str) -> Response:
    """MLflow's scoring endpoint: `dataframe_split`, `dataframe_records`, `instances` or
    `inputs` (exactly one; `params` optional) as JSON, or CSV; answers {"predictions": [...]}.
    `name@alias` and `name@3` pick an alias or a version."""
    services = _services(request)
    model, number, alias = registry.parse_ref(name)

    ask = Ask()

    def parse(raw: bytes, content_type: str | None, columns: Sequence[Column]) -> pd.DataFrame:
        media = (content_type or "application/json").split(";")[0].strip().lower()
        if media == "text/csv":
            return mlflow.frame_from_csv(raw, columns, max_rows=services.settings.max_rows)
        if media != "application/json":
            raise UnsupportedFormat(f"the body is {media[:80]}; send application/json or text/csv")
        body = decode_json(raw, content_type)
        mlflow.read_params(body, ask)
        return mlflow.frame_from_json(body, columns, max_rows=services.settings.max_rows)

    async def go() -> Response:
        result, headers = await serve_prediction(request, model, number, alias, parse, ask)
        with stage("encode"):
            headers["X-Model-Version"] = str(result.version.number)
            out: dict[str, Any] = {"predictions": result.predictions}
            if result.explanation is not None:
                out["explanation"] = result.explanation.about()
                out["explanations"] = result.explanation.rows(ask.top)
            if result.warnings:  # beside MLflow's own keys, which its client reads unchanged
                out["warnings"] = warnings_json(result.warnings)
            return _json(out, headers=headers)

    return await _answer(go, _mlflow_error)


@oip_router.get("", responses=_ERRORS)  # type: ignore[arg-type]
@access("public")
async def server_metadata() -> Response:
    """Server metadata."""
    return _json({"name": "mlgate", "version": __version__, "extensions": ["binary_tensor_data"]})


@oip_router.get("/health/live", responses=_ERRORS)  # type: ignore[arg-type]
@access("public")
async def server_live() -> Response:
    """The server is live."""
    return _json({"live": True})


@oip_router.get("/health/ready", responses=_ERRORS)  # type: ignore[arg-type]
@access("public")
async def server_ready(request: Request) -> Response:
    """The server is ready: its database is reachable and at the current schema."""
    services = _services(request)
    return await _answer(
        lambda: _ready(run_in_threadpool(services.readiness), {"ready": True}), _oip_error
    )


@oip_router.get("/models/{name}", responses=_ERRORS)  # type: ignore[arg-type]
@access("describe")
async def model_metadata(request: Request, name: str) -> Response:
    """A model's inputs (one per column) and outputs."""
    return await _metadata(request, name, None)


@oip_router.get("/models/{name}/versions/{version}", responses=_ERRORS)  # type: ignore[arg-type]
@access("describe")
async def model_version_metadata(request: Request, name: str, version: str) -> Response:
    """One version's inputs and outputs."""
    return await _metadata(request, name, version)


@oip_router.get("/models/{name}/ready", responses=_ERRORS)  # type: ignore[arg-type]
@access("describe")
async def model_ready(request: Request, name: str) -> Response:
    """The model's serving version is loaded (loading it if need be) and ready."""
    return await _model_ready(request, name, None)


@oip_router.get("/models/{name}/versions/{version}/ready", responses=_ERRORS)  # type: ignore[arg-type]
@access("describe")
async def model_version_ready(request: Request, name: str, version: str) -> Response:
    return await _model_ready(request, name, version)


@oip_router.post("/models/{name}/infer", responses=_ERRORS)  # type: ignore[arg-type]
@access("predict")
async def infer(request: Request, name: str) -> Response:
    """Inference with typed tensors: one input per column (tabular), or one [n, k] tensor."""
    return await _infer(request, name, None)


@oip_router.post("/models/{name}/versions/{version}/infer", responses=_ERRORS)  # type: ignore[arg-type]
@access("predict")
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    services = _services(request)
    parsed: list[oip.InferRequest] = []

    def parse(raw: bytes, content_type: str | None, columns: Sequence[Column]) -> Table:
        length = request.headers.get(binary_tensors.HEADER)
        header, tail = binary_tensors.split_body(raw, length)
        # With binary tensors the JSON part is JSON whatever the body's overall type says.
        body = decode_json(header, None if length is not None else content_type)
        parsed.append(
            oip.parse_infer(body, columns, max_rows=services.settings.max_rows, tail=tail)
        )
        ask.explain = "explanation" in parsed[0].outputs
        return parsed[0].table

    ask = Ask()

    async def go() -> Response:
        model, number, alias = _ref(name, version)
        result, headers = await serve_prediction(request, model, number, alias, parse, ask)
        with stage("encode"):
            return _infer_answer(result, parsed[0], headers)

    return await _answer(go, _oip_error)


def _infer_answer(result: Prediction, asked: oip.InferRequest, headers: dict[str, str]) -> Response:
    """An inference's answer: JSON, or JSON and binary tensors (Triton's extension)."""
    payload, json_length = oip.infer_response(
        result.version.model_name,
        result.version.number,
        asked,
        result.predictions,
        result.probabilities,
        result.version.classes,
        result.explanation,
        result.warnings,
    )
    if json_length is None:
        return Response(payload, 200, media_type="application/json", headers=headers)
    headers["Inference-Header-Content-Length"] = str(json_length)
    return Response(payload, 200, media_type="application/octet-stream", headers=headers)


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    services = _services(request)

    def run() -> dict[str, Any]:
        _, asked = authorize_asked(services, request, *_ref(name, version))
        found, versions = services.registry.versions(asked.model)
        chosen = services.resolve_version(asked.model, asked.number, asked.alias)
        return oip.model_metadata(
            asked.model,
            [v.number for v in versions if v.archived_at is None],
            chosen.columns,
            chosen.classes,
            found.task,
        )

    return await _answer(lambda: _json_later(run_in_threadpool(run)), _oip_error)


async def _model_ready(request: Request, name: str, version: str | None) -> Response:
    services = _services(request)

    def run() -> dict[str, Any]:
        _, asked = authorize_asked(services, request, *_ref(name, version))
        chosen = services.resolve_version(asked.model, asked.number, asked.alias)
        services.predictors.get(chosen)  # loaded and verified, or an error says why not
        return {"name": asked.model, "version": str(chosen.number), "ready": True}

    return await _answer(lambda: _json_later(run_in_threadpool(run)), _oip_error)


def _ref(name: str, version: str | None) -> tuple[str, int | None, str | None]:
    model, number, alias = registry.parse_ref(name)
    if version is not None:
        if not version.isdecimal() or len(version) > 9 or int(version) < 1:
            raise NotFound(f"model versions are numbered 1, 2, …; {version[:20]!r} is not one")
        number, alias = int(version), None
    return model, number, alias


async def _answer(
    go: Callable[[], Awaitable[Response]], render: Callable[[MlgateError], Response]
) -> Response:
    try:
        return await go()
    except MlgateError as exc:
        traced(exc)
        return render(exc)


async def _ready(waiting: Awaitable[Any], body: dict[str, Any]) -> Response:
    await waiting
    return _json(body)


async def _json_later(waiting: Awaitable[dict[str, Any]]) -> Response:
    return _json(await waiting)


def _protocol_status(exc: MlgateError) -> int:
    """Both protocols answer a request they cannot use with 400 (ours says 422 for rows that do
    not fit); MLflow keeps 415 for a content type it does not read."""
    status = status_of(outcome_of(exc))
    return 400 if status == 422 else status


def _mlflow_error(exc: MlgateError) -> Response:
    status = _protocol_status(exc)
    code = _MLFLOW_CODES.get(status_of(outcome_of(exc)), "INTERNAL_ERROR")
    body = {"error_code": code, "message": str(exc)}
    return _json(body, status=status, headers=error_headers(exc))


def _oip_error(exc: MlgateError) -> Response:
    status = _protocol_status(exc)
    status = 400 if status == 415 else status
    return _json({"error": str(exc)}, status=status, headers=error_headers(exc))


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json", headers=headers)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
