"""The dashboard's rollout pages: a model's rollouts with a form to start one, and one
rollout's evidence: the traffic split, the guard rails, the sequential test's estimate inside
its always-valid interval as the labels came in (SVG), and the decision with its reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mlgate.access.model import Target
from mlgate.api.authorize import access, actor
from mlgate.api.schemas import MAX_NUMBER, Id
from mlgate.errors import InvalidInput
from mlgate.web import charts, pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
POINTS = 40  # looks drawn on a rollout's chart


@router.get("/models/{name}/rollouts")
@access("read")
@page("ui")
def rollout_list(request: Request, name: str) -> Response:
    me = member(request, "ui", "read", Target(name))
    services = pages.services_of(request)
    found = services.rollouts.of_model(name)
    return render(
        request, "rollouts.html", principal=me, name=name, rollouts=found[::-1],
        aliases=services.registry.aliases(name),
    )  # fmt: skip


@router.post("/models/{name}/rollouts")
@access("promote")
@page("ui")
def start(
    request: Request, name: str, candidate: str = Form(""), mode: str = Form("canary"),
    share: str = Form("0.05"), alias: str = Form("production"), auto: str = Form(""),
    alpha: str = Form("0.05"), csrf: str = Form(""),
) -> Response:  # fmt: skip
    alias = alias.strip() or "production"
    me = member(request, "ui", "promote", Target(name, alias=alias), csrf=csrf)
    services = pages.services_of(request)
    rollout = services.rollouts.start(
        name, _whole(candidate, "candidate"),
        mode=mode if mode in ("shadow", "canary") else "canary",
        share=_share(share, "share"), alpha=_share(alpha, "alpha"), auto=auto == "yes",
        alias=alias, actor=actor(me),
    )  # fmt: skip
    return pages.see_other(f"/ui/models/{name}/rollouts/{rollout.id}", "rollout_started")


@router.get("/models/{name}/rollouts/{rollout_id}")
@access("read")
@page("ui")
def show(request: Request, name: str, rollout_id: Id) -> Response:
    me = member(request, "ui", "read", Target(name))
    services = pages.services_of(request)
    rollout = services.rollouts.get(name, rollout_id)
    seen = services.rollouts.look(rollout, points=POINTS)
    chart = None
    # looks before both sides had a labelled row have no estimate to draw
    path = [p for p in seen.get("trajectory") or [] if p["estimate"] is not None]
    if path:
        chart = charts.interval_band(
            [(p["labelled"], p["estimate"], p["low"], p["high"]) for p in path],
            title=f"{seen['metric']}: incumbent minus candidate, with its always-valid interval",
            x_label="labelled rows",
        )
    return render(
        request, "rollout.html", principal=me, name=name, rollout=rollout, look=seen,
        chart=chart, looks=path, now=services.clock(), guards=_guards(rollout, seen),
    )  # fmt: skip


@router.post("/models/{name}/rollouts/{rollout_id}/stop")
@access("promote")
@page("ui")
def stop(
    request: Request, name: str, rollout_id: Id, reason: str = Form(""), csrf: str = Form("")
) -> Response:
    me = member(request, "ui", "promote", Target(name), csrf=csrf)
    services = pages.services_of(request)
    services.rollouts.stop(name, rollout_id, actor=actor(me), reason=reason.strip())
    return pages.see_other(f"/ui/models/{name}/rollouts/{rollout_id}", "rollout_stopped")


def _guards(rollout: Any, seen: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(guard rail, its limit, where the candidate stands)."""
    candidate, incumbent = seen["sides"]["candidate"], seen["sides"]["incumbent"]
    rate = candidate["error_rate"]
    out = [
        ("failed calls", f"at most {rollout.max_error_rate:.1%}",
         "no calls yet" if rate is None else f"{rate:.2%} of {candidate['calls']:,}"),
        ("p99 latency", f"at most {rollout.max_latency_ratio:g}× the incumbent's",
         "not measured yet" if candidate["p99_ms"] is None or incumbent["p99_ms"] is None
         else f"{candidate['p99_ms']:.1f} ms against {incumbent['p99_ms']:.1f} ms"),
    ]  # fmt: skip
    shadow = seen.get("shadow")
    if shadow is not None:
        agreement = shadow["agreement"]
        out.append(("agreement", f"at least {rollout.min_agreement:.0%}",
                    "not compared yet" if agreement is None
                    else f"{agreement:.2%} of {shadow['compared_rows']:,} rows"))  # fmt: skip
    return out


def _whole(text: str, field: str) -> int:
    digits = text.strip().lstrip("v")
    if not digits.isdecimal() or not 1 <= int(digits) <= MAX_NUMBER:
        raise InvalidInput(f"{field} must be a version number, like 3")
    return int(digits)


def _share(text: str, field: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidInput(f"{field} must be a number, like 0.05") from None
