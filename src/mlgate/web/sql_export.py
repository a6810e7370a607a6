"""A version as checked SQL, from the dashboard: the dialect (and table, key columns, a view or
a function) chosen on a form, the export made and checked as `mlgate models export --format
sql` and the API route make it (registry.export_sql), its conformance report shown with the
query, and the same query to download as a file. Who may: the API route's rule, asked of the
same function (access.policy.authorize_sql_export)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.model import Principal, Target
from mlgate.api.authorize import access
from mlgate.errors import Conflict, InvalidInput, NotFound, SourceError
from mlgate.exports.sql.model import DIALECTS, SqlExport
from mlgate.outcomes import outcome_of, status_of
from mlgate.web import pages
from mlgate.web.pages import member, page, render
from mlgate.web.reports import version_number

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
SHOWN = 20_000  # characters of the query the page shows; the download has it whole
FORMS = ("query", "view", "function")


def _asked(
    request: Request, name: str, version: str, check_source: str | None
) -> tuple[Principal, int]:
    number = version_number(version)
    target = Target(name, version=number)
    me = member(request, "ui", "export", target)
    policy.authorize_sql_export(me, target, check_source=check_source or None)
    return me, number


def _export(
    request: Request, name: str, number: int, *, dialect: str, table: str, key: str,
    form: str, as_name: str, check_source: str,
) -> SqlExport:  # fmt: skip
    if form not in FORMS:
        raise InvalidInput(f"the form is one of {', '.join(FORMS)}, not {form[:20]!r}")
    if form != "query" and not as_name.strip():
        raise InvalidInput(f"a {form} needs a name")
    keys = tuple(k.strip() for k in key.split(",") if k.strip())
    return pages.services_of(request).registry.export_sql(
        name, number, dialect=dialect, table=table.strip() or None, key=keys,
        check_source=check_source.strip() or None,
        view=as_name.strip() if form == "view" else None,
        function=as_name.strip() if form == "function" else None,
    )  # fmt: skip


def _text(done: SqlExport) -> str:
    """The file: the report as comments, then the statement asked for (as the CLI writes)."""
    lines = [f"{done.version.ref} as {done.dialect} SQL, written by mlgate", done.note]
    f = done.function_conformance
    if f is not None:
        lines.append(f"the function: checked on {f.engine} against {f.rows_compared:,} rows")
    body = done.function_sql or done.view_sql or done.sql
    return "".join(f"-- {line}\n" for line in lines) + body + ";\n"


def _name_asked(request: Request) -> str:
    """The view's or function's name (`?name=`): read from the query string, since the path's
    own `name` is the model's (a Query alias of it broke the route's lazy build in pydantic)."""
    given = request.query_params.get("name", "")
    if len(given) > 300:
        raise InvalidInput("a view's or function's name is at most 300 characters")
    return given


@router.get("/models/{name}/versions/{version}/sql")
@access("export")
@page("ui")
def sql_export(
    request: Request,
    name: str,
    version: str,
    dialect: str = Query("", max_length=20),
    table: str = Query("", max_length=300),
    key: str = Query("", max_length=300),
    form: str = Query("query", max_length=20),
    check_source: str = Query("", max_length=128),
) -> Response:
    """The form, and once a dialect is chosen the checked export: its report and its query
    (or the refusal, with its reason and status)."""
    as_name = _name_asked(request)
    me, number = _asked(request, name, version, check_source)
    chosen = {"dialect": dialect, "table": table, "key": key, "form": form, "name": as_name,
              "check_source": check_source}  # fmt: skip
    context: dict[str, Any] = {"name": name, "number": number, "dialects": DIALECTS, "forms": FORMS,
               "chosen": chosen, "admin": me.is_admin}  # fmt: skip
    if not dialect:
        return render(request, "sql_export.html", principal=me, **context)
    try:
        done = _export(request, name, number, dialect=dialect, table=table, key=key, form=form,
                       as_name=as_name, check_source=check_source)  # fmt: skip
    except (Conflict, InvalidInput, NotFound, SourceError) as exc:
        status = status_of(outcome_of(exc))  # the API's one table
        return render(request, "sql_export.html", principal=me, status=status,
                      refused=str(exc), **context)  # fmt: skip
    text = _text(done)
    return render(
        request, "sql_export.html", principal=me, done=done, report=done.to_json(),
        shown=text[:SHOWN], cut=len(text) > SHOWN, size=len(text),
        request_query=urlencode({k: v for k, v in chosen.items() if v}), **context,
    )  # fmt: skip


@router.get("/models/{name}/versions/{version}/sql/download")
@access("export")
@page("ui")
def sql_download(
    request: Request,
    name: str,
    version: str,
    dialect: str = Query("", max_length=20),
    table: str = Query("", max_length=300),
    key: str = Query("", max_length=300),
    form: str = Query("query", max_length=20),
    check_source: str = Query("", max_length=128),
) -> Response:
    """The checked export as a .sql file (made and checked again: nothing is kept between)."""
    as_name = _name_asked(request)
    _, number = _asked(request, name, version, check_source)
    if not dialect:
        raise InvalidInput(f"choose a dialect: {', '.join(DIALECTS)}")
    done = _export(request, name, number, dialect=dialect, table=table, key=key, form=form,
                   as_name=as_name, check_source=check_source)  # fmt: skip
    filename = f"{name}-v{number}.{done.dialect}.sql"
    return Response(
        _text(done), media_type="application/sql",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **done.headers()},
    )  # fmt: skip
