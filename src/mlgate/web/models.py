"""The team's model pages: the list, one model (versions, aliases, promote, rollback), a
comparison of two versions, monitoring, and why a prediction is what it is (a version's
report is web/reports.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import Field
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.model import Principal, Target
from mlgate.api.authorize import access, actor
from mlgate.api.problems import error_headers
from mlgate.api.schemas import RowIndex
from mlgate.errors import InvalidInput, MlgateError
from mlgate.outcomes import outcome_of, status_of
from mlgate.registry.model import PRODUCTION, ModelVersion
from mlgate.registry.service import parse_ref
from mlgate.retention.model import MIN_DAYS, SIX_MONTHS, parse_retention, stated
from mlgate.serving.asking import Asked
from mlgate.training.undefined import metric_rows
from mlgate.web import charts, pages, reports
from mlgate.web.explaining import example_row, explain_row, logged_row, parse_row
from mlgate.web.pages import member, member_asking, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
TRAFFIC_DAYS = 14
RECENT = 10  # logged predictions listed on the monitoring page, to explain


@router.get("")
@access("public")
def home(request: Request) -> Response:
    return pages.see_other("/ui/models")


@router.get("/models")
@access("authenticated")
@page("ui")
def models(request: Request) -> Response:
    me = member(request, "ui")
    services = pages.services_of(request)
    registry = services.registry
    everything = registry.models()
    shown = set(policy.visible(me, [m.name for m in everything]))
    days, calls = services.plans.daily_calls(days=TRAFFIC_DAYS, models=sorted(shown))
    rows = []
    for model in everything:
        if model.name not in shown:
            continue
        aliases = registry.aliases(model.name)
        latest = shown_version = None
        if policy.may(me, "read", Target(model.name)) and model.latest_version:
            latest = registry.resolve(model.name, model.latest_version)
            # The metrics of what production serves; the latest version's when nothing is.
            production = aliases.get(PRODUCTION)
            shown_version = (
                registry.resolve(model.name, production)
                if production is not None and production != latest.number
                else latest
            )
        per_day = [calls.get(model.name, {}).get(d, (0, 0))[0] for d in days]
        rows.append(
            {
                "model": model,
                "aliases": aliases,
                "latest": latest,
                "shown": shown_version,
                "shown_as": PRODUCTION if PRODUCTION in aliases else "latest",
                "metrics": _headline(shown_version),
                "calls": sum(per_day),
                "spark": charts.spark(
                    per_day, title=f"{model.name}: {sum(per_day)} calls in {TRAFFIC_DAYS} days"
                ),
            }
        )
    return render(request, "models.html", principal=me, rows=rows, days=TRAFFIC_DAYS)


@router.get("/models/{name}")
@access("read")
@page("ui")
def model(request: Request, name: str) -> Response:
    me = member(request, "ui", "read", Target(name))
    services = pages.services_of(request)
    registered, versions = services.registry.versions(name)
    aliases = services.registry.aliases(name)
    history = sorted(
        (event for alias in aliases for event in services.registry.history(name, alias)),
        key=lambda e: e.at,
        reverse=True,
    )
    days, calls = services.plans.daily_calls(days=30, models=[name])
    traffic = [(d[5:], float(calls.get(name, {}).get(d, (0, 0))[0])) for d in days]
    return render(
        request,
        "model.html",
        principal=me,
        model=registered,
        versions=[(v, _intervals(v)) for v in reversed(versions)],
        aliases=aliases,
        history=history,
        may_promote=policy.may(me, "promote", Target(name)),
        may_rollback=policy.may(me, "rollback", Target(name)),
        can_export=policy.may(me, "export", Target(name)),
        traffic=charts.bars(traffic, title=f"Calls to {name} per day, last 30 days", unit="calls"),
    )


@router.post("/models/{name}/promote")
@access("promote")
@page("ui")
def promote(
    request: Request, name: str, alias: str = Form(""), version: str = Form(""),
    reason: str = Form(""), confirm: str = Form(""), csrf: str = Form(""),
    require_better: str = Form(""),
) -> Response:  # fmt: skip
    alias = alias.strip()
    me = member(request, "ui", "promote", Target(name, alias=alias or None), csrf=csrf)
    number = _number(version, "version")
    _confirmed(confirm, reason)
    services = pages.services_of(request)
    # As the API does: the new target is loaded (and verified) before the alias moves.
    if require_better == "yes":  # the same use case as the CLI's and the API's
        guarded = services.registry.promote_if_better(
            name, number, alias, alpha=0.05, actor=actor(me), reason=reason.strip()
        )
        notice = "promoted_better" if guarded.comparison else "promoted_unopposed"
        return pages.see_other(f"/ui/models/{name}", notice)
    services.registry.promote(name, number, alias, actor=actor(me), reason=reason.strip())
    return pages.see_other(f"/ui/models/{name}", "promoted")


@router.post("/models/{name}/rollback")
@access("rollback")
@page("ui")
def rollback(
    request: Request, name: str, alias: str = Form(""), reason: str = Form(""),
    confirm: str = Form(""), csrf: str = Form(""),
) -> Response:  # fmt: skip
    alias = alias.strip()
    me = member(request, "ui", "rollback", Target(name, alias=alias or None), csrf=csrf)
    _confirmed(confirm, reason)
    services = pages.services_of(request)
    services.registry.rollback(name, alias, actor=actor(me), reason=reason.strip())
    return pages.see_other(f"/ui/models/{name}", "rolled_back")


@router.get("/models/{name}/compare")
@access("read")
@page("ui")
def compare(request: Request, name: str, a: str = "", b: str = "") -> Response:
    me = member(request, "ui", "read", Target(name))
    services = pages.services_of(request)
    first, second = _number(a, "a"), _number(b, "b")
    result = services.registry.compare(name, first, second)
    pair, figures = [], []
    for number in (first, second):
        version = services.registry.resolve(name, number)
        pair.append({"version": version, "metrics": _intervals(version)})
        figures.append(
            reports.figures(services.registry.attachment(version, "report.html"), version)
        )
    return render(
        request, "compare.html", principal=me, name=name, result=result, pair=pair,
        plots=reports.paired(*figures),
    )  # fmt: skip


def _headline(version: ModelVersion | None) -> list[tuple[str, float]]:
    if version is None:
        return []
    return list(version.metrics.items())[:3]


def _intervals(version: ModelVersion) -> list[dict[str, Any]]:
    """Each metric with its 95% bootstrap interval and the baseline's value, if the report
    has them."""
    return metric_rows(version.metrics, (version.report or {}).get("evaluation", {}))


def _number(raw: str, what: str) -> int:
    raw = raw.strip().lstrip("v")
    if not raw.isdecimal() or len(raw) > 9 or int(raw) < 1:
        raise InvalidInput(f"{what} must be a version number such as 3; got {raw[:20]!r}")
    return int(raw)


def _confirmed(confirm: str, reason: str) -> None:
    if confirm != "yes":
        raise InvalidInput("tick the confirmation box to move the alias")
    if not reason.strip():
        raise InvalidInput("give a reason: it is kept in the alias history")


Days = Annotated[int, Field(ge=1, le=365, description="Days back")]


@router.get("/models/{name}/monitoring")
@access("read")
@page("ui")
def monitoring(request: Request, name: str, days: Days = 7) -> Response:
    """Drift per feature (PSI, as bars) for each version's window, live accuracy or RMSE per
    day (a line), and the model's state at its last check."""
    me = member(request, "ui", "read", Target(name))
    services = pages.services_of(request)
    report = services.monitor.report(name, by="version", days=days)
    daily = services.monitor.report(name, by="day", days=days)["windows"]
    check = next((c for c in services.monitor.checks() if c.model == name), None)
    windows = []
    for window in report["windows"]:
        points = sorted(((f, s["psi"]) for f, s in window["features"].items()), key=lambda p: -p[1])
        chart = (
            charts.bars(points, title=f"PSI per feature, version {window['version']}")
            if points else None
        )  # fmt: skip
        windows.append({**window, "chart": chart})
    now = services.clock()
    with services.uow() as uow:
        recent = uow.monitoring.logged(name, now - timedelta(days=days), now)[-RECENT:][::-1]
    quality = [w.get("accuracy", w.get("rmse")) for w in daily if w.get("labelled")]
    trend = (
        charts.spark([float(q) for q in quality], title="live quality per day") if quality else None
    )
    return render(
        request, "monitoring.html", principal=me, name=name, report=report, windows=windows,
        daily=daily, trend=trend, check=check, days=days, recent=recent,
        may_monitor=policy.may(me, "monitor", Target(name)),
        retention=stated(report["settings"].get("log_retention_days")), minimum=MIN_DAYS,
    )  # fmt: skip


