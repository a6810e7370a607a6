"""Training from the dashboard: a form that starts a job, and the job's live page."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mlgate.access.model import Principal, Target
from mlgate.api.authorize import access, actor, authorize, authorize_training
from mlgate.errors import InvalidInput
from mlgate.jobs.model import Job
from mlgate.registry.model import check_name
from mlgate.training.catalogue import CATALOGUE
from mlgate.training.distributed import default_address
from mlgate.training.service import AUTO, TrainSpec
from mlgate.training.tuning import TuneSpec
from mlgate.web import pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)


@router.get("/train")
@access("authenticated")
@page("ui")
def form(request: Request, model: str = "", source: str = "", table: str = "") -> Response:
    me = member(request, "ui")
    services = pages.services_of(request)
    return render(
        request,
        "train.html",
        principal=me,
        sources=services.sources.all(),
        algorithms=[(AUTO, "try a shortlist, keep the best")]
        + [(a.name, ", ".join(a.tasks)) for a in CATALOGUE.values()],
        model=model,
        request_source=source,
        request_table=table,
    )


@router.post("/train")
@access("authenticated")
@page("ui")
def start(
    request: Request, model: str = Form(""), source: str = Form(""), table: str = Form(""),
    query: str = Form(""), target: str = Form(""), algorithm: str = Form(AUTO),
    drop: str = Form(""), slices: str = Form(""), trials: str = Form(""), minutes: str = Form(""),
    evaluate: str = Form("holdout"), csrf: str = Form(""),
) -> Response:  # fmt: skip
    """The same checks as POST /v1/models/{name}/train: a new name needs a team member, who
    becomes its owner; an existing model needs `train` on it."""
    member(request, "ui", csrf=csrf)
    name = check_name("model", model.strip())
    table, query = table.strip(), query.strip()
    if bool(table) == bool(query):
        raise InvalidInput("give either a table or a query (not both)")
    if not source:
        raise InvalidInput("choose a source; add one under Sources first")
    if evaluate not in ("holdout", "every-row"):
        raise InvalidInput("evaluate on a holdout or on every row")
    services = pages.services_of(request)
    caller = authorize_training(services, request, name)
    spec = TrainSpec(
        model_name=name,
        source=source,
        target=target.strip(),
        algorithm=algorithm.strip() or AUTO,
        table=table or None,
        query=query or None,
        drop=tuple(c.strip() for c in drop.split(",") if c.strip()),
        slices=tuple(dict.fromkeys(c.strip() for c in slices.split(",") if c.strip())),
        tune=_tune(trials, minutes),
        test_size=0.0 if evaluate == "every-row" else 0.2,
        actor=actor(caller),
        dask=None  # cross-fitting every row runs here (a cluster fits on a hashed split)
        if evaluate == "every-row"
        else default_address(
            services.settings.dask_address,
            algorithm.strip() or AUTO,
            table=table or None,
            tuned=bool(trials or minutes),
        ),  # fmt: skip
    )
    job = services.jobs.submit(
        spec,
        {"model": name, "source": source, "table": spec.table, "query": spec.query,
         "target": spec.target, "algorithm": spec.algorithm, "drop": list(spec.drop),
         "slices": list(spec.slices),
         "tune": _tune_text(trials, minutes), "test_size": spec.test_size,
         "via": "dashboard"},
    )  # fmt: skip
    return pages.see_other(f"/ui/jobs/{job.id}")


@router.get("/jobs/{job_id}")
@access("train")
@page("ui")
def job(request: Request, job_id: str) -> Response:
    me, found = _job(request, job_id)
    return render(request, "job.html", principal=me, job=found, state=found.to_json())


@router.get("/jobs/{job_id}/state")
@access("train")
@page("ui")
def state(request: Request, job_id: str) -> Response:
    """What the job page's script polls: the job as the API shows it."""
    _, found = _job(request, job_id)
    return Response(
        orjson.dumps(found.to_json()),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


@router.post("/jobs/{job_id}/cancel")
@access("train")
@page("ui")
def cancel(request: Request, job_id: str, csrf: str = Form("")) -> Response:
    _job(request, job_id, csrf=csrf)
    pages.services_of(request).jobs.request_cancel(job_id)
    return pages.see_other(f"/ui/jobs/{job_id}", "cancel_requested")


def _job(request: Request, job_id: str, csrf: str | None = None) -> tuple[Principal, Job]:
    """The job, if the caller may train its model."""
    me = member(request, "ui", csrf=csrf)
    services = pages.services_of(request)
    found = services.jobs.get(job_id)
    authorize(services, request, Target(str(found.spec.get("model", ""))), action="train")
    return me, found


def _tune(trials: str, minutes: str) -> TuneSpec | None:
    """The form's tuning budget (trials, minutes, or both; empty: no tuning)."""
    text = _tune_text(trials, minutes)
    return TuneSpec.parse(text) if text else None


def _tune_text(trials: str, minutes: str) -> str | None:
    parts = []
    if trials.strip():
        parts.append(f"trials={trials.strip()}")
    if minutes.strip():
        parts.append(f"time={minutes.strip()}m")
    return ",".join(parts) or None
