"""The authorization matrix: every route × every kind of caller × {own model, another owner's},
each cell the exact status, through the whole app in process (`create_app` under Starlette's
TestClient: every middleware, the error table and the real SQLite store; no socket).

The matrix is data. `test_every_route_has_a_row` fails when a route is added without one, so
no route can ship without its access being decided and tested here.

Callers: anonymous; consumers A (granted alpha) and B (granted beta); consumer AL granted the
alias alpha@production only, and V the version alpha@1 only (production and staging both point
at version 1, so a grant that opened more than it names would show); users with viewer,
maintainer and owner grants on alpha; an admin. alpha is "own" for A, AL, V and the users, beta
belongs to another owner. The routes and pages that act on a model also have rows that name it
as `alpha@production`, `alpha@1` or `alpha@staging` (NAMED), on alpha only. Every user and consumer key carries every scope its kind may hold, so what
the matrix sees is roles and grants, not scopes (scopes have tests of their own).

Requests are chosen so that an allowed call has one deterministic answer without changing what
later cells see: deleting version 99 (allowed: 404), promoting staging to where it already is
(409), creating a grant for a user who does not exist (404), starting a rollout or a schedule on
an alias that points nowhere (409), and so on.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient
from typer.testing import CliRunner

import mlgate.api.routes as routes_package
from mlgate.access import accounts
from mlgate.api.app import create_app
from mlgate.cli.main import app as cli
from mlgate.sources import demo
from mlgate.web.routes import routers as web_routers
from tests.conftest import make_services
from tests.e2e.helpers import TOKEN

pytestmark = pytest.mark.in_process  # the whole app, in this process: part of the fast tier

CALLERS = ("anon", "cons_a", "cons_b", "cons_al", "cons_v", "viewer", "maint", "owner", "admin")
PASSWORD = "matrix password 2026"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
OWN, OTHER = "alpha", "beta"


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # {m}: the model; {job}: a job of that model
    expect: dict[str, tuple[int, int] | int]  # caller -> (on alpha, on beta), or one status
    body: Any = None
    raw: bytes | None = None
    version: int = 1  # 99 where an allowed call must find nothing (delete, archive)
    alias: str = "staging"
    name: str = "ghost"  # user, consumer or plan names in the path
    params: dict[str, str] | None = None
    shape: str = "problem"  # how errors look: problem+json, or a protocol's own
    ref: str = ""  # "@production", "@1": how the path names the model (NAMED rows, alpha only)

    @property
    def per_model(self) -> bool:
        return "{m}" in self.path or "{job}" in self.path

    @property
    def models(self) -> tuple[str, ...]:
        return (OWN,) if self.ref or not self.per_model else (OWN, OTHER)


def cells(*statuses: tuple[int, int] | int) -> dict[str, tuple[int, int] | int]:
    assert len(statuses) == len(CALLERS)
    return dict(zip(CALLERS, statuses, strict=True))


D = 403  # denied: no grant, wrong role, or missing scope
U = 401  # unauthenticated
ROW = demo.churn_frame().drop(columns=[demo.ID_COLUMN, demo.TARGET]).iloc[0].to_dict()
PREDICT = {"rows": [{k: (None if v != v else v) for k, v in ROW.items()}]}
TRAIN = {"source": "no-such-source", "target": "churned", "table": "customers"}
INFER = {
    "inputs": [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [v],
        }
        for k, v in PREDICT["rows"][0].items()
    ]
}
MLFLOW = {"dataframe_records": PREDICT["rows"]}

#                             anon  cons_a      cons_b      cons_al     cons_v      viewer      maint       owner       admin
MATRIX: list[Row] = [
    Row("GET", "/healthz", cells(200, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("GET", "/readyz", cells(200, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("GET", "/metrics", cells(U, D, D, D, D, D, D, D, 200)),
    Row("GET", "/v1/models", cells(U, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("GET", "/v1/models/{m}", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/openapi.json", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/schema", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/predict", cells(U, (200, D), (D, 200), (200, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), PREDICT),
    Row("POST", "/v1/models/{m}/versions/{version}/predict", cells(U, (200, D), (D, 200), (D, D), (200, D), (D, D), (200, D), (200, D), (200, 200)), PREDICT),
    # The matrix's models are classifiers: an allowed caller hears that they do not generate.
    Row("POST", "/v1/models/{m}/generate", cells(U, (409, D), (D, 409), (409, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {"n": 2}),
    Row("POST", "/v1/models/{m}/forecast", cells(U, (409, D), (D, 409), (409, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {"history": [1.0, 2.0]}),
    Row("POST", "/v1/models/{m}/train", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (202, D), (202, D), (202, 202)), TRAIN),
    Row("GET", "/v1/jobs/{job}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/jobs/{job}/cancel", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (202, D), (202, D), (202, 202))),
    Row("GET", "/v1/models/{m}/aliases", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/aliases/{alias}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {"version": 1}),
    Row("POST", "/v1/models/{m}/aliases/{alias}/rollback", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {}),
    Row("GET", "/v1/models/{m}/aliases/{alias}/history", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/rollouts", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/rollouts", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {"candidate": 1, "alias": "canary"}),
    Row("POST", "/v1/models/{m}/rollouts/replay", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, 404)), {"candidate": 99}),
    Row("GET", "/v1/models/{m}/rollouts/{rollout}", cells(U, (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, D), (404, 404))),
    Row("POST", "/v1/models/{m}/rollouts/{rollout}/decide", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, 404))),
    Row("POST", "/v1/models/{m}/rollouts/{rollout}/stop", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, 404)), {}),
    Row("GET", "/v1/models/{m}/schedules", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/schedules", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (409, D), (409, D), (409, 409)), {"cron": "0 3 * * 1", "alias": "canary"}),
    Row("DELETE", "/v1/models/{m}/schedules/{schedule}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, 404))),
    Row("POST", "/v1/models/{m}/compare", cells(U, (D, D), (D, D), (D, D), (D, D), (422, D), (422, D), (422, D), (422, 422)), {"a": 1, "b": 1}),
    Row("PATCH", "/v1/models/{m}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"description": "matrix"}),
    Row("PATCH", "/v1/models/{m}/versions/{version}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"tags": {"seen": "yes"}}),
    Row("DELETE", "/v1/models/{m}/versions/{version}", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, 404)), version=99),
    Row("GET", "/v1/models/{m}/versions/{version}/export", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/versions/{version}/signature", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (D, D), (D, D), (200, 200))),
    Row("GET", "/v1/models/{m}/versions/{version}/report", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/versions/{version}/report.json", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/versions/{version}/card", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("PUT", "/v1/models/{m}/versions/{version}/card", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"owner": "matrix"}),
    Row("GET", "/v1/models/{m}/versions/{version}/bom", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/versions/{version}/dossier", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/versions/{version}/archive", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (404, D), (404, D), (404, 404)), version=99),
    Row("GET", "/v1/models/{m}/monitoring", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("GET", "/v1/models/{m}/monitoring/settings", cells(U, (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, D), (200, 200))),
    Row("PUT", "/v1/models/{m}/monitoring/settings", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"min_rows": 200}),
    Row("POST", "/v1/models/{m}/monitoring/check", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200))),
    Row("POST", "/v1/models/{m}/feedback", cells(U, (200, D), (D, 200), (200, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"feedback": [{"request_id": "matrix-none", "label": 1}]}),
    Row("POST", "/v1/models/{m}/import", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (422, D), (422, D), (422, 422)), raw=b"not a zip"),
    Row("POST", "/v1/models/{m}/batches", cells(U, (415, D), (D, 415), (415, D), (D, D), (D, D), (415, D), (415, D), (415, 415)), raw=b"not a table"),
    Row("GET", "/v1/batches/{batch}", cells(U, 404, 404, 404, 404, 404, 404, 404, 404)),
    Row("GET", "/v1/batches/{batch}/result", cells(U, 404, 404, 404, 404, 404, 404, 404, 404)),
    Row("DELETE", "/v1/batches/{batch}", cells(U, 404, 404, 404, 404, 404, 404, 404, 404)),
    Row("POST", "/v1/models/{m}/import-file", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (415, D), (415, D), (415, 415)), raw=b"not multipart"),
    Row("POST", "/v1/auth/login", cells(401, 401, 401, 401, 401, 401, 401, 401, 401), {"name": "admin", "password": "wrong-password-1"}),
    Row("POST", "/v1/auth/logout", cells(U, 422, 422, 422, 422, 422, 422, 422, 422)),
    # public; the matrix's server has no identity provider, so the device flow is not found
    Row("POST", "/v1/auth/sso/device", cells(404, 404, 404, 404, 404, 404, 404, 404, 404), {}),
    Row("POST", "/v1/auth/sso/device/token", cells(404, 404, 404, 404, 404, 404, 404, 404, 404), {"device_code": "x"}),
    Row("POST", "/v1/auth/password", cells(U, D, D, D, D, D, D, D, D), {"current": "x", "new": "y" * 12}),
    Row("GET", "/v1/auth/me", cells(U, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("GET", "/v1/users", cells(U, D, D, D, D, D, D, D, 200)),
    Row("POST", "/v1/users", cells(U, D, D, D, D, D, D, D, 422), {"name": "newbie", "password": "short"}),
    Row("POST", "/v1/users/{name}/disable", cells(U, D, D, D, D, D, D, D, 404)),
    Row("POST", "/v1/users/{name}/enable", cells(U, D, D, D, D, D, D, D, 404)),
    Row("PUT", "/v1/users/{name}/password", cells(U, D, D, D, D, D, D, D, 404), {"password": "a long enough one"}),
    Row("GET", "/v1/consumers", cells(U, D, D, D, D, D, D, D, 200)),
    Row("POST", "/v1/consumers", cells(U, D, D, D, D, D, D, D, 422), {"name": "bad name!"}),
    Row("GET", "/v1/consumers/{name}", cells(U, 200, D, D, D, D, D, D, 200), name="acme"),
    Row("POST", "/v1/consumers/{name}/disable", cells(U, D, D, D, D, D, D, D, 404)),
    Row("PUT", "/v1/consumers/{name}/password", cells(U, D, D, D, D, D, D, D, 404), {"password": "a long enough one"}),
    Row("PUT", "/v1/consumers/{name}/billing-id", cells(U, D, D, D, D, D, D, D, 404), {"billing_id": "cus_X"}),
    Row("POST", "/v1/consumers/{name}/enable", cells(U, D, D, D, D, D, D, D, 404)),
    Row("GET", "/v1/keys", cells(U, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("POST", "/v1/keys", cells(U, D, D, D, D, D, D, D, 201), {"name": "for-root", "owner_kind": "user", "owner": "root", "scopes": ["read"]}),
    Row("POST", "/v1/keys/check", cells(U, D, D, D, D, D, D, D, 200), {"text": "no keys here"}),
    Row("POST", "/v1/keys/{prefix}/rotate", cells(U, 404, 404, 404, 404, 404, 404, 200, 200), {"overlap_seconds": 60}),  # before the victim is revoked below
    Row("DELETE", "/v1/keys/{prefix}", cells(U, 404, 404, 404, 404, 404, 404, 200, 200)),
    Row("GET", "/v1/grants", cells(U, 200, 200, 200, 200, 200, 200, 200, 200)),
    Row("POST", "/v1/grants", cells(U, D, D, D, D, D, D, 404, 404), {"subject_kind": "user", "subject": "ghost", "target": "alpha", "role": "viewer"}),
    Row("DELETE", "/v1/grants/{grant_id}", cells(U, D, D, D, D, 404, 404, 404, 404)),  # a consumer's key never holds the admin scope grants need: refused before any lookup
    Row("GET", "/v1/audit", cells(U, D, D, D, D, D, D, D, 200)),
    Row("GET", "/v1/plans", cells(U, D, D, D, D, D, D, D, 200)),
    Row("POST", "/v1/plans", cells(U, D, D, D, D, D, D, D, 422), {"name": "bad name!"}),
    Row("GET", "/v1/plans/{name}", cells(U, 200, 200, 200, 200, D, D, D, 200), name="open"),
    Row("PATCH", "/v1/plans/{name}", cells(U, D, D, D, D, D, D, D, 404), {"per_minute": 5}),
    Row("DELETE", "/v1/plans/{name}", cells(U, D, D, D, D, D, D, D, 404)),
    Row("POST", "/v1/consumers/{name}/subscriptions", cells(U, D, D, D, D, D, D, D, 404), {"plan": "open"}),
    Row("GET", "/v1/consumers/{name}/subscriptions", cells(U, 200, D, D, D, D, D, D, 200), name="acme"),
    Row("GET", "/v1/consumers/{name}/spend", cells(U, 200, D, D, D, D, D, D, 200), name="acme"),
    Row("PUT", "/v1/consumers/{name}/webhook", cells(U, 200, D, D, D, D, D, D, 200), {"url": "https://93.184.215.14/acme"}, name="acme"),
    Row("PUT", "/v1/consumers/{name}/spend-cap", cells(U, 200, D, D, D, D, D, D, 200), {"cap": "1000000.00"}, name="acme"),
    Row("GET", "/v1/usage", cells(U, 200, 200, 200, 200, D, D, D, 200), params={"month": "2026-11"}),
    Row("GET", "/v1/usage/export", cells(U, 200, D, D, D, D, D, D, 200), params={"month": "2026-11", "consumer": "acme"}),
    Row("POST", "/v1/models/{m}/invocations", cells(U, (200, D), (D, 200), (200, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), MLFLOW, shape="mlflow"),
    Row("GET", "/v2", cells(200, 200, 200, 200, 200, 200, 200, 200, 200), shape="oip"),
    Row("GET", "/v2/health/live", cells(200, 200, 200, 200, 200, 200, 200, 200, 200), shape="oip"),
    Row("GET", "/v2/health/ready", cells(200, 200, 200, 200, 200, 200, 200, 200, 200), shape="oip"),
    Row("GET", "/v2/models/{m}", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200)), shape="oip"),
    Row("GET", "/v2/models/{m}/versions/{version}", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200)), shape="oip"),
    Row("GET", "/v2/models/{m}/ready", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200)), shape="oip"),
    Row("GET", "/v2/models/{m}/versions/{version}/ready", cells(U, (200, D), (D, 200), (200, D), (200, D), (200, D), (200, D), (200, D), (200, 200)), shape="oip"),
    Row("POST", "/v2/models/{m}/infer", cells(U, (200, D), (D, 200), (200, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), INFER, shape="oip"),
    Row("POST", "/v2/models/{m}/versions/{version}/infer", cells(U, (200, D), (D, 200), (D, D), (200, D), (D, D), (200, D), (200, D), (200, 200)), INFER, shape="oip"),
    Row("POST", "/v1/models/{m}/versions/{version}/retire", cells(U, (D, D), (D, D), (D, D), (D, D), (D, D), (200, D), (200, D), (200, 200)), {"at": None}),
    # SCIM (api/routes/scim.py) takes the provider's MLGATE_SCIM_TOKEN only: no mlgate key reaches it
    Row("GET", "/scim/v2/ServiceProviderConfig", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("GET", "/scim/v2/ResourceTypes", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("GET", "/scim/v2/ResourceTypes/{name}", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("GET", "/scim/v2/Schemas", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("GET", "/scim/v2/Schemas/{name}", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("GET", "/scim/v2/{resource}", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("POST", "/scim/v2/{resource}", cells(U, U, U, U, U, U, U, U, U), {}, shape="scim"),
    Row("POST", "/scim/v2/{resource}/.search", cells(U, U, U, U, U, U, U, U, U), {}, shape="scim"),
    Row("POST", "/scim/v2/.search", cells(U, U, U, U, U, U, U, U, U), {}, shape="scim"),
    Row("GET", "/scim/v2/{resource}/{record_id}", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
    Row("PUT", "/scim/v2/{resource}/{record_id}", cells(U, U, U, U, U, U, U, U, U), {}, shape="scim"),
    Row("PATCH", "/scim/v2/{resource}/{record_id}", cells(U, U, U, U, U, U, U, U, U), {}, shape="scim"),
    Row("DELETE", "/scim/v2/{resource}/{record_id}", cells(U, U, U, U, U, U, U, U, U), None, shape="scim"),
]  # fmt: skip


class Authorized:
    """Around the app: for each answered request, whether its handler reached authorize()
    (`request.state.authorized`) and the rule its route declared."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last: tuple[str | None, bool] = (None, False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            endpoint = getattr(scope.get("route"), "endpoint", None)
            rule = getattr(endpoint, "__mlgate_access__", None)
            self.last = (rule, bool(scope.get("state", {}).get("authorized")))


