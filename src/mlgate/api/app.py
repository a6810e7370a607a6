"""The app factory: routes, the error table, the OpenAPI document."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from mlgate import __version__, errors
from mlgate.api import problems
from mlgate.api.routes import health, models
from mlgate.bootstrap import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
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
    return app
