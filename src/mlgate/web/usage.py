"""Usage (charts per day, consumer and model; quota per subscription; CSV) and the audit log."""

from __future__ import annotations

import calendar
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from mlgate.access.model import AuditQuery
from mlgate.api.authorize import access
from mlgate.errors import InvalidInput
from mlgate.plans import service as plans
from mlgate.web import charts, pages
from mlgate.web.accounts import standing
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
RESULTS = ("ok", "denied", "failed")


@router.get("/usage")
@access("admin")
@page("ui")
def usage(request: Request, month: str = "", consumer: str = "", model: str = "") -> Response:
    me = member(request, "ui", "admin")
    services = pages.services_of(request)
    month = month or services.clock().strftime("%Y-%m")
    rows = services.plans.usage(by=me, month=month, consumer=consumer or None, model=model or None)
    start, _ = plans.month_bounds(month)
    days = [
        f"{month}-{d:02d}" for d in range(1, calendar.monthrange(start.year, start.month)[1] + 1)
    ]
    requests = dict.fromkeys(days, 0.0)
    scored = dict.fromkeys(days, 0.0)
    per_consumer: dict[str, list[int]] = {}
    per_model: dict[str, list[int]] = {}
    refused = 0
    for r in rows:
        if r.status >= 400:
            refused += r.requests
            continue
        requests[r.period] = requests.get(r.period, 0.0) + r.requests
        scored[r.period] = scored.get(r.period, 0.0) + r.rows
        for into, key in ((per_consumer, r.account), (per_model, f"{r.model}@{r.version}")):
            totals = into.setdefault(key, [0, 0])
            totals[0] += r.requests
            totals[1] += r.rows
    consumers = sorted(
        {s.consumer for s in services.plans.subscriptions_of() if s.active(services.clock())}
    )
    quotas = {c: standing(services, c) for c in consumers if not consumer or c == consumer}
    return render(
        request,
        "usage.html",
        principal=me,
        month=month,
        consumer=consumer,
        model=model,
        consumers=consumers,
        per_day=charts.bars(
            [(d[8:], v) for d, v in requests.items()], title=f"Calls per day, {month}",
            unit="calls",
        ),
        rows_per_day=charts.bars(
            [(d[8:], v) for d, v in scored.items()], title=f"Rows scored per day, {month}",
            unit="rows",
        ),
        per_consumer=sorted(per_consumer.items(), key=lambda kv: -kv[1][0]),
        per_model=sorted(per_model.items(), key=lambda kv: -kv[1][0]),
        by_consumer=charts.bars(
            [(k.partition(":")[2] or k, float(v[0])) for k, v in per_consumer.items()],
            title=f"Calls per account, {month}", unit="calls", height=160,
        ),
        refused=refused,
        quotas=quotas,
    )  # fmt: skip


@router.get("/usage.csv")
@access("admin")
@page("ui")
def usage_csv(request: Request, month: str = "", consumer: str = "", bill: str = "") -> Response:
    """The month's usage ledger by day (or, with bill=yes and a consumer, its bill)."""
    me = member(request, "ui", "admin")
    services = pages.services_of(request)
    month = month or services.clock().strftime("%Y-%m")
    if bill == "yes":
        if not consumer:
            raise InvalidInput("a bill is one consumer's: choose the consumer")
        text = services.plans.bill_csv(by=me, consumer=consumer, month=month)
        filename = f"mlgate-bill-{consumer}-{month}.csv"
    else:
        text = services.plans.usage_csv(by=me, month=month, consumer=consumer or None)
        filename = f"mlgate-usage-{consumer or 'all'}-{month}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/audit")
@access("admin")
@page("ui")
def audit_log(
    request: Request, actor: str = "", action: str = "", target: str = "", result: str = "",
    since: str = "", limit: str = "200",
) -> Response:  # fmt: skip
    me = member(request, "ui", "admin")
    if result and result not in RESULTS:
        raise InvalidInput(f"result is one of {', '.join(RESULTS)}")
    if not limit.isdecimal() or not 1 <= int(limit) <= 5000:
        raise InvalidInput("limit: a number of events from 1 to 5000")
    started = None
    if since:
        try:
            started = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput("since: a date such as 2026-11-01, or a date and time") from None
        if started.tzinfo is None:
            started = started.replace(tzinfo=pages.services_of(request).clock().tzinfo)
    query = AuditQuery(
        actor=actor.strip() or None, action=action.strip() or None,
        target=target.strip() or None, result=result or None, since=started, limit=int(limit),
    )  # fmt: skip
    events = pages.services_of(request).access.audit_log(query)
    return render(
        request, "audit.html", principal=me, events=events, actor=actor, action=action,
        target=target, result=result, since=since, limit=limit, results=RESULTS,
    )  # fmt: skip
