"""The consumer portal: a consumer's own keys, plan, usage against quota, and the models it may
call with their input schema and examples to copy. Nothing of anyone else's: every page reads
only the logged-in consumer's records, and the model pages ask the policy for `describe`."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access import service as access_service
from mlgate.access.model import ApiKey, Principal
from mlgate.api.authorize import access
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import parse_ref
from mlgate.serving.asking import Asked
from mlgate.web import charts, pages
from mlgate.web.accounts import new_key, rotated_key, standing
from mlgate.web.explaining import example_row, explain_row, parse_row
from mlgate.web.pages import member, member_asking, page, render

if TYPE_CHECKING:
    from mlgate.training.profiles import ColumnProfile, Profile

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
USAGE_DAYS = 30


@router.get("")
@access("authenticated")
@page("portal")
def overview(request: Request) -> Response:
    me = member(request, "portal")
    services = pages.services_of(request)
    names = policy.visible(me, [m.name for m in services.registry.models()])
    granted = policy.granted_targets(me, names)  # as granted: `churn`, `churn@production`
    days, calls = services.plans.daily_calls(days=USAGE_DAYS, consumer=me.name)
    per_day = [(d[5:], float(sum(m.get(d, (0, 0))[0] for m in calls.values()))) for d in days]
    return render(
        request,
        "portal/overview.html",
        principal=me,
        standing=standing(services, me.name),
        keys=services.access.keys(by=me),
        now=services.clock(),
        models=[str(t) for t in granted],
        scopes=access_service.CONSUMER_SCOPES,
        usage=charts.bars(
            per_day, title=f"Your calls per day, last {USAGE_DAYS} days", unit="calls"
        ),  # fmt: skip
        spend=services.plans.spend_of(me.name),
        crossings=services.plans.crossings_of(me.name),
    )


@router.post("/spend-cap")
@access("authenticated")
@page("portal")
def set_spend_cap(request: Request, cap: str = Form(""), csrf: str = Form("")) -> Response:
    """The consumer's own monthly spend cap (empty: none)."""
    me = member(request, "portal", csrf=csrf)
    services = pages.services_of(request)
    services.plans.set_spend_cap(by=me, consumer=me.name, cap=cap.strip() or None)
    services.gate.forget_subscriptions()
    return pages.see_other("/portal", "spend_cap_set")


@router.post("/keys")
@access("authenticated")
@page("portal")
async def create_key(request: Request) -> Response:
    form = await pages.read_form(request)

    def run() -> Response:
        me = member(request, "portal", csrf=form.get("csrf"))
        return new_key(request, me, "consumer", me.name, form, back="/portal")

    return await pages.in_thread(run)


@router.post("/keys/{prefix}/revoke")
@access("authenticated")
@page("portal")
def revoke_key(request: Request, prefix: str, csrf: str = Form("")) -> Response:
    me = member(request, "portal", csrf=csrf)
    services = pages.services_of(request)
    # Someone else's prefix reads as unknown (404): no consumer learns another's keys.
    services.access.revoke_key(prefix, by=me)
    return pages.see_other("/portal", "key_revoked")


@router.post("/keys/{prefix}/rotate")
@access("authenticated")
@page("portal")
def rotate_key(
    request: Request, prefix: str, overlap_hours: str = Form("24"), csrf: str = Form("")
) -> Response:
    """A new secret for one of the consumer's own keys (someone else's reads as unknown)."""
    me = member(request, "portal", csrf=csrf)
    return rotated_key(request, me, prefix, overlap_hours, back="/portal")


@router.get("/models/{name}")
@access("describe")
@page("portal")
def model(request: Request, name: str, key: str = "") -> Response:
    """A model as the consumer names it (`churn`, `churn@production`, `churn@3`): the columns
    of the version that name serves, examples that call it, a row to try, a file to score."""
    me, asked = member_asking(request, "portal", "describe", name)
    return _model_page(request, me, name, asked, key)


@router.post("/models/{name}/explain")
@access("predict")
@page("portal")
async def explain(
    request: Request, name: str, row: str = Form(""), csrf: str = Form("")
) -> Response:
    """Try a row: its prediction and why, through the consumer's own plan (which must include
    explanations) and metered like any call."""
    me, asked = member_asking(request, "portal", "predict", name, csrf=csrf)
    result = await explain_row(request, me, asked, parse_row(row))
    return _model_page(request, me, name, asked, "", result=result, pasted=row)


