"""Aliases, promotion, rollback and archiving over HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.model import Target
from mlgate.api.authorize import AuthorizedRoute, access, actor, authorize, authorize_training
from mlgate.api.body import read_body
from mlgate.api.routes.models import PROBLEMS, bearer
from mlgate.api.schemas import MAX_NUMBER, VersionNumber
from mlgate.archives import ArchiveLimits
from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput, PayloadTooLarge, UnsupportedFormat
from mlgate.registry.model import AliasEvent

MAX_BUNDLE_BYTES = 1 << 30
router = APIRouter(
    prefix="/v1/models/{name}",
    tags=["lifecycle"],
    dependencies=[Security(bearer)],
    route_class=AuthorizedRoute,
)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(
        ge=1, le=MAX_NUMBER, description="The version the alias will point at"
    )
    reason: str = Field("", max_length=1000)
    require_better: bool = Field(
        False,
        description="Refuse (409) unless it significantly beats the alias's target (an unset "
        "alias: what the bare model name serves today)",
    )
    alpha: float = Field(0.05, gt=0, lt=0.5)


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=4000)
    tags: dict[str, str] = Field(default_factory=dict, description='{"key": "value"}; "" removes')


class CardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intended_use: str | None = Field(None, max_length=4000)
    owner: str | None = Field(None, max_length=255)
    slices: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        None, max_length=20, description="Columns to slice the holdout by (computed now)"
    )


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: StrictInt = Field(ge=1, le=MAX_NUMBER, description="The baseline version")
    b: StrictInt = Field(ge=1, le=MAX_NUMBER, description="The candidate version")
    alpha: float = Field(0.05, gt=0, lt=0.5)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000)


class AliasEventOut(BaseModel):
    model_name: str
    alias: str
    kind: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    at: str
    compared_with: int | None = Field(
        None, description="With require_better: the version it had to beat (null: none)"
    )
    compared_because: str | None = Field(
        None, description="With require_better: why that version, or that there was none"
    )
    comparison: dict[str, Any] | None = Field(
        None, description="With require_better: the comparison that allowed the move"
    )


@router.get("/aliases", responses=PROBLEMS)
@access("read")
async def list_aliases(request: Request, name: str) -> dict[str, int]:
    """Each alias of the model and the version it points at."""
    services = _services(request)

    def run() -> dict[str, int]:
        authorize(services, request, Target(name))
        return services.registry.aliases(name)

    return await run_in_threadpool(run)


@router.post("/aliases/{alias}", response_model=AliasEventOut, responses=PROBLEMS)
@access("promote")
async def promote(request: Request, name: str, alias: str, body: PromoteRequest) -> Response:
    """Point `alias` at a version; running servers answer with it from the next request on."""
    services = _services(request)

    def run() -> dict[str, Any]:
        key = authorize(services, request, Target(name, alias=alias))
        # The new target is loaded (and verified) before the alias moves (Registry.load).
        if body.require_better:
            return services.registry.promote_if_better(
                name, body.version, alias, actor=actor(key), reason=body.reason, alpha=body.alpha
            ).to_json()
        return services.registry.promote(
            name, body.version, alias, actor=actor(key), reason=body.reason
        ).to_json()

    return _json(await run_in_threadpool(run))


@router.post("/aliases/{alias}/rollback", response_model=AliasEventOut, responses=PROBLEMS)
@access("rollback")
async def rollback(request: Request, name: str, alias: str, body: RollbackRequest) -> Response:
    """Move `alias` back to the version it pointed at before; again to go further back."""
    services = _services(request)

    def run() -> AliasEvent:
        key = authorize(services, request, Target(name, alias=alias))
        return services.registry.rollback(name, alias, actor=actor(key), reason=body.reason)

    return _json((await run_in_threadpool(run)).to_json())


@router.get("/aliases/{alias}/history", response_model=list[AliasEventOut], responses=PROBLEMS)
@access("read")
async def history(request: Request, name: str, alias: str) -> Response:
    """Every move of the alias: who, when, why, from and to."""
    services = _services(request)

    def run() -> list[dict[str, Any]]:
        authorize(services, request, Target(name))
        return [e.to_json() for e in services.registry.history(name, alias)]

    return _json(await run_in_threadpool(run))


@router.post("/compare", responses=PROBLEMS)
@access("read", audit=False)
async def compare(request: Request, name: str, body: CompareRequest) -> Response:
    """Both versions on the candidate's holdout rows: metric side by side, a paired bootstrap
    interval of the difference, a paired test and a verdict. Stored with the model."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name))
        return services.registry.compare(name, body.a, body.b, alpha=body.alpha).to_json()

    return _json(await run_in_threadpool(run))


