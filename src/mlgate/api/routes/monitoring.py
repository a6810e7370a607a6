"""Monitoring over HTTP: the drift and accuracy report, settings, checks, and feedback."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mlgate.access.model import Target
from mlgate.api.authorize import AuthorizedRoute, access, authorize, authorize_asked
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import MAX_COUNT, MAX_NUMBER, BodyRowIndex
from mlgate.bootstrap import Services
from mlgate.monitoring.model import Label
from mlgate.monitoring.service import MAX_FEEDBACK
from mlgate.retention.model import MAX_DAYS, MIN_DAYS

router = APIRouter(
    prefix="/v1/models/{name}",
    tags=["monitoring"],
    dependencies=[Security(bearer)],
    route_class=AuthorizedRoute,
)


ALWAYS_SET = (  # settings that always have a value (monitoring/model.py): null is refused
    "sample_rate", "exclude_columns", "psi_threshold", "p_threshold", "min_rows", "window_days",
    "retrain",
)  # fmt: skip


class SettingsPatch(BaseModel):
    """The settings to change; those left out keep their values. null removes an optional one
    (min_accuracy, max_rmse, the webhook); the others always have a value, so null is refused."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: float | None = Field(None, ge=0, le=1, description="Share of requests logged")
    exclude_columns: list[str] | None = Field(None, max_length=1000)
    psi_threshold: float | None = Field(None, gt=0)
    p_threshold: float | None = Field(None, gt=0, lt=1)
    min_rows: StrictInt | None = Field(None, ge=10, le=MAX_COUNT)
    min_accuracy: float | None = Field(None, ge=0, le=1)
    max_rmse: float | None = Field(None, gt=0)
    window_days: StrictInt | None = Field(None, ge=1, le=90)
    webhook_url: str | None = Field(None, max_length=2000)
    webhook_secret: str | None = Field(None, min_length=16, max_length=256)
    retrain: bool | None = None
    log_retention_days: StrictInt | None = Field(
        None,
        ge=1,
        le=MAX_DAYS,
        description="Days the model's prediction log, usage rows and audit events are kept "
        f"(at least {MIN_DAYS}: the billing period); null keeps them for ever",
    )

    @field_validator(*ALWAYS_SET, mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Sent as null (not left out): a 422 naming the field, not a TypeError later."""
        if value is None:
            raise ValueError("cannot be null: leave it out to keep its value")
        return value


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, description="X-Request-Id of the call")
    row: BodyRowIndex | None = Field(None, description="Which row of that call (default 0)")
    label: Any = Field(None, description="The true value of that row")
    labels: list[Any] | None = Field(None, description="The true values of every row, in order")

    @model_validator(mode="after")
    def one_kind(self) -> FeedbackItem:
        if (self.labels is None) == ("label" not in self.model_fields_set):
            raise ValueError("give either label (one row) or labels (every row of the call)")
        if self.labels is not None and self.row is not None:
            raise ValueError("row goes with label, not with labels")
        return self


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK)


def _json(value: Any, status: int = 200) -> Response:
    import orjson

    return Response(orjson.dumps(value), status, media_type="application/json")


@router.get("/monitoring", responses=PROBLEMS)
@access("read")
async def monitoring_report(
    request: Request,
    name: str,
    by: Literal["day", "version", "consumer"] = Query("day"),
    days: int = Query(7, ge=1, le=365),
    version: int | None = Query(None, ge=1, le=MAX_NUMBER),
    consumer: str | None = Query(None, max_length=160, description="An account: consumer:acme"),
) -> Response:
    """Per window (a day, a version or a consumer, always within one version): logged rows,
    population stability index and a two-sample test per feature against the version's
    training rows, the drift of the predictions, and accuracy or RMSE from feedback."""
    services: Services = request.app.state.services

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        report = services.monitor.report(name, by=by, days=days, version=version, account=consumer)
        check = services.monitor.checks()
        report["state"] = next((c.state for c in check if c.model == name), None)
        return report

    return _json(await run_in_threadpool(run))


@router.get("/monitoring/settings", responses=PROBLEMS)
@access("read")
async def monitoring_settings(request: Request, name: str) -> Response:
    """The model's sampling rate, excluded columns, thresholds and webhook (its secret only as
    whether one is set)."""
    services: Services = request.app.state.services

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        return services.monitor.settings(name).public()

    return _json(await run_in_threadpool(run))


@router.put("/monitoring/settings", responses=PROBLEMS)
@access("monitor")
async def configure_monitoring(request: Request, name: str, body: SettingsPatch) -> Response:
    """Change the model's monitoring settings. `"sample_rate": 0.05` logs one request in
    twenty; `exclude_columns` are never stored (personal data); `"log_retention_days": 3650`
    keeps the model's logs ten years, and the server deletes what is older."""
    services: Services = request.app.state.services

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        changes = body.model_dump(exclude_unset=True)
        return services.monitor.configure(name, **changes).public()

    return _json(await run_in_threadpool(run))


@router.post("/monitoring/check", responses=PROBLEMS)
@access("monitor")
async def check_monitoring(request: Request, name: str) -> Response:
    """Judge the model now (the server also does every MLGATE_MONITOR_INTERVAL seconds): its
    state, and on a change the webhook's delivery and any retraining job."""
    services: Services = request.app.state.services

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        result = services.monitor.check(name)
        return {"model": name, "state": result.state, "checked_at": result.checked_at.isoformat(),
                "details": result.details}  # fmt: skip

    return _json(await run_in_threadpool(run))


@router.post("/feedback", responses=PROBLEMS)
@access("predict", audit=False)
async def feedback(request: Request, name: str, body: FeedbackIn) -> Response:
    """Ground truth for earlier predictions, by the request id each answer carried in its
    X-Request-Id header: `{"feedback": [{"request_id": "…", "label": 1}]}` (one row, or `row`
    to say which), or `"labels": [...]` for every row of that call. Labels count toward live
    accuracy (or RMSE) for predictions that were logged; a consumer labels its own calls."""
    services: Services = request.app.state.services

    def run() -> dict[str, Any]:
        principal, asked = authorize_asked(services, request, name)  # as it named the model
        items: list[Label] = []
        for item in body.feedback:
            if item.labels is not None:
                items.extend(Label(item.request_id, i, v) for i, v in enumerate(item.labels))
            else:
                items.append(Label(item.request_id, item.row or 0, item.label))
        account = principal.actor if principal.kind == "consumer" else None
        return services.monitor.feedback(asked.model, account, items)

    return _json(await run_in_threadpool(run))