def _model_page(
    request: Request,
    me: Principal,
    ref: str,
    asked: Asked,
    key: str,
    *,
    result: dict[str, Any] | None = None,
    pasted: str | None = None,
) -> Response:
    """`ref` is how the page was named: its links, forms and examples call the model so, and
    the version described is the one that name is answered by (as the API resolves it)."""
    services = pages.services_of(request)
    registered, versions = services.registry.versions(asked.model)
    version = services.resolve_version(asked.model, asked.number, asked.alias) if versions else None
    profile = services.profiles.of(version) if version is not None else None
    row = (profile.example if profile else example_row(version.columns)) if version else {}
    mine = [k for k in services.access.keys(by=me) if k.usable(services.clock())]
    chosen = next((k for k in mine if k.prefix == key), mine[0] if mine else None)
    found = services.plans.active_subscription(me.name)
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "portal/model.html",
        principal=me,
        model=registered,
        ref=ref,
        served=version,
        columns=_columns(version, profile),
        profile=profile,
        keys=mine,
        chosen=chosen,
        examples=examples(base, ref, registered.task, row, chosen),
        result=result,
        pasted=pasted if pasted is not None else json.dumps(row, indent=1),
        may_explain=bool(found and found[1].explain),
    )


def _columns(version: ModelVersion | None, profile: Profile | None) -> list[dict[str, Any]]:
    """The input table's rows: each column's type, what training saw of it, its example."""
    if version is None:
        return []
    seen = {c.name: c for c in profile.columns} if profile else {}
    out = []
    for column in version.columns:
        known = seen.get(column.name)
        out.append({
            "name": column.name,
            "type": column.type,
            "seen": _seen(known) if known else "",
            "example": json.dumps(profile.example.get(column.name)) if profile else "",
        })  # fmt: skip
    return out