@dataclass
class World:
    client: TestClient
    seen: Authorized
    headers: dict[str, dict[str, str]]
    jobs: dict[str, str]
    victim_key: str
    cookies: dict[str, dict[str, str]]  # the dashboard's and the portal's login sessions
    csrf: dict[str, str]


runner = CliRunner()


def _cli(services: Any, *args: str) -> str:
    result = runner.invoke(cli, list(args), obj=services)
    assert result.exit_code == 0, f"mlgate {' '.join(args)}:\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("matrix") / "home"
    services = make_services(home, MLGATE_SCIM_TOKEN="matrix-scim-token-" + "s" * 32)
    database = home.parent / "churn.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=400))
    _cli(services, "sources", "add", "demo", f"sqlite:///{database}")
    for model in (OWN, OTHER):
        _cli(
            services, "train", model, "--source", "demo", "--table", demo.TABLE,
            "--target", demo.TARGET, "--drop", demo.ID_COLUMN, "--algorithm", "decision_tree",
        )  # fmt: skip
    for user in ("vera", "max", "olga", "otto"):
        _cli(services, "users", "create", user, "--no-password")
    _cli(services, "users", "create", "root", "--no-password", "--admin")
    _cli(services, "plans", "create", "open")  # no limits: the matrix is about access
    for consumer in ("acme", "globex", "initech", "umbrella"):
        _cli(services, "consumers", "create", consumer)
        _cli(services, "consumers", "subscribe", consumer, "open")
    for args in [
        ("--consumer", "acme", OWN, "consumer"),
        ("--consumer", "globex", OTHER, "consumer"),
        ("--consumer", "initech", f"{OWN}@production", "consumer"),
        ("--consumer", "umbrella", f"{OWN}@1", "consumer"),
        ("--user", "vera", OWN, "viewer"),
        ("--user", "max", OWN, "maintainer"),
        ("--user", "olga", OWN, "owner"),
        ("--user", "otto", OTHER, "owner"),
    ]:
        _cli(services, "grants", "add", args[2], args[3], args[0], args[1])
    owners = {
        "cons_a": ("--consumer", "acme"),
        "cons_b": ("--consumer", "globex"),
        "cons_al": ("--consumer", "initech"),
        "cons_v": ("--consumer", "umbrella"),
        "viewer": ("--user", "vera"),
        "maint": ("--user", "max"),
        "owner": ("--user", "olga"),
        "admin": ("--user", "root"),
    }
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for caller, owner in owners.items():
        scopes = ("predict", "generate", "read")
        if owner[0] == "--user":
            scopes += ("train", "admin")
        args = [a for s in scopes for a in ("--scope", s)]
        out = _cli(services, "keys", "create", *owner, "--name", caller, *args)
        match = TOKEN.search(out)
        assert match
        headers[caller] = {"Authorization": f"Bearer {match.group(0)}"}
    victim = TOKEN.search(_cli(services, "keys", "create", "--user", "olga", "--name", "victim"))
    assert victim
    for flag, name in owners.values():  # passwords, for the pages' login sessions
        set_password = accounts.set_password if flag == "--user" else accounts.set_consumer_password
        set_password(services.uow(), name, PASSWORD, by=None, now=services.clock())
    seen = Authorized(create_app(services))
    with TestClient(seen, follow_redirects=False) as client:
        jobs = {}
        for model in (OWN, OTHER):  # staging at v1 already: promoting it there again is a 409
            for alias in ("staging", "production"):
                moved = client.post(
                    f"/v1/models/{model}/aliases/{alias}",
                    json={"version": 1},
                    headers=headers["admin"],
                )
                assert moved.status_code == 200, moved.text
            made = client.post(f"/v1/models/{model}/train", json=TRAIN, headers=headers["admin"])
            assert made.status_code == 202, made.text
            jobs[model] = made.json()["id"]
        for job in jobs.values():  # until they failed (no such source): later cells see that
            assert services.jobs.wait(job, timeout=60).state == "failed"
        cookies, csrf = {"anon": {}}, {"anon": ""}
        for caller, (flag, name) in owners.items():
            kind = "user" if flag == "--user" else "consumer"
            login = client.post(
                "/v1/auth/login", json={"name": name, "password": PASSWORD, "kind": kind}
            )
            assert login.status_code == 200, login.text
            cookies[caller] = {"mlgate_session": login.json()["token"]}
            home_page = client.get(
                ("/ui/keys" if kind == "user" else "/portal"), headers=_cookie(cookies[caller])
            )
            found = CSRF.search(home_page.text)
            assert found, home_page.text[:300]
            csrf[caller] = found.group(1)
        yield World(client, seen, headers, jobs, victim.group(0)[:16], cookies, csrf)
    services.close()


