"""A short way in for the busiest requests: our own predict endpoints.

FastAPI's routing (a regular expression per route, tried in order, then dependency solving and
its exception layers) cost more than the rest of a one-row prediction together in the profile.
This ASGI layer recognises `POST /v1/models/{name}/predict` and
`POST /v1/models/{name}/versions/{version}/predict` by their shape and calls the very same
endpoint functions, with the route recorded on the scope as the router would (metrics and logs
name it alike), and errors rendered by the same handlers. Everything else goes to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlgate.api import problems
from mlgate.api.routes import models
from mlgate.errors import MlgateError

_LATEST = re.compile(r"/v1/models/([^/]+)/predict")
_VERSION = re.compile(r"/v1/models/([^/]+)/versions/([^/]+)/predict")


class PredictLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        by_path = {r.path: r for r in models.router.routes if isinstance(r, APIRoute)}
        self._latest = by_path["/v1/models/{name}/predict"]
        self._version = by_path["/v1/models/{name}/versions/{version}/predict"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        params: dict[str, str]
        if match := _LATEST.fullmatch(path):
            route, params = self._latest, {"name": unquote(match[1])}
        elif match := _VERSION.fullmatch(path):
            route = self._version
            params = {"name": unquote(match[1]), "version": unquote(match[2])}
        else:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # as the router would record it
        scope["path_params"] = params
        endpoint: Callable[..., Awaitable[Response]] = route.endpoint
        request = Request(scope, receive)
        response: Any
        try:
            response = await endpoint(request, **params)
        except MlgateError as exc:
            response = await problems.mlgate_error(request, exc)
        except Exception as exc:  # the same answer FastAPI's handler gives: no trace to clients
            response = await problems.unexpected_error(request, exc)
        await response(scope, receive, send)
