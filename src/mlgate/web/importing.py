"""Bringing a model trained elsewhere in from the dashboard: a form with the file, an optional
input example and holdout; the same use case and checks as POST /v1/models/{name}/import-file."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from mlgate.api.authorize import access, actor, authorize_training
from mlgate.archives import ArchiveLimits
from mlgate.errors import InvalidInput
from mlgate.imports.files import MAX_FILE_BYTES, identify
from mlgate.imports.service import ImportRequest, read_frame
from mlgate.registry.model import check_name
from mlgate.web import pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)


@router.get("/import")
@access("authenticated")
@page("ui")
def form(request: Request, model: str = "") -> Response:
    me = member(request, "ui")
    return render(request, "import.html", principal=me, model=model)


@router.post("/import")
@access("authenticated")
@page("ui")
async def upload(request: Request) -> Response:
    """A new name needs a team member (who becomes its owner); an existing model `train` on it.
    Trusting more types than the trust list is left to the CLI and the API (admins)."""
    form = await request.form(max_files=3, max_fields=16)
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files: dict[str, tuple[str, bytes]] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile) and value.filename:
                data = await value.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    raise InvalidInput(f"{key} holds more than {MAX_FILE_BYTES:,} bytes")
                files[key] = (value.filename, data)
    finally:
        await form.close()

    def run() -> Response:
        member(request, "ui", csrf=fields.get("csrf", ""))
        name = check_name("model", fields.get("model", "").strip())
        services = pages.services_of(request)
        caller = authorize_training(services, request, name)
        if "file" not in files:
            raise InvalidInput("choose the model file to import")
        example, holdout = files.get("input_example"), files.get("holdout")
        classes = fields.get("classes", "").strip()
        version = services.registry.import_model(
            ImportRequest(
                model_name=name,
                model=identify(*files["file"], ArchiveLimits.of(services.settings)),
                input_example=None if example is None else read_frame(*example),
                holdout=None if holdout is None else read_frame(*holdout),
                holdout_name="" if holdout is None else holdout[0],
                task=fields.get("task") or None,
                classes=[c.strip() for c in classes.split(",")] if classes else None,
                target=fields.get("target", "").strip() or None,
                actor=actor(caller),
                address=request.client.host if request.client else "",
            )
        )
        return pages.see_other(f"/ui/models/{version.model_name}", "imported")

    return await run_in_threadpool(run)