@router.patch("", responses=PROBLEMS)
@access("annotate")
async def annotate_model(request: Request, name: str, body: AnnotateRequest) -> Response:
    """Set the model's description and add or remove tags."""
    return await _annotate(request, name, None, body)


@router.patch("/versions/{version}", responses=PROBLEMS)
@access("annotate")
async def annotate_version(
    request: Request, name: str, version: VersionNumber, body: AnnotateRequest
) -> Response:
    """Set a version's description and add or remove tags."""
    return await _annotate(request, name, version, body)


async def _annotate(
    request: Request, name: str, version: int | None, body: AnnotateRequest
) -> Response:
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        services.registry.annotate(name, version, description=body.description, tags=body.tags)
        return {"model": name, "version": version, "annotated": True}

    return _json(await run_in_threadpool(run))


@router.delete("/versions/{version}", responses=PROBLEMS)
@access("delete")
async def delete_version(request: Request, name: str, version: VersionNumber) -> Response:
    """Delete a version and its files; refused (409) while an alias points at it."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        services.registry.delete_version(name, version)
        return {"model": name, "version": version, "deleted": True}

    return _json(await run_in_threadpool(run))


@router.get("/versions/{version}/signature", responses=PROBLEMS)
@access("admin")
async def signature(request: Request, name: str, version: VersionNumber) -> Response:
    """Who signed the version (the key's fingerprint), when, over which files, and whether the
    signature and every file verify now (admins only)."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request)
        return services.signing.verify(name, version).to_json()

    return _json(await run_in_threadpool(run))


BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/versions/{version}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The bundle (a zip), with format=onnx the ONNX graph, or with "
            "format=sql the checked query and its conformance report (JSON)",
            "content": {
                "application/zip": BINARY,
                "application/octet-stream": BINARY,
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **PROBLEMS,
    },
)
@access("export")
async def export(
    request: Request,
    name: str,
    version: VersionNumber,
    snapshot: bool = True,
    format: Literal["bundle", "onnx", "sql"] = "bundle",
    dialect: Literal["sqlite", "duckdb", "postgresql", "mysql"] = "postgresql",
    table: str | None = Query(None, max_length=300, description="format=sql: the table read"),
    key: Annotated[
        list[str] | None, Query(max_length=20, description="format=sql: columns answered first")
    ] = None,
    check_source: str | None = Query(
        None, max_length=128, description="format=sql: the source whose server checks the SQL"
    ),
    view: str | None = Query(
        None, max_length=300, description="format=sql: also a CREATE VIEW of this name"
    ),
    function: str | None = Query(
        None,
        max_length=300,
        description="format=sql: also the query as a function of this name (PostgreSQL: a SQL "
        "function of a row; MySQL: a stored function answering the prediction; DuckDB: a table "
        "macro; SQLite: 409, it has none), made and checked on the engine",
    ),
) -> Response:
    """The version as a portable zip bundle (model, report, training rows; sha256 of each), or
    with `format=onnx` as one ONNX graph of its preprocessing and model, or with `format=sql`
    as one SELECT in `dialect` (its preprocessing inside), checked against the version on its
    holdout rows first: on the engine itself for SQL (409, with the size of the miss, where no
    conversion exists or the check fails)."""
    services = _services(request)
    if format == "sql":

        def sql() -> Any:
            target = Target(name, version=version)
            principal = authorize(services, request, target)
            # the dashboard's SQL page asks the same (web/sql_export.py)
            policy.authorize_sql_export(principal, target, check_source=check_source)
            return services.registry.export_sql(
                name, version, dialect=dialect, table=table, key=tuple(key or ()),
                check_source=check_source, view=view, function=function,
            )  # fmt: skip

        done = await run_in_threadpool(sql)
        return Response(orjson.dumps(done.to_json()), media_type="application/json",
                        headers=done.headers())  # fmt: skip
    if format == "onnx":

        def onnx() -> Any:
            authorize(services, request, Target(name, version=version))
            return services.registry.export_onnx(name, version)

        done = await run_in_threadpool(onnx)
        headers = {
            "Content-Disposition": f'attachment; filename="{name}-v{version}.onnx"',
            **done.headers(),
        }
        return Response(done.data, media_type="application/octet-stream", headers=headers)

    def run() -> bytes:
        authorize(services, request, Target(name, version=version))
        return services.registry.export_bundle(name, version, with_snapshot=snapshot)

    data = await run_in_threadpool(run)
    disposition = f'attachment; filename="{name}-v{version}.mlgate.zip"'
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": disposition}
    )


