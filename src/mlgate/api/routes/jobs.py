"""Training over HTTP: start a job, watch it, cancel it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access.model import Target
from mlgate.api.authorize import AuthorizedRoute, access, actor, authorize, authorize_training
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import Seed
from mlgate.bootstrap import Services
from mlgate.jobs.model import Job
from mlgate.training.distributed import default_address
from mlgate.training.service import TrainSpec
from mlgate.training.tuning import TuneSpec

router = APIRouter(
    prefix="/v1", tags=["training"], dependencies=[Security(bearer)], route_class=AuthorizedRoute
)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="A source from `mlgate sources list`")
    target: str = Field("", description="The column to predict (none for a gan)")
    algorithm: str = Field("logistic_regression", description="A catalogue name, or auto")
    table: str | None = None
    query: str | None = None
    drop: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    task: Literal["classification", "regression"] | None = None
    tune: str | None = Field(None, description="trials=50, time=5m, or both")
    test_size: float = Field(
        0.2,
        description="Share of rows held out for metrics (0.05-0.5); 0 fits on every row and "
        "evaluates cross-fitted predictions (leave-one-out under 30 rows, else 5 folds)",
    )
    cv: StrictInt | None = Field(
        None,
        ge=2,
        le=1000,
        description="Folds: of the cross-fitting with test_size 0, else of k-fold CV metrics",
    )
    seed: Seed = 42
    report: bool = True
    slices: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        max_length=20,
        description="Columns to slice the holdout by for the model card (checked before "
        "anything is fitted)",
    )


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    stage: str
    progress: float
    log: list[str]
    result: dict[str, Any]
    error: str | None
    cancel_requested: bool
    created_at: str
    started_at: str | None
    finished_at: str | None


@router.post("/models/{name}/train", status_code=202, response_model=JobOut, responses=PROBLEMS)
@access("train")
async def train(request: Request, name: str, body: TrainRequest) -> Response:
    """Start training a new version of `name`; answers at once with the job to watch. A team
    member may create a new model this way, and becomes its owner."""
    services = _services(request)

    def run() -> Job:
        key = authorize_training(services, request, name)
        spec = TrainSpec(
            model_name=name,
            source=body.source,
            target=body.target,
            algorithm=body.algorithm,
            table=body.table,
            query=body.query,
            drop=tuple(body.drop),
            params=body.params or None,
            test_size=body.test_size,
            cv=body.cv,
            seed=body.seed,
            task=body.task,
            tune=TuneSpec.parse(body.tune) if body.tune else None,
            report=body.report,
            slices=tuple(dict.fromkeys(body.slices)),
            actor=actor(key),
            dask=None  # cross-fitting every row runs here (a cluster fits on a hashed split)
            if body.test_size == 0
            else default_address(
                services.settings.dask_address,
                body.algorithm,
                table=body.table,
                tuned=bool(body.tune),
            ),  # fmt: skip
        )
        return services.jobs.submit(spec, {"model": name, **body.model_dump()})

    job = await run_in_threadpool(run)
    return _json(job, 202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/jobs/{job_id}", response_model=JobOut, responses=PROBLEMS)
@access("train")
async def get_job(request: Request, job_id: str) -> Response:
    """A job's state, progress and the tail of its log."""
    services = _services(request)

    def run() -> Job:
        return _authorized_job(services, request, job_id)

    return _json(await run_in_threadpool(run))


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobOut, responses=PROBLEMS)
@access("train")
async def cancel_job(request: Request, job_id: str) -> Response:
    """Ask a job to stop at its next step. Nothing it did is registered."""
    services = _services(request)

    def run() -> Job:
        _authorized_job(services, request, job_id)
        return services.jobs.request_cancel(job_id)

    return _json(await run_in_threadpool(run), 202)


def _authorized_job(services: Services, request: Request, job_id: str) -> Job:
    """The job, if the caller may train its model."""
    authorize(services, request, action="authenticated")  # which model: the job says
    job = services.jobs.get(job_id)
    authorize(services, request, Target(str(job.spec.get("model", ""))))
    return job


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _json(job: Job, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(job.to_json()), status, headers=headers, media_type="application/json"
    )
