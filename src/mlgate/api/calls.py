"""The shape most admin routes share: authorize by the route's own rule, run a use case in a
worker thread with the caller, answer its result (pydantic models, lists of them, or nothing)
as JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlgate.access.model import Principal
from mlgate.api.authorize import authorize
from mlgate.bootstrap import Services


async def call(
    request: Request,
    run: Callable[[Services, Principal], Any],
    *,
    status: int = 200,
    target_in_body: bool = False,
) -> Response:
    """`target_in_body`: the route's rule names an action on a model the body names (grants);
    the caller is authenticated here and the use case authorizes that model."""
    services: Services = request.app.state.services

    def go() -> Any:
        if target_in_body:
            return run(services, authorize(services, request, action="authenticated"))
        return run(services, authorize(services, request))  # by the route's own rule

    out = await run_in_threadpool(go)
    if out is None:
        return Response(status_code=status)
    return Response(orjson.dumps(_plain(out)), status, media_type="application/json")


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
