"""A short way in for the busiest requests: the prediction routes of every protocol.

Each layer FastAPI and Starlette put around a request (their error and telemetry middleware,
body limits, the router's regular expressions tried in order, dependency solving) and each of
ours (request log, security headers, audit log) costs a little; on a one-row prediction they
added up to more than the scoring itself in the profile (bench/serve.py). The lane sits in front
of all of them and recognises `POST /v1/models/{name}/predict`, `…/versions/{version}/predict`,
MLflow's `…/invocations` and the Open Inference Protocol's `…/infer` by their shape. It gives
them what those layers would, in one pass: a request id, metrics and the access-log line
(observe.py), the security headers (middleware.py), the body limit (read by the routes
themselves), errors rendered by the same handlers and never a trace to the client. A prediction
changes nothing, so the audit log has nothing to record. It then calls the very same endpoint
functions, with the route recorded on the scope as the router would (metrics and logs name it
alike). Everything else goes to FastAPI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mlgate.api import problems
from mlgate.api.middleware import secured
from mlgate.api.observe import begin_call, begin_request, end_request, traceparent_header
from mlgate.errors import MlgateError
from mlgate.tracing.calls import enter, leave

_PARAMETER = re.compile(r"\{(\w+)\}")


class PredictLane:
    """The lane's routes, matched by their templates (a parameter is one path segment)."""

    def __init__(self, app: FastAPI, routes: list[APIRoute]) -> None:
        self.app = app
        self._routes = [(_pattern(route.path), route) for route in routes]

    def match(self, scope: Scope) -> tuple[APIRoute, dict[str, str]] | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        for pattern, route in self._routes:
            if found := pattern.fullmatch(path):
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    async def answer(
        self, route: APIRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        scope["app"] = self.app  # what Starlette sets: handlers reach the services through it
        scope["route"] = route  # as the router would record it
        scope["path_params"] = params
        request_id = begin_request(scope)
        call = begin_call(scope)  # None unless tracing is on
        token = enter(call) if call is not None else None
        path: str = scope["path"]
        status = 500

        async def send_secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if call is not None:
                    headers.append(traceparent_header(scope, call))
                message["headers"] = secured(path, headers)
            await send(message)

        endpoint: Callable[..., Awaitable[Response]] = route.endpoint
        request = Request(scope, receive)
        response: Any
        try:
            try:
                response = await endpoint(request, **params)
            except MlgateError as exc:
                response = await problems.mlgate_error(request, exc)
            except Exception as exc:  # the same answer FastAPI's handler gives: no trace
                response = await problems.unexpected_error(request, exc)
            await response(scope, receive, send_secured)
        finally:
            end_request(scope, status, started, request_id, call)
            if token is not None:
                leave(token)


def _pattern(template: str) -> re.Pattern[str]:
    parts = _PARAMETER.split(template)
    regex = "".join(
        f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(regex)


class App(FastAPI):
    """FastAPI, with the prediction lane in front of its middleware (see the module's doc)."""

    lane: PredictLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lane is not None and (found := self.lane.match(scope)) is not None:
            await self.lane.answer(*found, scope, receive, send)
            return
        await super().__call__(scope, receive, send)
