"""A version's model card in the dashboard (the same card as `mlgate models card` and
GET /v1/models/{name}/versions/{n}/card), linked from the model's versions and the report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mlgate.access.model import Target
from mlgate.api.authorize import access
from mlgate.web import pages
from mlgate.web.pages import member, page, render
from mlgate.web.reports import version_number

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)


@router.get("/models/{name}/versions/{version}/card")
@access("read")
@page("ui")
def card(request: Request, name: str, version: str) -> Response:
    """The version's model card."""
    number = version_number(version)
    me = member(request, "ui", "read", Target(name, version=number))
    found = pages.services_of(request).cards.card(name, number)
    return render(request, "card.html", principal=me, name=name, number=number, c=found.to_json())


@router.get("/models/{name}/versions/{version}/dossier")
@access("read")
@page("ui")
def dossier(request: Request, name: str, version: str) -> Response:
    """The version's documentation dossier, as GET /v1/models/{name}/versions/{n}/dossier."""
    number = version_number(version)
    member(request, "ui", "read", Target(name, version=number))
    body = pages.services_of(request).cards.dossier(name, number)
    disposition = f'attachment; filename="{name}-v{number}-dossier.zip"'
    return Response(body, media_type="application/zip",
                    headers={"Content-Disposition": disposition})  # fmt: skip