@router.post("/models/{name}/retention")
@access("monitor")
@page("ui")
def set_retention(
    request: Request, name: str, retention: str = Form(""), csrf: str = Form("")
) -> Response:
    """Set how long the model's logs are kept (as `mlgate monitor-config --log-retention`)."""
    member(request, "ui", "monitor", Target(name), csrf=csrf)
    days = parse_retention(retention[:32])
    pages.services_of(request).monitor.configure(name, log_retention_days=days)
    short = days is not None and days < SIX_MONTHS
    notice = "retention_set_short" if short else "retention_set"
    return pages.see_other(f"/ui/models/{name}/monitoring", notice)


@router.get("/models/{name}/explain")
@access("predict")
@page("ui")
async def explain(
    request: Request, name: str, request_id: str = "", row: RowIndex = 0, version: str = ""
) -> Response:
    """Paste a row (or come from a logged prediction) and see why it is predicted as it is.
    The form starts from the chosen version's typical row (`version`: a number; none: what
    the name serves)."""
    me, asked = member_asking(request, "ui", "predict", _chosen(name, version))
    result = error = None
    values: dict[str, Any] = {}
    try:
        if request_id:
            values = logged_row(request, asked.model, request_id, row)
            result = await explain_row(request, me, asked, values)
        else:
            values = _typical(request, asked)
    except MlgateError as exc:  # shown on the form's page, which stays usable
        error = exc
    return _explain_page(
        request, me, name, asked, result=result, error=error,
        pasted=json.dumps(values, indent=1), request_id=request_id,
    )  # fmt: skip


