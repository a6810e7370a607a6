"""The prediction edge every protocol shares: read the body, authorize what was asked for, and
hand the call to the use case (serving/service.py). Each protocol passes its own body parser and
renders the Prediction its own way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mlgate.api.authorize import authorize_asked
from mlgate.api.body import read_body
from mlgate.bootstrap import Services
from mlgate.errors import PayloadTooLarge
from mlgate.registry.model import ModelVersion, Task
from mlgate.runtime.predictors import Predictor
from mlgate.schema import Column, Table
from mlgate.serving.service import Ask, Prediction, call_whole_model, predict

T = TypeVar("T")
BodyParser = Callable[[bytes, str | None, Sequence[Column]], pd.DataFrame | Table]


async def serve_prediction(
    request: Request,
    name: str,
    number: int | None,
    alias: str | None,
    parse: BodyParser,
    ask: Ask | None = None,
) -> tuple[Prediction, dict[str, str]]:
    """The prediction and the headers of the answer (rate limits, Sunset). `ask` is filled in
    by `parse` where the body asks for more than predictions (explanations)."""
    services: Services = request.app.state.services
    # Authorization is about what was asked for, before any alias is followed (the bare name
    # means the production alias where there is one): see serving/asking.py.
    principal, asked = authorize_asked(services, request, name, number, alias)
    raw = await read_body(request, services.settings.max_body_bytes)
    content_type = request.headers.get("content-type")
    # On the event loop, not in a worker thread: with the caches warm this is CPU work, and
    # measured (bench/serve.py) a thread hop cost more than it freed: threads scoring at once
    # on two cores only contend. The one wait, the count in Redis, is awaited (the loop serves
    # other calls meanwhile; see plans/redis_counters.py). A cache miss reads the database
    # here, once a second per key and version.
    return await predict(
        services.serving,
        principal,
        asked,
        lambda columns: parse(raw, content_type, columns),
        request_id=_request_id(request),
        ask=ask,
    )


async def serve_whole_model(
    request: Request,
    name: str,
    number: int | None,
    alias: str | None,
    *,
    task: Task,
    rows: int,
    work: Callable[[Predictor], T],
) -> tuple[ModelVersion, T, dict[str, str]]:
    """A call to a generator or a forecaster, through the same key, grant and plan checks as a
    prediction: `rows` is what the plan counts (rows generated; one per forecast)."""
    services: Services = request.app.state.services
    if rows > services.settings.max_rows:
        raise PayloadTooLarge(
            f"{rows} rows is more than the {services.settings.max_rows} one request may ask "
            "for; ask several times"
        )

    def run() -> tuple[ModelVersion, T, dict[str, str]]:
        principal, asked = authorize_asked(services, request, name, number, alias)
        return call_whole_model(services.serving, principal, asked, task=task, rows=rows, work=work)

    return await run_in_threadpool(run)  # a large n takes a while: off the event loop


def _request_id(request: Request) -> str:
    """The id RequestLog gave this request (what the caller's feedback names)."""
    return str(request.scope.get("state", {}).get("request_id") or "")
