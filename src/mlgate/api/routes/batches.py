"""Batch jobs over HTTP: upload a file of rows, watch the job, download the result, cancel."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request, Security
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response, StreamingResponse

from mlgate.access.model import Principal
from mlgate.api.authorize import AuthorizedRoute, access, authorize, authorize_asked
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import VersionNumber
from mlgate.bootstrap import Services
from mlgate.errors import MalformedRequest, PayloadTooLarge
from mlgate.registry.model import ModelVersion
from mlgate.serving import batches
from mlgate.serving.asking import Asked

router = APIRouter(
    prefix="/v1", tags=["batches"], dependencies=[Security(bearer)], route_class=AuthorizedRoute
)
RESULT_PROBLEMS = {
    **PROBLEMS,
    409: {**PROBLEMS[409], "description": "The batch has no result: it has not succeeded"},
    410: {**PROBLEMS[404], "description": "The result was removed (a cancel, or the retention)"},
}
UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post("/models/{name}/batches", status_code=202, responses=PROBLEMS, openapi_extra=UPLOAD)
@access("predict")
async def submit(
    request: Request, name: str, version: VersionNumber | None = None, alias: str | None = None
) -> Response:
    """Score a CSV or Parquet file (the body, streamed) as a job: 202 with the job; rows are
    counted against the plan's row quotas as they are scored and metered as rows. `name@alias`
    and `name@3` (or `?alias=`, `?version=`) pick an alias or a version; the bare name means
    the production alias where there is one, as on /predict."""
    services = _services(request)

    def admit() -> tuple[Principal, Asked, ModelVersion, int]:
        principal, asked = authorize_asked(services, request, name, version, alias)
        found, limit = batches.admit_batch(
            services.gate, services.resolve_version, principal, asked,
            services.settings.max_batch_bytes,
        )  # fmt: skip
        return principal, asked, found, limit

    principal, asked, found, limit = await run_in_threadpool(admit)
    fmt = batches.format_of(
        request.headers.get("content-type"), request.query_params.get("filename")
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and int(declared) > limit:
        raise PayloadTooLarge(
            f"a batch file may hold {limit:,} bytes; this one declares {declared}"
        )
    folder = Path(tempfile.mkdtemp(prefix="mlgate-batch-"))
    upload = folder / f"upload.{fmt}"
    try:
        size = 0
        with upload.open("wb") as handle:
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"a batch file may hold {limit:,} bytes")
                    handle.write(chunk)
            except ClientDisconnect:
                raise MalformedRequest("the upload was cut off; nothing was kept") from None

        def register() -> dict[str, Any]:
            job = services.batch_jobs.submit(
                found, upload, fmt, account=principal.actor,
                key_prefix=principal.key_prefix or "", asked=asked.ref,
            )  # fmt: skip
            return services.batch_jobs.describe(job)

        body = await run_in_threadpool(register)
    finally:
        upload.unlink(missing_ok=True)
        folder.rmdir()
    return Response(orjson.dumps(body), 202, media_type="application/json",
                    headers={"Location": f"/v1/batches/{body['id']}"})  # fmt: skip


@router.get("/batches/{batch_id}", responses=PROBLEMS)
@access("authenticated")
async def status(request: Request, batch_id: str) -> Response:
    """State, rows done and failed, and an ETA."""
    services = _services(request)

    def run() -> dict[str, Any]:
        job = _mine(services, request, batch_id)
        return services.batch_jobs.describe(job)

    return Response(orjson.dumps(await run_in_threadpool(run)), media_type="application/json")


@router.get("/batches/{batch_id}/result", responses=RESULT_PROBLEMS)
@access("authenticated")
async def result(request: Request, batch_id: str) -> Response:
    """The rows with `prediction` (and probabilities), in the format they came in; 410 once its
    files are removed (a finished batch cancelled, or its retention passed), saying when."""
    services = _services(request)
    job = await run_in_threadpool(_mine, services, request, batch_id)
    parts = await run_in_threadpool(services.batch_jobs.result_parts, job)
    if job.spec["format"] == "csv":
        return StreamingResponse(batches.csv_stream(parts), media_type="text/csv",
                                 headers=_attachment(batch_id, "csv"))  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="mlgate-result-"))
    path = await run_in_threadpool(batches.parquet_file, parts, folder)
    return FileResponse(
        path, media_type=batches.MEDIA["parquet"], headers=_attachment(batch_id, "parquet"),
        background=BackgroundTask(_remove, folder),
    )  # fmt: skip


@router.delete("/batches/{batch_id}", responses=PROBLEMS)
@access("authenticated")
async def cancel(request: Request, batch_id: str) -> Response:
    """Cancel a queued or running batch (it stops before its next chunk); for a finished one,
    remove its files."""
    services = _services(request)

    def run() -> dict[str, Any]:
        job = _mine(services, request, batch_id)
        return services.batch_jobs.describe(services.batch_jobs.cancel(job))

    return Response(orjson.dumps(await run_in_threadpool(run)), media_type="application/json")


def _mine(services: Services, request: Request, batch_id: str) -> Any:
    """The caller's own batch (an admin's: any), if it may still use the model as it named it
    when it submitted the batch (as a training job's model is checked again: jobs.py)."""
    principal = authorize(services, request)
    account = None if principal.is_admin else principal.actor
    job = services.batch_jobs.of(batch_id, account)
    authorize_asked(services, request, batches.asked_of(job), action="predict")
    return job


def _attachment(batch_id: str, fmt: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="batch-{batch_id}.{fmt}"'}


def _remove(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
