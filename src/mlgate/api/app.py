"""The app factory: routes, the error table, the OpenAPI document."""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mlgate import __version__, errors
from mlgate.api import problems
from mlgate.api.fastlane import App, PredictLane
from mlgate.api.middleware import AuditLog, SecurityHeaders
from mlgate.api.observe import RequestLog, flush_access_lines, record_prediction
from mlgate.api.routes import (
    access,
    batches,
    health,
    jobs,
    lifecycle,
    models,
    monitoring,
    plans,
    protocols,
    rollouts,
    scim,
)
from mlgate.bootstrap import Services, bootstrap
from mlgate.plans.flusher import reconcile
from mlgate.settings import Settings
from mlgate.tracing import setup as tracing
from mlgate.web import routes as web_routes
from mlgate.web.sso import SsoState

# The prediction routes of every protocol: they go past FastAPI's layers (api/fastlane.py).
LANE = frozenset({
    "/v1/models/{name}/predict",
    "/v1/models/{name}/versions/{version}/predict",
    "/v1/models/{name}/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
})  # fmt: skip


def create_app(services: Services) -> FastAPI:
    """The app over `services`. At start it marks failed the jobs of processes that are gone
    (jobs/runner.py): never those of a live neighbour worker or replica."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _drain_on_sigterm(services)
        await run_in_threadpool(services.jobs.recover)
        await run_in_threadpool(services.aliases.start)
        await run_in_threadpool(reconcile, services.gate.counters, services.uow, services.clock())
        services.flusher.start()
        services.start_monitoring()
        await run_in_threadpool(services.batches.resume)  # after the counters are reconciled
        yield
        aclose = getattr(services.gate.counters, "aclose", None)
        if aclose is not None:  # the loop's own connection to the counters (Redis)
            await aclose()
        await run_in_threadpool(services.flusher.stop)  # nothing metered is lost on a clean stop
        await run_in_threadpool(services.stop_monitoring)  # nor anything sampled
        await run_in_threadpool(services.aliases.stop)
        await run_in_threadpool(services.jobs.shutdown)
        services.stop_batches()
        flush_access_lines()
        tracing.stop()  # the last calls' spans, waiting a few seconds at most for the collector

    services.observe_prediction = record_prediction  # every answered or refused call, counted
    app = App(
        lifespan=lifespan,
        title="mlgate",
        version=__version__,
        description="Versioned, access-controlled prediction APIs for models trained on your data.",
        exception_handlers={
            errors.MlgateError: problems.mlgate_error,
            HTTPException: problems.http_error,
            RequestValidationError: problems.validation_error,
            Exception: problems.unexpected_error,
        },
    )
    app.state.services = services
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(lifecycle.router)
    app.include_router(rollouts.router)
    app.include_router(rollouts.schedules_router)
    app.include_router(access.router)
    app.include_router(plans.router)
    app.include_router(monitoring.router)
    app.include_router(scim.router)
    app.include_router(protocols.mlflow_router)
    app.include_router(protocols.oip_router)
    for router in web_routes.routers:  # the dashboard (/ui) and the consumer portal (/portal)
        app.include_router(router)
    # No CORS middleware: browsers on other origins get no access unless a deployment adds it.
    routers = (models.router, protocols.mlflow_router, protocols.oip_router)
    every = [r for router in routers for r in router.routes]
    lane = [r for r in every if isinstance(r, APIRoute) and r.path in LANE]
    if len(lane) != len(LANE):  # a route renamed: say so rather than slow down unnoticed
        raise RuntimeError(f"the predict lane found {sorted(r.path for r in lane)} of {LANE}")
    app.lane = PredictLane(app, lane)
    if services.settings.oidc_issuer:  # the sign-in flow's state, on /ui/sso/ only
        app.add_middleware(
            SsoState, secret_key=hashlib.sha256(b"sso-state:" + services.server_secret).hexdigest(),
            https_only=services.settings.secure_cookies is True,
        )  # fmt: skip
    app.add_middleware(AuditLog)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog)
    return app


def _drain_on_sigterm(services: Services) -> None:
    """On SIGTERM, say not-ready at once (load balancers stop sending), then let the server's
    own handler drain the requests in flight; the lifespan's end flushes usage."""
    if threading.current_thread() is not threading.main_thread():
        return  # a test client runs the app off the main thread; no signals there
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        services.draining = True
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)


def app_from_env() -> FastAPI:
    """The factory each worker process of `mlgate serve --workers N` calls."""
    from mlgate.api.observe import configure_logging
    from mlgate.runtime.predictors import limit_model_threads

    configure_logging()
    limit_model_threads()
    app = create_app(bootstrap(Settings.from_env()))
    settle_heap()
    return app


def settle_heap() -> None:
    """A serving process's objects so far (its modules, the app, the services) set aside from
    the garbage collector's full collections (`gc.freeze`): they live as long as the process,
    and a full collection walked all of them, 0.3 to 0.6 s a time under load here (measured
    with gc callbacks in bench/serve.py --tracing's servers, at 100% sampling)."""
    import gc

    gc.freeze()
