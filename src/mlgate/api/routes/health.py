"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.api.authorize import access, authorize
from mlgate.api.observe import metrics_text
from mlgate.monitoring.exposition import exposition

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
@access("public")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The metadata database is reachable and its schema at head")
@access("public")
async def readyz(request: Request) -> dict[str, str]:
    services = request.app.state.services
    result: dict[str, str] = await run_in_threadpool(services.readiness)
    return result


@router.get(
    "/metrics",
    summary="Prometheus metrics (an admin's credentials)",
    responses={
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text format, or OpenMetrics (with exemplars) on request",
        },
        401: {"description": "No valid credentials"},
        403: {"description": "Not an admin, or no admin scope"},
    },
)
@access("admin")
async def metrics(request: Request) -> Response:
    """Requests, latency histograms and errors per route; predictions and rows per model,
    version and status; summed over every worker process. Then each monitored model's last
    check: its state, drift per feature, prediction drift and live accuracy or RMSE."""
    services = request.app.state.services
    await run_in_threadpool(authorize, services, request)
    checks = await run_in_threadpool(services.monitor.checks)
    body, content_type = metrics_text(request.headers.get("accept"), exposition(checks))
    return Response(body, media_type=content_type)
