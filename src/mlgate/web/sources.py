"""Data sources in the dashboard: list, add (admins), test the connection, preview a table.

A source's URL may hold a password: it goes in through the form, is stored sealed, and every
page shows it redacted. Relative file paths are read against the server's home folder.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mlgate.api.authorize import access
from mlgate.sources.service import TableSample
from mlgate.web import pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui/sources", tags=["web"], include_in_schema=False)


@router.get("")
@access("authenticated")
@page("ui")
def sources(request: Request) -> Response:
    me = member(request, "ui")
    configs = pages.services_of(request).sources.all()
    return render(request, "sources.html", principal=me, sources=configs, tables=None, name="")


@router.post("")
@access("admin")
@page("ui")
def add(
    request: Request, name: str = Form(""), url: str = Form(""), csrf: str = Form("")
) -> Response:
    member(request, "ui", "admin", csrf=csrf)
    services = pages.services_of(request)
    config, _ = services.sources.add(name=name.strip(), url=url.strip(), cwd=services.settings.home)
    return pages.see_other(f"/ui/sources/{config.name}", "source_added")


@router.get("/{name}")
@access("authenticated")
@page("ui")
def source(request: Request, name: str, table: str = "") -> Response:
    """The source, its tables, and (with ?table=) the columns and a few rows of one."""
    me = member(request, "ui")
    services = pages.services_of(request)
    config, tables = services.sources.test(name)
    sample: TableSample | None = None
    if table:
        sample = services.sources.describe_table(name, table=table, n_rows=8)
    return render(request, "source.html", principal=me, source=config, tables=tables, sample=sample)


@router.post("/{name}/test")
@access("authenticated")
@page("ui")
def test(request: Request, name: str, csrf: str = Form("")) -> Response:
    member(request, "ui", csrf=csrf)
    services = pages.services_of(request)
    services.sources.test(name)
    return pages.see_other(f"/ui/sources/{name}", "source_ok")


@router.post("/{name}/remove")
@access("admin")
@page("ui")
def remove(request: Request, name: str, csrf: str = Form("")) -> Response:
    member(request, "ui", "admin", csrf=csrf)
    pages.services_of(request).sources.remove(name)
    return pages.see_other("/ui/sources", "source_removed")