@router.post("/import", status_code=201, responses=PROBLEMS)
@access("train")
async def import_(request: Request, name: str) -> Response:
    """Register a bundle (the zip as the body) as the next version of `name`; refused, with
    nothing written, if any file does not match its sha256."""
    services = _services(request)
    data = await read_body(request, MAX_BUNDLE_BYTES)

    def run() -> dict[str, Any]:
        authorize_training(services, request, name)
        version = services.registry.import_bundle(data, model_name=name)
        return {"model": version.model_name, "version": version.number}

    body = await run_in_threadpool(run)
    return Response(orjson.dumps(body), 201, media_type="application/json")


@router.post(
    "/import-file",
    status_code=201,
    responses=PROBLEMS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description":
                             "ONNX, XGBoost (.ubj/.json), LightGBM (.txt), CatBoost (.cbm), "
                             "skops, or a zip of an MLflow model directory"},
                    "input_example": {"type": "string", "format": "binary"},
                    "holdout": {"type": "string", "format": "binary"},
                    "task": {"type": "string", "enum": ["classification", "regression"]},
                    "classes": {"type": "string", "description": "comma-separated"},
                    "target": {"type": "string"},
                    "trust": {"type": "array", "items": {"type": "string"},
                              "description": "types a skops file may hold (admins only)"},
                },
            }}},
        }
    },
)  # fmt: skip
@access("train")
async def import_file(request: Request, name: str) -> Response:
    """Register a model trained elsewhere (multipart upload) as the next version of `name`.
    Nothing is unpickled; a refused file leaves nothing behind (422 with a `code`)."""
    from mlgate.imports.files import MAX_FILE_BYTES, identify
    from mlgate.imports.service import ImportRequest, read_frame

    services = _services(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and int(declared) > 3 * MAX_FILE_BYTES:
        raise PayloadTooLarge(f"the upload may hold at most {3 * MAX_FILE_BYTES:,} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedFormat("send the model as multipart/form-data, its file in `file`")
    form = await request.form(max_files=3, max_fields=32)
    try:
        files = {k: v for k, v in form.multi_items() if isinstance(v, StarletteUpload)}
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        trust = [v for k, v in form.multi_items() if k == "trust" and isinstance(v, str)]
        if "file" not in files:
            raise InvalidInput("the upload has no `file` part: the model file")
        uploads: dict[str, tuple[str, bytes]] = {}
        for key, upload in files.items():
            data = await upload.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise PayloadTooLarge(f"{key} holds more than {MAX_FILE_BYTES:,} bytes")
            uploads[key] = (upload.filename or key, data)
    finally:
        await form.close()

    def run() -> dict[str, Any]:
        principal = authorize_training(services, request, name)
        if trust:  # a type on the trust list runs its code when loaded: admins decide that
            authorize(services, request, action="admin")
        example = uploads.get("input_example")
        holdout = uploads.get("holdout")
        classes = fields.get("classes")
        version = services.registry.import_model(
            ImportRequest(
                model_name=name,
                model=identify(*uploads["file"], ArchiveLimits.of(services.settings)),
                input_example=None if example is None else read_frame(*example),
                holdout=None if holdout is None else read_frame(*holdout),
                holdout_name="" if holdout is None else holdout[0],
                task=fields.get("task") or None,
                classes=None if not classes else [c.strip() for c in classes.split(",")],
                target=fields.get("target") or None,
                trust=tuple(trust),
                actor=actor(principal),
                address=request.client.host if request.client else "",
            )
        )
        return {
            "model": version.model_name,
            "version": version.number,
            "task": version.task,
            "columns": [c.to_json() for c in version.columns],
            "classes": None if version.classes is None else list(version.classes),
            "metrics": version.metrics,
            "import": (version.report or {}).get("import"),
        }

    body = await run_in_threadpool(run)
    return Response(orjson.dumps(body), 201, media_type="application/json")


@router.post("/versions/{version}/archive", responses=PROBLEMS)
@access("archive")
async def archive(request: Request, name: str, version: VersionNumber) -> Response:
    """Take a version out of service; refused while an alias points at it."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        archived = services.registry.archive(name, version)
        return {"model": name, "version": archived.number, "archived": True}

    return _json(await run_in_threadpool(run))


@router.get(
    "/versions/{version}/report",
    response_class=Response,
    responses={
        200: {
            "description": "The report page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **PROBLEMS,
    },
)
@access("read")
async def report(request: Request, name: str, version: VersionNumber) -> Response:
    """The version's HTML report: metrics with intervals, plots, coefficients."""
    services = _services(request)

    def run() -> bytes:
        authorize(services, request, Target(name, version=version))
        return services.registry.report_page(name, version)

    return Response(await run_in_threadpool(run), media_type="text/html; charset=utf-8")


@router.get("/versions/{version}/report.json", responses=PROBLEMS)
@access("read")
async def report_data(request: Request, name: str, version: VersionNumber) -> Response:
    """The version's report as data: the evaluation (metrics, intervals, baseline, how they
    were computed), notes and warnings, importances and, for linear and logistic models, the
    coefficient table in the data's units with its diagnostics (`inference`)."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        found = services.registry.resolve(name, version)
        details = dict(found.report or {})
        details.pop("attachments", None)  # files: GET …/report (HTML), …/export (all)
        return {"model": found.model_name, "version": found.number, **details}

    return _json(await run_in_threadpool(run))


@router.get("/versions/{version}/card", responses=PROBLEMS)
@access("read")
async def card(request: Request, name: str, version: VersionNumber) -> Response:
    """The version's model card: intended use and owner, data snapshot, features, metrics with
    intervals and per slice, explanations, limitations, monitoring, aliases, signature."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        return services.cards.card(name, version).to_json()

    return _json(await run_in_threadpool(run))


@router.put("/versions/{version}/card", responses=PROBLEMS)
@access("annotate")
async def edit_card(
    request: Request, name: str, version: VersionNumber, body: CardRequest
) -> Response:
    """Set the card's intended use and owner, and compute its slices (audited)."""
    services = _services(request)

    def run() -> dict[str, Any]:
        who = actor(authorize(services, request, Target(name, version=version)))
        given = (("intended_use", body.intended_use), ("owner", body.owner))
        fields = {k: v for k, v in given if v is not None}
        services.cards.annotate(name, version, fields, body.slices or (), actor=who)
        return services.cards.card(name, version).to_json()

    return _json(await run_in_threadpool(run))


BOM_TYPE = "application/vnd.cyclonedx+json; version=1.6"


@router.get(
    "/versions/{version}/bom",
    response_class=Response,
    responses={**PROBLEMS, 200: {"content": {BOM_TYPE: {"schema": {"type": "object"}}}}},
)
@access("read")
async def bom(request: Request, name: str, version: VersionNumber) -> Response:
    """The version's ML bill of materials: a CycloneDX 1.6 JSON document, checked against
    CycloneDX's schema."""
    services = _services(request)

    def run() -> dict[str, Any]:
        authorize(services, request, Target(name, version=version))
        return services.cards.bom(name, version)

    body = await run_in_threadpool(run)
    return Response(orjson.dumps(body), media_type=BOM_TYPE)


@router.get(
    "/versions/{version}/dossier",
    response_class=Response,
    responses={**PROBLEMS, 200: {"content": {"application/zip": {}}}},
)
@access("read")
async def dossier(request: Request, name: str, version: VersionNumber) -> Response:
    """The version's documentation dossier (a zip): card, ML-BOM, signature and its
    verification, report, lineage, alias history, audit trail, monitoring, log retention, laid
    out along the EU AI Act's Annex IV, with a manifest of sha256s."""
    services = _services(request)

    def run() -> bytes:
        authorize(services, request, Target(name, version=version))
        return services.cards.dossier(name, version)

    body = await run_in_threadpool(run)
    return Response(body, media_type="application/zip", headers=_attachment(name, version))


def _attachment(name: str, version: int) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}-v{version}-dossier.zip"'}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")
