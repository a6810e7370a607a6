"""The dashboard's own stylesheet and script (written here; no front-end build step)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from mlgate.api.authorize import access
from mlgate.errors import NotFound

router = APIRouter(tags=["web"], include_in_schema=False)
_TYPES = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


@router.get("/ui/static/{name}")
@access("public")
def static(request: Request, name: str) -> Response:
    if name not in _TYPES:
        raise NotFound(f"no static file {name[:40]!r}")
    body = resources.files("mlgate.web").joinpath("static", name).read_bytes()
    return Response(body, media_type=_TYPES[name], headers={"cache-control": "max-age=3600"})