@router.post("/models/{name}/explain")
@access("predict")
@page("ui")
async def explain_pasted(
    request: Request, name: str, row: str = Form(""), version: str = Form(""),
    csrf: str = Form(""),
) -> Response:  # fmt: skip
    me, asked = member_asking(request, "ui", "predict", _chosen(name, version), csrf=csrf)
    result = error = None
    try:
        result = await explain_row(request, me, asked, parse_row(row))
    except MlgateError as exc:  # shown above the pasted row, to be corrected in place
        error = exc
    return _explain_page(
        request, me, name, asked, result=result, error=error, pasted=row, request_id=""
    )


def _chosen(name: str, version: str) -> str:
    """The model as the page names it, or the version picked in its form."""
    if not version.strip():
        return name
    return f"{parse_ref(name)[0]}@{_number(version, 'version')}"


def _typical(request: Request, asked: Asked) -> dict[str, Any]:
    """The version's example row, from the profile of its training snapshot the portal shows
    too (training/profiles.py); placeholders for a version stored without one (an imported one)."""
    services = pages.services_of(request)
    version = services.resolve_version(asked.model, asked.number, asked.alias)
    profile = services.profiles.of(version)
    return dict(profile.example) if profile is not None else example_row(version.columns)


def _explain_page(
    request: Request, me: Principal, name: str, asked: Asked, *, result: dict[str, Any] | None,
    error: MlgateError | None, pasted: str, request_id: str,
) -> Response:  # fmt: skip
    services = pages.services_of(request)
    _, versions = services.registry.versions(asked.model)
    return render(
        request, "explain.html", principal=me, name=name, model=asked.model, result=result,
        pasted=pasted, request_id=request_id, error=None if error is None else str(error),
        chosen=asked.number, versions=[v.number for v in versions if v.archived_at is None],
        status=200 if error is None else status_of(outcome_of(error)),
        headers=None if error is None else error_headers(error),
    )  # fmt: skip