def _seen(column: ColumnProfile) -> str:
    """A column's training range (numbers, date-times) or its most frequent values."""
    if not column.present:
        return "always missing in training"
    if column.type in ("number", "datetime"):
        low, high = (_show(v) for v in (column.low, column.high))
        return low if low == high else f"{low} – {high}"
    if column.type == "text":
        return f"free text ({column.distinct:,} different)"
    shown = ", ".join(json.dumps(v) for v in column.categories)
    more = column.distinct - len(column.categories)
    return f"{shown} (and {more:,} more)" if more > 0 else shown


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def examples(
    base: str, ref: str, task: str, row: dict[str, Any], key: ApiKey | None
) -> dict[str, str]:
    """mlgate.Client, curl and raw HTTP calls of the model as `ref` names it, sending `row`,
    with the key's public prefix filled in (the secret part is the consumer's to paste: the
    server never has it)."""
    token = f"{key.prefix}_<the rest of your key>" if key else "<your API key>"
    body: dict[str, Any]
    name, number, alias = parse_ref(ref)
    named = "".join(
        f", {k}={_literal(v)}" for k, v in (("alias", alias), ("version", number)) if v is not None
    )
    if task == "generation":
        path, body = "generate", {"n": 5, "seed": 1}
        call = f"rows = client.generate({_literal(name)}, 5, seed=1{named})\nprint(rows)"
    elif task == "forecast":
        path, body = "forecast", {"history": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]}
        call = f"print(client.forecast({_literal(name)}, {body['history']!r}{named}))"
    else:
        path, body = "predict", {"rows": [row]}
        call = (
            f"predictions = client.predict({_literal(name)}, row{named})\n"
            + ("print(predictions[0], predictions.probabilities)"
               if task == "classification" else "print(predictions[0])")
        )  # fmt: skip
    url = f"{base}/v1/models/{ref}/{path}"
    curl = (
        f"curl -s {shlex.quote(url)} \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + token)} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )
    split = urlsplit(base)
    payload = json.dumps(body, indent=2)
    http = (
        f"POST {split.path}/v1/models/{ref}/{path} HTTP/1.1\n"
        f"Host: {split.netloc}\n"
        f"Authorization: Bearer {token}\n"
        "Content-Type: application/json\n"
        f"Content-Length: {len(payload.encode())}\n\n"
        f"{payload}\n"
    )
    client = (
        "import os\n\nfrom mlgate import Client\n\n"
        f'API_KEY = os.environ.get("MLGATE_API_KEY", "{token}")\n'
        + (f"row = {_literal(row)}\n" if path == "predict" else "")
        + f"\nwith Client({_literal(base)}, api_key=API_KEY) as client:\n"
        + "".join(f"    {line}\n" for line in call.splitlines())
    )
    return {"client": client, "curl": curl, "http": http}


def _literal(value: Any, depth: int = 0) -> str:
    """`value` as Python source, one key per line: what a reader pastes and edits."""
    pad, inner = "    " * depth, "    " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{inner}{json.dumps(str(k))}: {_literal(v, depth + 1)}," for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value or not isinstance(value[0], dict | list):
            return "[" + ", ".join(_literal(v, depth + 1) for v in value) + "]"
        items = [f"{inner}{_literal(v, depth + 1)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


@router.post("/models/{name}/batches")
@access("predict")
@page("portal")
async def submit_batch(request: Request, name: str) -> Response:
    """A file of rows scored as a batch job through the consumer's plan (as the API does)."""
    import tempfile
    from pathlib import Path

    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    from mlgate.errors import InvalidInput, PayloadTooLarge
    from mlgate.serving import batches

    services = pages.services_of(request)
    form = await request.form(max_files=1, max_fields=4)
    folder = Path(tempfile.mkdtemp(prefix="mlgate-portal-batch-"))
    try:
        upload = form.get("file")
        csrf = form.get("csrf")
        me, asked = await run_in_threadpool(
            lambda: member_asking(request, "portal", "predict", name,
                                  csrf=csrf if isinstance(csrf, str) else "")
        )  # fmt: skip
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a .csv or .parquet file of rows")
        fmt = batches.format_of(upload.content_type, upload.filename)
        found, limit = await run_in_threadpool(
            batches.admit_batch, services.gate, services.resolve_version, me, asked,
            services.settings.max_batch_bytes,
        )  # fmt: skip
        path, size = folder / f"upload.{fmt}", 0
        with path.open("wb") as handle:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"a batch file may hold {limit:,} bytes")
                handle.write(chunk)

        def register() -> str:
            job = services.batch_jobs.submit(
                found, path, fmt, account=me.actor, key_prefix="", asked=asked.ref
            )
            return job.id

        job_id = await run_in_threadpool(register)
    finally:
        await form.close()
        for leftover in folder.iterdir():
            leftover.unlink(missing_ok=True)
        folder.rmdir()
    return pages.see_other(f"/portal/batches/{job_id}")


@router.get("/batches/{batch_id}")
@access("authenticated")
@page("portal")
def batch(request: Request, batch_id: str) -> Response:
    """A batch's progress (the page refreshes itself while it runs) and its result."""
    from mlgate.serving import batches

    me = member(request, "portal")
    services = pages.services_of(request)
    job = services.batch_jobs.of(batch_id, me.actor)
    member_asking(request, "portal", "predict", batches.asked_of(job))  # still granted
    return render(request, "portal/batch.html", principal=me, asked=batches.asked_of(job),
                  batch=services.batch_jobs.describe(job))  # fmt: skip


@router.get("/batches/{batch_id}/result")
@access("authenticated")
@page("portal")
def batch_result(request: Request, batch_id: str) -> Response:
    from starlette.responses import StreamingResponse

    from mlgate.serving import batches

    me = member(request, "portal")
    services = pages.services_of(request)
    job = services.batch_jobs.of(batch_id, me.actor)
    member_asking(request, "portal", "predict", batches.asked_of(job))  # still granted
    parts = services.batch_jobs.result_parts(job)
    if job.spec["format"] == "csv":
        stream = batches.csv_stream(parts)
        media = "text/csv"
    else:
        stream = iter([_parquet_bytes(parts)])
        media = batches.MEDIA["parquet"]
    disposition = f'attachment; filename="batch-{batch_id}.{job.spec["format"]}"'
    return StreamingResponse(stream, media_type=media,
                             headers={"Content-Disposition": disposition})  # fmt: skip


def _parquet_bytes(parts: Any) -> bytes:
    import tempfile
    from pathlib import Path

    from mlgate.serving import batches

    with tempfile.TemporaryDirectory() as folder:
        return batches.parquet_file(parts, Path(folder)).read_bytes()
