"""Rollouts over HTTP: start a shadow or a canary of a candidate version, watch its evidence,
stop it, or have it decide now (the server's referee also looks every MLGATE_ROLLOUT_INTERVAL
seconds)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access.model import Target
from mlgate.api.authorize import AuthorizedRoute, access, actor, authorize
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import MAX_COUNT, MAX_NUMBER, Id
from mlgate.bootstrap import Services
from mlgate.registry.model import PRODUCTION

router = APIRouter(
    prefix="/v1/models/{name}/rollouts",
    tags=["rollouts"],
    dependencies=[Security(bearer)],
    route_class=AuthorizedRoute,
)


class StartRollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate: StrictInt = Field(ge=1, le=MAX_NUMBER, description="The version to try")
    mode: Literal["shadow", "canary"] = Field(
        "canary",
        description="canary: the candidate answers a share of the callers; shadow: it scores "
        "a copy of a share of the calls, answering none",
    )
    share: float = Field(
        0.05, gt=0, le=1, description="Of the callers (canary, at most 0.5) or the calls (shadow)"
    )
    alias: str = Field(PRODUCTION, min_length=1, max_length=64)
    alpha: float = Field(0.05, gt=0, le=0.2, description="Error rate of the sequential test")
    auto: bool = Field(False, description="Promote or roll back on the test's verdict")
    days: float = Field(14.0, gt=0, le=365, description="Undecided after this: it expires")
    max_error_rate: float = Field(0.05, gt=0, lt=1, description="Guard rail: failed calls")
    max_latency_ratio: float = Field(3.0, gt=1, description="Guard rail: p99 over the incumbent's")
    min_agreement: float = Field(
        0.0, ge=0, le=1, description="Guard rail (shadow): rows where both sides agree"
    )
    then_canary: float | None = Field(
        None, gt=0, le=0.5, description="Shadow: found better, a canary of this share follows"
    )


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate: StrictInt = Field(
        ge=1, le=MAX_NUMBER, description="The version to replay the calls on"
    )
    days: float = Field(7.0, gt=0, le=90, description="How far back in the prediction log")
    alpha: float = Field(0.05, gt=0, le=0.2)


class StopRollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000)


@router.get("", responses=PROBLEMS)
@access("read")
async def list_rollouts(request: Request, name: str) -> Response:
    """The model's rollouts, the newest last, each with its last look."""
    services = _services(request)

    def run() -> list[dict[str, Any]]:
        authorize(services, request, Target(name))
        return [r.to_json() for r in services.rollouts.of_model(name)]

    return _json(await run_in_threadpool(run))


@router.post("", status_code=201, responses=PROBLEMS)
@access("promote")
async def start_rollout(request: Request, name: str, body: StartRollout) -> Response:
    """Try `candidate` on a share of the alias's callers (each caller stays on its side)."""
    services = _services(request)

    def run() -> dict[str, Any]:
        key = authorize(services, request, Target(name, alias=body.alias))
        fields = body.model_dump()
        candidate = fields.pop("candidate")
        return services.rollouts.start(name, candidate, actor=actor(key), **fields).to_json()

    return _json(await run_in_threadpool(run), status=201)


@router.post("/replay", responses=PROBLEMS)
@access("promote", audit=False)
async def replay(request: Request, name: str, body: Replay) -> Response:
    """Before any traffic: the candidate scores the calls the prediction log kept from the last
    days; agreement with what was answered, the test on the labels fed back, and the bill it
    would have made."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        return services.rollouts.replay(name, body.candidate, days=body.days, alpha=body.alpha)

    return _json(await run_in_threadpool(run))


@router.get("/{rollout_id}", responses=PROBLEMS)
@access("read")
async def show_rollout(request: Request, name: str, rollout_id: Id) -> Response:
    """The rollout, and for a running one a fresh look: calls, failures and p99 per side, the
    sequential test's estimate, its always-valid interval and its verdict."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        rollout = services.rollouts.get(name, rollout_id)
        out = rollout.to_json()
        if rollout.running:
            out["look"] = services.rollouts.look(rollout)
        return out

    return _json(await run_in_threadpool(run))


@router.post("/{rollout_id}/decide", responses=PROBLEMS)
@access("promote")
async def decide_rollout(request: Request, name: str, rollout_id: Id) -> Response:
    """Look now and act on it as the referee would: guard rails, the verdict (with auto), the
    deadline."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        return services.rollouts.decide(name, rollout_id).to_json()

    return _json(await run_in_threadpool(run))


@router.post("/{rollout_id}/stop", responses=PROBLEMS)
@access("promote")
async def stop_rollout(request: Request, name: str, rollout_id: Id, body: StopRollout) -> Response:
    """End the rollout: every caller back on the incumbent, no alias moves."""
    services = _services(request)

    def run() -> dict[str, Any]:
        key = authorize(services, request, Target(name))
        stopped = services.rollouts.stop(name, rollout_id, actor=actor(key), reason=body.reason)
        return stopped.to_json()

    return _json(await run_in_threadpool(run))


schedules_router = APIRouter(
    prefix="/v1/models/{name}/schedules",
    tags=["rollouts"],
    dependencies=[Security(bearer)],
    route_class=AuthorizedRoute,
)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replay_days: float = Field(7, ge=0, le=90, description="Replay the log first (0: no)")
    mode: Literal["shadow", "canary", "none"] = Field("canary")
    share: float = Field(0.05, gt=0, le=1)
    auto: bool = Field(True, description="The rollout decides by itself")
    alpha: float = Field(0.05, gt=0, le=0.2)
    then_canary: float | None = Field(
        None, gt=0, le=0.5, description="With mode shadow: found better, a canary follows"
    )


class AddSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(None, max_length=128, description='UTC, e.g. "0 3 * * 1"')
    on_drift: bool = Field(False, description="Also when monitoring finds it drifting")
    new_rows: StrictInt | None = Field(
        None, ge=1, le=MAX_COUNT, description="Also when the source has this many new rows"
    )
    alias: str = Field(PRODUCTION, min_length=1, max_length=64)
    policy: Policy = Field(default_factory=Policy)


@schedules_router.get("", responses=PROBLEMS)
@access("read")
async def list_schedules(request: Request, name: str) -> Response:
    """The model's retraining schedules, each with its next run and its last outcome."""
    services = _services(request)

    def run() -> list[dict[str, Any]]:
        authorize(services, request, Target(name))
        return [s.to_json() for s in services.rollouts.schedules(name)]

    return _json(await run_in_threadpool(run))


@schedules_router.post("", status_code=201, responses=PROBLEMS)
@access("train")
async def add_schedule(request: Request, name: str, body: AddSchedule) -> Response:
    """Retrain the alias's version on a cron, on drift or on new rows, and hand the new
    version to the policy: replay, then a shadow or canary rollout."""
    services = _services(request)

    def run() -> dict[str, Any]:
        key = authorize(services, request, Target(name))
        return services.rollouts.add_schedule(
            name, actor=actor(key), cron=body.cron, on_drift=body.on_drift,
            new_rows=body.new_rows, alias=body.alias, policy=body.policy.model_dump(),
        ).to_json()  # fmt: skip

    return _json(await run_in_threadpool(run), status=201)


@schedules_router.delete("/{schedule_id}", responses=PROBLEMS)
@access("train")
async def remove_schedule(request: Request, name: str, schedule_id: Id) -> Response:
    """Remove a schedule; a retrain it started runs on, and nothing follows it."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        return services.rollouts.remove_schedule(name, schedule_id).to_json()

    return _json(await run_in_threadpool(run))


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
