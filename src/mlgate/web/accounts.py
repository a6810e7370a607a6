"""Consumers, plans, subscriptions, grants and keys in the dashboard.

Consumers and plans are the admins'; keys are everyone's own (admins see and make everyone's).
A new key's token is shown once, on the answer to the form that made it, and never again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mlgate.access import passwords
from mlgate.access import service as access_service
from mlgate.access.model import SCOPES, OwnerKind, Principal
from mlgate.api.authorize import access, actor
from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.plans import service as plans
from mlgate.plans.model import LIMIT_FIELDS, LIMITS
from mlgate.web import charts, pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
USAGE_DAYS = 30


@router.get("/consumers")
@access("admin")
@page("ui")
def consumers(request: Request) -> Response:
    me = member(request, "ui", "admin")
    services = pages.services_of(request)
    found = services.access.consumers(by=me)
    now = services.clock()
    current = {c.name: services.plans.active_subscription(c.name, now) for c in found}
    stripe = services.settings.usage_export_format == "stripe"  # an id is needed to be billed
    return render(request, "consumers.html", principal=me, consumers=found, current=current,
                  stripe=stripe)  # fmt: skip


@router.post("/consumers")
@access("admin")
@page("ui")
def create_consumer(
    request: Request, name: str = Form(""), description: str = Form(""),
    password: str = Form(""), csrf: str = Form(""),
) -> Response:  # fmt: skip
    me = member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    if password:  # checked before anything is written
        passwords.check_strength(password, name=name.strip())
    made = services.access.create_consumer(by=me, name=name.strip(), description=description)
    if password:
        services.access.set_consumer_password(made.name, password, by=me)
    return pages.see_other(f"/ui/consumers/{made.name}", "consumer_created")


@router.get("/consumers/{name}")
@access("admin")
@page("ui")
def consumer(request: Request, name: str) -> Response:
    me = member(request, "ui", "admin")
    services = pages.services_of(request)
    found = services.access.consumer(name, by=me)
    days, calls = services.plans.daily_calls(days=USAGE_DAYS, consumer=name)
    per_day = [(d[5:], float(sum(m.get(d, (0, 0))[0] for m in calls.values()))) for d in days]
    return render(
        request,
        "consumer.html",
        principal=me,
        consumer=found,
        standing=standing(services, name),
        subscriptions=list(reversed(services.plans.subscriptions_of(name))),
        plans=services.plans.plans(),
        grants=services.access.grants(by=me, subject_kind="consumer", subject=name),
        models=[m.name for m in services.registry.models()],
        keys=services.access.keys(by=me, owner_kind="consumer", owner=name),
        now=services.clock(),
        usage=charts.bars(per_day, title=f"Calls by {name} per day", unit="calls"),
        scopes=access_service.CONSUMER_SCOPES,
    )


@router.post("/consumers/{name}/subscribe")
@access("admin")
@page("ui")
def subscribe(request: Request, name: str, plan: str = Form(""), csrf: str = Form("")) -> Response:
    me = member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    services.plans.subscribe(by=me, consumer=name, plan=plan)
    return pages.see_other(f"/ui/consumers/{name}", "subscribed")


@router.post("/consumers/{name}/grants")
@access("admin")
@page("ui")
def grant(request: Request, name: str, target: str = Form(""), csrf: str = Form("")) -> Response:
    me = member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    services.access.add_grant(
        by=me,
        subject_kind="consumer",
        subject=name,
        target=target,
        role="consumer",
        actor=actor(me),
    )
    return pages.see_other(f"/ui/consumers/{name}", "granted")


@router.post("/consumers/{name}/password")
@access("admin")
@page("ui")
def consumer_password(
    request: Request, name: str, password: str = Form(""), csrf: str = Form("")
) -> Response:
    me = member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    services.access.set_consumer_password(name, password, by=me)
    return pages.see_other(f"/ui/consumers/{name}", "password_set")


@router.post("/consumers/{name}/billing-id")
@access("admin")
@page("ui")
def billing_id(
    request: Request, name: str, billing_id: str = Form(""), csrf: str = Form("")
) -> Response:
    me = member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    services.access.set_billing_id(name, billing_id.strip() or None, by=me)
    return pages.see_other(f"/ui/consumers/{name}", "billing_id_set")


@router.post("/consumers/{name}/{change}")
@access("admin")
@page("ui")
def consumer_state(request: Request, name: str, change: str, csrf: str = Form("")) -> Response:
    me = member(request, "ui", "admin", csrf=csrf)
    if change not in ("disable", "enable"):
        raise InvalidInput(f"a consumer can be disabled or enabled, not {change[:20]!r}")
    services = pages.services_of(request)
    services.access.set_consumer_disabled(name, disabled=change == "disable", by=me)
    return pages.see_other(f"/ui/consumers/{name}", f"{change}d")


@router.get("/plans")
@access("admin")
@page("ui")
def plans_page(request: Request) -> Response:
    me = member(request, "ui", "admin")
    services = pages.services_of(request)
    subscribers: dict[str, list[str]] = {}
    now = services.clock()
    for s in services.plans.subscriptions_of():
        if s.active(now):
            subscribers.setdefault(s.plan, []).append(s.consumer)
    return render(
        request, "plans.html", principal=me, plans=services.plans.plans(),
        subscribers=subscribers, fields=LIMITS, plan=None,
    )  # fmt: skip


@router.post("/plans")
@access("admin")
@page("ui")
async def create_plan(request: Request) -> Response:
    """Many optional fields: read the form whole, then run the use case in a worker thread."""
    form = await pages.read_form(request)

    def run() -> Response:
        me = member(request, "ui", "admin", csrf=form.get("csrf"))
        services = pages.services_of(request)
        plan = plans.make_plan(form.get("name").strip(), services.clock(), **_plan_settings(form))
        services.plans.create_plan(plan, by=me)
        return pages.see_other(f"/ui/plans/{plan.name}", "plan_saved")

    return await pages.in_thread(run)


@router.get("/plans/{name}")
@access("admin")
@page("ui")
def plan(request: Request, name: str) -> Response:
    me = member(request, "ui", "admin")
    found = pages.services_of(request).plans.plan(name)
    return render(
        request, "plan.html", principal=me, plan=found, fields=LIMITS,
        models=", ".join(str(t) for t in found.models),
    )  # fmt: skip


@router.post("/plans/{name}")
@access("admin")
@page("ui")
async def update_plan(request: Request, name: str) -> Response:
    form = await pages.read_form(request)

    def run() -> Response:
        me = member(request, "ui", "admin", csrf=form.get("csrf"))
        services = pages.services_of(request)
        services.plans.update_plan(name, by=me, **_plan_settings(form))
        return pages.see_other(f"/ui/plans/{name}", "plan_saved")

    return await pages.in_thread(run)


@router.get("/keys")
@access("authenticated")
@page("ui")
def keys(request: Request) -> Response:
    me = member(request, "ui")
    services = pages.services_of(request)
    found = services.access.keys(by=me)
    return render(
        request, "keys.html", principal=me, keys=found, now=services.clock(), scopes=SCOPES,
        consumer_scopes=access_service.CONSUMER_SCOPES,
    )  # fmt: skip


@router.post("/keys")
@access("authenticated")
@page("ui")
async def create_key(request: Request) -> Response:
    form = await pages.read_form(request)

    def run() -> Response:
        me = member(request, "ui", csrf=form.get("csrf"))
        owner_kind: OwnerKind = "consumer" if form.get("owner_kind") == "consumer" else "user"
        owner = form.get("owner").strip() or me.name
        if owner_kind == "consumer" and not form.get("owner").strip():
            raise InvalidInput("name the consumer whose key this is")
        back = f"/ui/consumers/{owner}" if owner_kind == "consumer" else "/ui/keys"
        return new_key(request, me, owner_kind, owner, form, back=back)

    return await pages.in_thread(run)


@router.post("/keys/{prefix}/revoke")
@access("authenticated")
@page("ui")
def revoke_key(
    request: Request, prefix: str, back: str = Form(""), csrf: str = Form("")
) -> Response:
    me = member(request, "ui", csrf=csrf)
    services = pages.services_of(request)
    services.access.revoke_key(prefix, by=me)
    return pages.see_other(pages.local_path(back, "/ui/keys"), "key_revoked")


@router.post("/keys/{prefix}/rotate")
@access("authenticated")
@page("ui")
def rotate_key(
    request: Request,
    prefix: str,
    back: str = Form(""),
    overlap_hours: str = Form("24"),
    csrf: str = Form(""),
) -> Response:
    me = member(request, "ui", csrf=csrf)
    return rotated_key(request, me, prefix, overlap_hours, back=pages.local_path(back, "/ui/keys"))


OVERLAP_HOURS = ("0", "1", "24", "168", "720")  # the choices the key tables offer


def rotated_key(
    request: Request, me: Principal, prefix: str, overlap_hours: str, *, back: str
) -> Response:
    """Give the key a new secret and show it, this once; the old one works for the overlap."""
    services = pages.services_of(request)
    if overlap_hours not in OVERLAP_HOURS:
        raise InvalidInput(f"choose an overlap of {', '.join(OVERLAP_HOURS)} hours")
    overlap = timedelta(hours=int(overlap_hours))
    key, token = services.access.rotate_key(prefix, by=me, overlap=overlap)
    request.state.audit_detail = access_service.rotation_detail(key, overlap)  # its audit event
    return render(request, "key_created.html", principal=me, key=key, token=token, back=back,
                  rotated=True, now=services.clock())  # fmt: skip


def new_key(
    request: Request, me: Principal, owner_kind: OwnerKind, owner: str, form: pages.Form,
    *, back: str,
) -> Response:  # fmt: skip
    """Make the key the form asks for and show its token: this once, never again."""
    services = pages.services_of(request)
    key, token = services.access.create_key(
        by=me,
        owner_kind=owner_kind,
        owner=owner,
        name=form.get("name"),
        scopes=form.all("scopes") or ("predict",),
        expires_at=_expiry(form.get("expires_days"), services),
        targets=[t.strip() for t in form.get("targets").split(",") if t.strip()],
    )
    return render(request, "key_created.html", principal=me, key=key, token=token, back=back,
                  rotated=False, now=services.clock(), status=201)  # fmt: skip


def standing(services: Services, consumer: str) -> dict[str, Any] | None:
    """The consumer's plan now and how much of each limit the current windows have used."""
    found = services.plans.active_subscription(consumer)
    if found is None:
        return None
    subscription, plan = found
    limits = []
    for state in services.gate.standing(consumer, plan):
        limits.append(
            {
                "name": state.limit.name,
                "used": state.used,
                "limit": state.limit.limit,
                "hard": state.limit.hard,
                "reset_in": _duration(state.reset_in),
                "share": min(1.0, state.used / state.limit.limit),
            }
        )
    return {"subscription": subscription, "plan": plan, "limits": limits}


def _plan_settings(form: pages.Form) -> dict[str, Any]:
    """The plan form's fields as make_plan takes them: empty means no limit."""
    settings: dict[str, Any] = {}
    for field in LIMIT_FIELDS:
        raw = form.get(field).strip().replace(",", "").replace("_", "")
        if not raw:
            settings[field] = None
        elif raw.isdecimal():
            settings[field] = int(raw)
        else:
            raise InvalidInput(f"{field.replace('_', ' ')}: a whole number, or empty for none")
    for field in plans.PRICES:
        settings[field] = form.get(field).strip() or None
    settings["explain"] = form.get("explain") == "yes"
    settings["overage"] = form.get("overage") == "yes"
    settings["models"] = [m.strip() for m in form.get("models").split(",") if m.strip()]
    settings["description"] = form.get("description")
    return settings


def _expiry(raw: str, services: Services) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdecimal() or not 1 <= int(raw) <= 3650:
        raise InvalidInput("expires in: a number of days from 1 to 3650, or empty for never")
    return services.clock() + timedelta(days=int(raw))


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"
