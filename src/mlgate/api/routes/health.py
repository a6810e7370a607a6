"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from mlgate.api.authorize import access

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