def _cookie(cookies: dict[str, str]) -> dict[str, str]:
    """The session cookie as a header: the test client keeps no jar between callers."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


def _url(world: World, row: Row, model: str) -> str:
    return row.path.replace("{change}", "disable").format(
        m=model + row.ref,
        job=world.jobs.get(model, ""),
        version=row.version,
        alias=row.alias,
        name=row.name,
        prefix=world.victim_key,
        grant_id=999_999,
        rollout=999_999,
        schedule=999_999,
        batch="no-such-batch",
        resource="Users",
        record_id="no-such-id",
    )


def _expected(row: Any, caller: str, model: str) -> int:
    cell = row.expect[caller]
    if isinstance(cell, tuple):
        return cell[0] if model == OWN else cell[1]
    return cell


# The routes that act on a model, with the model named as an alias or a version: AL holds only
# alpha@production, V only alpha@1 (both aliases point at version 1), so each opens the name it
# holds and nothing else; every grant lets its holder describe the model. The other callers'
# grants are on the whole model: they see what the bare name gets them.
REFS = ("@production", "@1", "@staging")
HOLDS = {"cons_al": "@production", "cons_v": "@1"}
CALLING = ("describe", "predict", "generate")  # the rules of routes that use a model


def api_routes() -> list[Any]:
    """Every route of every router module under mlgate.api.routes."""
    found = []
    for module in pkgutil.iter_modules(routes_package.__path__):
        loaded = importlib.import_module(f"mlgate.api.routes.{module.name}")
        routers = [v for k, v in vars(loaded).items() if k.endswith("router")]
        assert routers, f"mlgate.api.routes.{module.name} has no router"
        for router in routers:
            found += [r for r in router.routes if isinstance(r, APIRoute)]
    return found


def _rules() -> dict[tuple[str, str], str]:
    """(method, path as the matrix writes it) -> the rule its route or page declares."""
    routes = api_routes() + [r for w in web_routers for r in w.routes if isinstance(r, APIRoute)]
    return {
        (method, _as_written(r.path)): r.endpoint.__mlgate_access__
        for r in routes
        for method in r.methods
    }


def _as_written(path: str) -> str:
    for route, row in (("{name}", "{m}"), ("{job_id}", "{job}"), ("{rollout_id}", "{rollout}"),
                       ("{schedule_id}", "{schedule}"), ("{batch_id}", "{batch}")):  # fmt: skip
        path = path.replace(route, row)
    return path


RULES = _rules()
# Every route that uses a model named in its path (a version in the path names it already):
# derived from the routes' own rules, so that a new one cannot skip these rows.
CALLED = [
    (r.method, r.path)
    for r in MATRIX
    if "{m}" in r.path and "{version}" not in r.path and RULES[r.method, r.path] in CALLING
]
assert len(CALLED) == 11, CALLED  # predict, generate, forecast, feedback, batches, invocations,
# OIP infer, schema, openapi.json, OIP metadata and ready
DESCRIBED = {"/v1/models/{m}/schema", "/v1/models/{m}/openapi.json", "/v2/models/{m}",
             "/v2/models/{m}/ready", "/portal/models/{m}"}  # fmt: skip


def _as_named(row: Any, ref: str) -> Any:
    """`row` (a Row or a Page) on alpha named `alpha{ref}`."""
    allowed = _expected(row, "cons_a", OWN)  # a whole-model grant of the same role
    expect = {caller: _expected(row, caller, OWN) for caller in CALLERS}
    for caller, holds in HOLDS.items():
        opens = row.path in DESCRIBED or holds == ref
        expect[caller] = allowed if opens else D  # (a consumer on a team page: 403 either way)
    return replace(row, expect=expect, ref=ref)


NAMED = [
    _as_named(next(r for r in MATRIX if (r.method, r.path) == called), ref)
    for called in CALLED
    for ref in REFS
]
MATRIX += NAMED


def _id(row: Any, caller: str, model: str) -> str:
    path = row.path.replace("{m}", "{m}" + row.ref)
    return f"{row.method} {path} {caller}" + (f" {model}" if row.per_model else "")


CASES = [
    pytest.param(row, caller, model, id=_id(row, caller, model))
    for row in MATRIX
    for caller in CALLERS
    for model in row.models
]  # fmt: skip


@pytest.mark.parametrize(("row", "caller", "model"), CASES)
def test_cell(world: World, row: Row, caller: str, model: str) -> None:
    extra = {"content": row.raw} if row.raw is not None else {"json": row.body}
    if row.body is None and row.raw is None:
        extra = {}
    response = world.client.request(
        row.method,
        _url(world, row, model),
        headers=world.headers[caller],
        params=row.params or ({"snapshot": "false"} if row.path.endswith("/export") else None),
        **extra,
    )
    expected = _expected(row, caller, model)
    assert response.status_code == expected, response.text[:300]
    rule, authorized = world.seen.last
    if response.status_code < 400 and rule != "public":
        assert authorized, f"{row.method} {row.path} answered without reaching authorize()"
    if expected in (401, 403):
        if row.shape == "mlflow":
            assert response.json()["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        elif row.shape == "oip":
            assert set(response.json()) == {"error"}
        elif row.shape == "scim":
            assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        else:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"]


# Authorization comes before the body: a caller without standing on a route (no grant on the
# model, not an admin, no key) hears 401 or 403 whatever it sent, an empty object or no JSON at
# all, never what is wrong with the body (422). Routes whose answer the body decides (logging
# in, one's own password and keys, grants naming their model) are left out.
BODY_DECIDES = ("/v1/auth/login", "/v1/auth/password", "/v1/keys", "/v1/grants")
REFUSED = [
    pytest.param(row, caller, model, body, id=f"{_id(row, caller, model)} {name}")
    for row in MATRIX
    if row.method in ("POST", "PUT", "PATCH")
    and row.body is not None
    and row.path not in BODY_DECIDES
    for caller in CALLERS
    for model in row.models
    if _expected(row, caller, model) in (401, 403)
    for name, body in (("empty", b"{}"), ("not-json", b"{not json"))
]


@pytest.mark.parametrize(("row", "caller", "model", "body"), REFUSED)
def test_a_refused_caller_never_hears_about_its_body(
    world: World, row: Row, caller: str, model: str, body: bytes
) -> None:
    response = world.client.request(
        row.method,
        _url(world, row, model),
        headers={**world.headers[caller], "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == _expected(row, caller, model), response.text[:300]


def test_every_route_has_a_row() -> None:
    routes = {(method, route.path) for route in api_routes() for method in route.methods}
    in_matrix = {
        (
            row.method,
            row.path.replace("{m}", "{name}")
            .replace("{job}", "{job_id}")
            .replace("{rollout}", "{rollout_id}")
            .replace("{schedule}", "{schedule_id}")
            .replace("{batch}", "{batch_id}"),
        )
        for row in MATRIX
    }
    assert routes - in_matrix == set(), "routes without a row in the authorization matrix"
    assert in_matrix - routes == set(), "rows for routes that do not exist"


def test_every_route_declares_its_access_rule() -> None:
    undeclared = [r.path for r in api_routes() if not hasattr(r.endpoint, "__mlgate_access__")]
    assert undeclared == []


# The dashboard (/ui) and the portal (/portal): every page × every caller, logged in with a
# session cookie. A browser without a session is sent to log in (303) on a GET and refused (401)
# on a form; a consumer on a team page, or a team member on a portal page, gets 403. Forms carry
# the caller's CSRF token (`csrf=False`: a wrong one). Allowed forms are chosen, as above, to
# have one answer that changes nothing later cells see.
S = 303  # redirect: to the login form (anonymous GET), or after a form that worked
W = 403  # a page of the other area, or no grant
FORM_MODEL = {"model": "{m}", "source": "no-such-source", "table": "customers", "target": "churned"}
PROMOTE = {"alias": "staging", "version": "1", "reason": "matrix", "confirm": "yes"}


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    expect: dict[str, tuple[int, int] | int]
    form: dict[str, str] | None = None
    name: str = "ghost"
    params: dict[str, str] | None = None
    csrf: bool = True
    ref: str = ""  # as in Row

    @property
    def per_model(self) -> bool:
        return "{m}" in self.path or "{job}" in self.path or "{m}" in str(self.form)

    @property
    def models(self) -> tuple[str, ...]:
        return (OWN,) if self.ref or not self.per_model else (OWN, OTHER)


#                                   anon  cons_a      cons_b      cons_al     cons_v      viewer      maint       owner       admin
PAGES: list[Page] = [
    Page("GET", "/", cells(S, S, S, S, S, S, S, S, S)),
    Page("GET", "/ui", cells(S, S, S, S, S, S, S, S, S)),
    Page("GET", "/ui/static/{name}", cells(200, 200, 200, 200, 200, 200, 200, 200, 200), name="app.css"),
    Page("GET", "/ui/login", cells(200, 200, 200, 200, 200, 200, 200, 200, 200)),
    Page("POST", "/ui/login", cells(W, W, W, W, W, W, W, W, W), {"name": "root", "password": PASSWORD}, csrf=False),
    Page("POST", "/ui/logout", cells(S, W, W, W, W, W, W, W, W), {}, csrf=False),
    # single sign-on (web/sso.py) is not set up in the matrix's mlgate: there is none to start
    Page("GET", "/ui/sso/login", cells(404, 404, 404, 404, 404, 404, 404, 404, 404)),
    Page("GET", "/ui/sso/callback", cells(404, 404, 404, 404, 404, 404, 404, 404, 404)),
    Page("GET", "/portal/login", cells(200, 200, 200, 200, 200, 200, 200, 200, 200)),
    Page("POST", "/portal/login", cells(W, W, W, W, W, W, W, W, W), {"name": "acme", "password": PASSWORD}, csrf=False),
    Page("POST", "/portal/logout", cells(S, W, W, W, W, W, W, W, W), {}, csrf=False),
    Page("GET", "/ui/models", cells(S, W, W, W, W, 200, 200, 200, 200)),
    Page("GET", "/ui/models/{m}", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("POST", "/ui/models/{m}/promote", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (409, W), (409, W), (409, 409)), PROMOTE),
    Page("POST", "/ui/models/{m}/rollback", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (409, W), (409, W), (409, 409)), {**PROMOTE, "version": ""}),
    Page("GET", "/ui/models/{m}/compare", cells(S, (W, W), (W, W), (W, W), (W, W), (422, W), (422, W), (422, W), (422, 422)), params={"a": "1", "b": "1"}),
    Page("GET", "/ui/models/{m}/monitoring", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("POST", "/ui/models/{m}/retention", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (S, W), (S, W), (S, S)), {"retention": "forever"}),
    Page("GET", "/ui/models/{m}/rollouts", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("POST", "/ui/models/{m}/rollouts", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (409, W), (409, W), (409, 409)), {"candidate": "1", "alias": "canary"}),
    Page("GET", "/ui/models/{m}/rollouts/{rollout}", cells(S, (W, W), (W, W), (W, W), (W, W), (404, W), (404, W), (404, W), (404, 404))),
    Page("POST", "/ui/models/{m}/rollouts/{rollout}/stop", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (404, W), (404, W), (404, 404)), {"reason": ""}),
    Page("GET", "/ui/models/{m}/explain", cells(S, (W, W), (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, 200))),
    Page("POST", "/ui/models/{m}/explain", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (422, W), (422, W), (422, 422)), {"row": "not json"}),
    Page("GET", "/ui/models/{m}/versions/{version}/report", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/models/{m}/versions/{version}/report.html", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/models/{m}/versions/{version}/card", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/models/{m}/versions/{version}/dossier", cells(S, (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/models/{m}/versions/{version}/sql", cells(S, (W, W), (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/models/{m}/versions/{version}/sql/download", cells(S, (W, W), (W, W), (W, W), (W, W), (W, W), (422, W), (422, W), (422, 422))),
    Page("GET", "/ui/sources", cells(S, W, W, W, W, 200, 200, 200, 200)),
    Page("POST", "/ui/sources", cells(U, W, W, W, W, W, W, W, 422), {"name": "bad name!", "url": "sqlite:///x.db"}),
    Page("GET", "/ui/sources/{name}", cells(S, W, W, W, W, 200, 200, 200, 200), name="demo"),
    Page("POST", "/ui/sources/{name}/test", cells(U, W, W, W, W, 404, 404, 404, 404), {}),
    Page("POST", "/ui/sources/{name}/remove", cells(U, W, W, W, W, W, W, W, 404), {}),
    Page("GET", "/ui/import", cells(S, W, W, W, W, 200, 200, 200, 200)),
    Page("POST", "/ui/import", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (422, W), (422, W), (422, 422)), {"model": "{m}"}),
    Page("GET", "/ui/train", cells(S, W, W, W, W, 200, 200, 200, 200)),
    Page("POST", "/ui/train", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (S, W), (S, W), (S, S)), FORM_MODEL),
    Page("GET", "/ui/jobs/{job}", cells(S, (W, W), (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, 200))),
    Page("GET", "/ui/jobs/{job}/state", cells(S, (W, W), (W, W), (W, W), (W, W), (W, W), (200, W), (200, W), (200, 200))),
    Page("POST", "/ui/jobs/{job}/cancel", cells(U, (W, W), (W, W), (W, W), (W, W), (W, W), (S, W), (S, W), (S, S)), {}),
    Page("GET", "/ui/consumers", cells(S, W, W, W, W, W, W, W, 200)),
    Page("POST", "/ui/consumers", cells(U, W, W, W, W, W, W, W, 422), {"name": "bad name!"}),
    Page("GET", "/ui/consumers/{name}", cells(S, W, W, W, W, W, W, W, 200), name="acme"),
    Page("POST", "/ui/consumers/{name}/subscribe", cells(U, W, W, W, W, W, W, W, 404), {"plan": "open"}),
    Page("POST", "/ui/consumers/{name}/grants", cells(U, W, W, W, W, W, W, W, 404), {"target": "alpha"}),
    Page("POST", "/ui/consumers/{name}/password", cells(U, W, W, W, W, W, W, W, 404), {"password": "a long enough one"}),
    Page("POST", "/ui/consumers/{name}/billing-id", cells(U, W, W, W, W, W, W, W, 404), {"billing_id": "cus_X"}),
    Page("POST", "/ui/consumers/{name}/{change}", cells(U, W, W, W, W, W, W, W, 404), {}),
    Page("GET", "/ui/plans", cells(S, W, W, W, W, W, W, W, 200)),
    Page("POST", "/ui/plans", cells(U, W, W, W, W, W, W, W, 422), {"name": "bad name!"}),
    Page("GET", "/ui/plans/{name}", cells(S, W, W, W, W, W, W, W, 200), name="open"),
    Page("POST", "/ui/plans/{name}", cells(U, W, W, W, W, W, W, W, 404), {"per_minute": "5"}),
    Page("GET", "/ui/keys", cells(S, W, W, W, W, 200, 200, 200, 200)),
    Page("POST", "/ui/keys", cells(U, W, W, W, W, 422, 422, 422, 422), {"name": ""}),
    Page("POST", "/ui/keys/{prefix}/revoke", cells(U, W, W, W, W, 404, 404, S, S), {}),
    Page("POST", "/ui/keys/{prefix}/rotate", cells(U, W, W, W, W, 422, 422, 422, 422), {"overlap_hours": "5"}),  # an overlap the form does not offer
    Page("GET", "/ui/usage", cells(S, W, W, W, W, W, W, W, 200), params={"month": "2026-11"}),
    Page("GET", "/ui/usage.csv", cells(S, W, W, W, W, W, W, W, 200), params={"month": "2026-11"}),
    Page("GET", "/ui/audit", cells(S, W, W, W, W, W, W, W, 200), params={"action": "web."}),
    Page("GET", "/portal", cells(S, 200, 200, 200, 200, W, W, W, W)),
    Page("POST", "/portal/keys", cells(U, 422, 422, 422, 422, W, W, W, W), {"name": ""}),
    Page("POST", "/portal/spend-cap", cells(U, 422, 422, 422, 422, W, W, W, W), {"cap": "-1"}),
    Page("POST", "/portal/models/{m}/batches", cells(U, (422, W), (W, 422), (422, W), (W, W), (W, W), (W, W), (W, W), (W, W)), {}),
    Page("GET", "/portal/batches/no-such-batch", cells(S, 404, 404, 404, 404, W, W, W, W)),
    Page("GET", "/portal/batches/no-such-batch/result", cells(S, 404, 404, 404, 404, W, W, W, W)),
    Page("POST", "/portal/keys/{prefix}/revoke", cells(U, 404, 404, 404, 404, W, W, W, W), {}),
    Page("POST", "/portal/keys/{prefix}/rotate", cells(U, 422, 422, 422, 422, W, W, W, W), {"overlap_hours": "5"}),
    Page("GET", "/portal/models/{m}", cells(S, (200, W), (W, 200), (200, W), (200, W), (W, W), (W, W), (W, W), (W, W))),
    Page("POST", "/portal/models/{m}/explain", cells(U, (422, W), (W, 422), (422, W), (W, W), (W, W), (W, W), (W, W), (W, W)), {"row": "not json"}),
]  # fmt: skip

CALLED_PAGES = [
    (p.method, p.path) for p in PAGES if "{m}" in p.path and RULES[p.method, p.path] in CALLING
]
assert len(CALLED_PAGES) == 5, CALLED_PAGES  # the portal's model, explain and batches; the
# dashboard's explain page and its form
PAGES += [
    _as_named(next(p for p in PAGES if (p.method, p.path) == called), ref)
    for called in CALLED_PAGES
    for ref in REFS
]
PAGE_CASES = [
    pytest.param(page, caller, model, id=_id(page, caller, model))
    for page in PAGES
    for caller in CALLERS
    for model in page.models
]  # fmt: skip


@pytest.mark.parametrize(("page", "caller", "model"), PAGE_CASES)
def test_page_cell(world: World, page: Page, caller: str, model: str) -> None:
    data = None
    if page.form is not None:
        data = {k: v.replace("{m}", model) for k, v in page.form.items()}
        data["csrf"] = world.csrf[caller] if page.csrf else "0" * 64
    row = Row(page.method, page.path, page.expect, version=1, name=page.name, ref=page.ref)
    response = world.client.request(
        page.method,
        _url(world, row, model),
        headers=_cookie(world.cookies[caller]),
        params=page.params,
        data=data,
    )
    expected = _expected(row, caller, model)
    assert response.status_code == expected, response.text[:400]
    if (
        expected == S
        and caller == "anon"
        and page.method == "GET"
        and page.path not in ("/", "/ui")
    ):
        assert response.headers["location"].startswith(("/ui/login?next=", "/portal/login?next="))
    if expected >= 400:
        assert response.headers["content-type"].startswith("text/html"), "errors are pages"
        assert "Traceback" not in response.text
        assert 'role="alert"' in response.text  # the reason, said on the page


def test_every_page_has_a_row() -> None:
    routes = {
        (method, route.path)
        for router in web_routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    in_matrix = {
        (
            p.method,
            p.path.replace("{m}", "{name}")
            .replace("{job}", "{job_id}")
            .replace("{rollout}", "{rollout_id}")
            .replace("no-such-batch", "{batch_id}"),
        )
        for p in PAGES
    }
    assert routes - in_matrix == set(), "pages without a row in the authorization matrix"
    assert in_matrix - routes == set(), "rows for pages that do not exist"
    undeclared = [
        r.path
        for router in web_routers
        for r in router.routes
        if isinstance(r, APIRoute) and not hasattr(r.endpoint, "__mlgate_access__")
    ]
    assert undeclared == []


def _batch_csv() -> bytes:
    frame = demo.churn_frame(n_rows=30).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    return frame.to_csv(index=False).encode()


def _finished(world: World, caller: str, location: str) -> dict[str, Any]:
    for _ in range(300):
        state = world.client.get(location, headers=world.headers[caller])
        assert state.status_code == 200, state.text
        if state.json()["state"] not in ("queued", "running"):
            return dict(state.json())
        time.sleep(0.1)
    raise AssertionError(f"{location} did not finish")


@pytest.mark.parametrize(
    ("caller", "named", "refused"),
    [
        ("cons_al", f"{OWN}@production", (f"{OWN}@1", f"{OWN}@staging")),
        ("cons_al", OWN, (f"{OWN}@1",)),  # the bare name: the production alias
        ("cons_v", f"{OWN}@1", (OWN, f"{OWN}@production", f"{OWN}@2")),
    ],
)
def test_a_batch_is_scored_through_an_alias_or_version_grant(
    world: World, caller: str, named: str, refused: tuple[str, ...]
) -> None:
    csv = {**world.headers[caller], "Content-Type": "text/csv"}
    sent = world.client.post(f"/v1/models/{named}/batches", content=_batch_csv(), headers=csv)
    assert sent.status_code == 202, sent.text
    done = _finished(world, caller, sent.headers["location"])
    assert (done["state"], done["rows_done"], done["version"]) == ("succeeded", 30, 1)
    result = world.client.get(sent.headers["location"] + "/result", headers=world.headers[caller])
    assert result.status_code == 200 and "prediction" in result.text.splitlines()[0].split(",")
    assert len(result.text.splitlines()) == 31
    for other in ("cons_a", "cons_v" if caller == "cons_al" else "cons_al"):  # not theirs
        seen = world.client.get(sent.headers["location"], headers=world.headers[other])
        assert seen.status_code == 404, seen.text
    for name in refused:
        denied = world.client.post(f"/v1/models/{name}/batches", content=b"x", headers=csv)
        assert denied.status_code == 403 and denied.json()["code"] == "no_grant", denied.text
    if "@" not in named:  # a version or alias beside the name counts as in it
        version = world.client.post(
            f"/v1/models/{named}/batches", params={"version": "1"}, content=b"x", headers=csv
        )
        assert version.status_code == 403 and f"{OWN}@1" in version.json()["detail"]
    cancelled = world.client.delete(sent.headers["location"], headers=world.headers[caller])
    assert cancelled.status_code == 200, cancelled.text  # finished: its files are removed


@pytest.mark.parametrize(("caller", "named"), [("cons_al", OWN), ("cons_v", f"{OWN}@1")])
def test_an_unknown_column_points_to_a_schema_the_caller_may_read(
    world: World, caller: str, named: str
) -> None:
    row = dict(PREDICT["rows"][0])
    row["tenure_month"] = row.pop("tenure_months")
    answer = world.client.post(
        f"/v1/models/{named}/predict", json={"rows": [row]}, headers=world.headers[caller]
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    shown = named if "@" in named else f"{named}@production"
    assert "unknown column 'tenure_month'; did you mean 'tenure_months'?" in detail
    assert detail.endswith(f"(and 1 more problem); GET /v1/models/{shown}/schema lists the "
                           f"columns {shown} takes")  # fmt: skip
    schema = world.client.get(f"/v1/models/{shown}/schema", headers=world.headers[caller])
    assert schema.status_code == 200, schema.text
    assert "tenure_months" in {c["name"] for c in schema.json()["input_schema"]}


def test_the_portal_lists_each_model_as_granted_and_its_pages_call_it_so(world: World) -> None:
    for caller, named in (("cons_al", f"{OWN}@production"), ("cons_v", f"{OWN}@1")):
        overview = world.client.get("/portal", headers=_cookie(world.cookies[caller]))
        assert f'href="/portal/models/{named}"' in overview.text
        assert OTHER not in overview.text
        page = world.client.get(f"/portal/models/{named}", headers=_cookie(world.cookies[caller]))
        assert page.status_code == 200, page.text[:300]
        assert f'action="/portal/models/{named}/batches"' in page.text
        assert f"/v1/models/{named}/predict" in page.text  # the examples call it as granted
