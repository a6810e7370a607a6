"""The one prediction flow every protocol shares (our JSON, MLflow's, the Open Inference
Protocol's): authorize what was asked for, open the caller's plan, resolve the version (a pin
wins), parse the body for that version's columns, admit, score, settle. Each protocol passes
its own body parser and renders the Prediction its own way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mlgate.access.model import Target
from mlgate.api.authorize import authorize
from mlgate.api.body import read_body
from mlgate.api.observe import record_prediction
from mlgate.api.problems import status_for
from mlgate.bootstrap import Services
from mlgate.errors import Conflict, MlgateError, PayloadTooLarge, TooManyRequests
from mlgate.registry.model import PRODUCTION, ModelVersion, Task
from mlgate.schema import Column, Table
from mlgate.serving.predictors import Predictor
from mlgate.serving.service import Prediction, predict

T = TypeVar("T")
BodyParser = Callable[[bytes, str | None, Sequence[Column]], pd.DataFrame | Table]


def _followed(
    services: Services, name: str, number: int | None, alias: str | None
) -> tuple[Target, int | None, str | None]:
    """What was asked for (authorization is about it, before any alias is followed: the bare
    name means the production alias where there is one), and the version this process serves
    for an alias it has loaded (its target, switched after loading)."""
    asked = Target(name, alias=alias, version=number)
    if number is None:
        followed = services.aliases.target(name, alias or PRODUCTION)
        if followed is not None:
            number, alias = followed, None
            if asked.whole_model:
                asked = Target(name, alias=PRODUCTION)
    return asked, number, alias


async def serve_prediction(
    request: Request, name: str, number: int | None, alias: str | None, parse: BodyParser
) -> tuple[Prediction, dict[str, str]]:
    """The prediction and the headers of the answer (rate limits, Sunset)."""
    services: Services = request.app.state.services
    # Authorization is about what was asked for (an alias, a version, or the bare name, which
    # means the production alias where there is one), before any alias is followed.
    asked, number, alias = _followed(services, name, number, alias)
    raw = await read_body(request, services.settings.max_body_bytes)
    content_type = request.headers.get("content-type")

    def run() -> tuple[Prediction, dict[str, str]]:
        principal = authorize(services, request, "predict", asked)
        gate = services.gate
        admission = gate.open(principal)
        pinned = admission.pinned(name)  # the subscription holds this consumer to a version
        seen: list[ModelVersion] = []
        parsed: list[pd.DataFrame | Table] = []

        def parse_rows(columns: Sequence[Column]) -> pd.DataFrame | Table:
            parsed.append(parse(raw, content_type, columns))
            return parsed[0]

        def admit(version: ModelVersion, rows: int) -> None:
            gate.admit(admission, asked, rows, version)

        try:
            result = predict(
                services.uow(),
                services.predictors,
                authorize=lambda: None,
                model_name=name,
                number=pinned or number,
                alias=None if pinned else alias,
                parse_rows=parse_rows,
                admit=admit,
                resolved=seen.append,
                resolve=services.resolve_version,
            )
        except MlgateError as exc:
            version = seen[0].number if seen else 0
            if not isinstance(exc, TooManyRequests):  # the gate metered its own refusals
                gate.meter(admission, name, version, status_for(exc))
            record_prediction(name, version, status_for(exc), 0)
            raise
        try:
            headers = gate.settle(admission, result.version)
        except MlgateError as exc:
            record_prediction(name, result.version.number, status_for(exc), 0)
            raise
        record_prediction(name, result.version.number, 200, len(result.predictions))
        services.recorder.offer(
            name, result.version.number, principal.actor, _request_id(request), parsed[0],
            result.predictions,
        )  # fmt: skip
        return result, headers

    # Run on the event loop, not in a worker thread: with the caches warm this is CPU work
    # besides at most one Redis round trip, and measured (bench/serve.py) a thread hop cost more
    # than it freed: threads scoring at once on two cores only contend, and the loop waiting
    # ~0.1 ms on Redis beat the hop (1,900 against 940 req/s, two workers, 16 clients). A cache
    # miss reads the database here, once a second per key and version.
    return run()


async def serve_whole_model(
    request: Request,
    name: str,
    number: int | None,
    alias: str | None,
    *,
    action: Literal["generate", "predict"],
    task: Task,
    rows: int,
    work: Callable[[Predictor], T],
) -> tuple[ModelVersion, T, dict[str, str]]:
    """A call to a generator or a forecaster, through the same key, grant and plan checks as a
    prediction: `rows` is what the plan counts (rows generated; one per forecast)."""
    services: Services = request.app.state.services
    asked, number, alias = _followed(services, name, number, alias)
    if rows > services.settings.max_rows:
        raise PayloadTooLarge(
            f"{rows} rows is more than the {services.settings.max_rows} one request may ask "
            "for; ask several times"
        )

    def run() -> tuple[ModelVersion, T, dict[str, str]]:
        principal = authorize(services, request, action, asked)
        gate = services.gate
        admission = gate.open(principal)
        pinned = admission.pinned(name)
        version = services.resolve_version(name, pinned or number, None if pinned else alias)
        try:
            if version.task != task:
                raise Conflict(f"{version.ref} is a {version.task} model; this asks for {task}")
            gate.admit(admission, asked, rows, version)
            result = work(services.predictors.get(version))
        except MlgateError as exc:
            if not isinstance(exc, TooManyRequests):
                gate.meter(admission, name, version.number, status_for(exc))
            record_prediction(name, version.number, status_for(exc), 0)
            raise
        headers = gate.settle(admission, version)
        record_prediction(name, version.number, 200, rows)
        return version, result, headers

    return await run_in_threadpool(run)  # a large n takes a while: off the event loop


def _request_id(request: Request) -> str:
    """The id RequestLog gave this request (what the caller's feedback names)."""
    return str(request.scope.get("state", {}).get("request_id") or "")
