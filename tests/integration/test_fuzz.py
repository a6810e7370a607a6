"""Fuzzing the OpenAPI document with schemathesis, calling the ASGI app in process: at least 1,000
generated requests with an admin key, none answered with a 5xx, every answer as documented
(status, content type, headers, body schema), and schema-invalid requests rejected.

Not checked: that every schema-valid request is accepted. The document cannot say everything
the server checks (a model name must exist, a password must be long enough), so such requests
rightly get 4xx answers.

schemathesis' pytest plugin does not run under pytest 9 (it reaches for a private attribute),
so the operations are driven here: each one its own Hypothesis run over its strategy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.python import asgi

from mlgate.api.app import create_app
from tests.conftest import make_services
from tests.e2e.helpers import admin_key, quickstarted

EXAMPLES_PER_OPERATION = 60
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    home: Path = tmp_path_factory.mktemp("fuzz") / "home"
    quickstarted(home)
    token = admin_key(home, "predict", "generate", "read", "train", "admin", user="fuzzer")
    services = make_services(home)
    yield create_app(services), token
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan once: end it
    services.close()


@pytest.mark.slow(reason="over 4,000 generated requests: 60 an operation")
def test_generated_requests_get_documented_answers_and_no_5xx(served: tuple[Any, str]) -> None:
    app, token = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    calls: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except BaseException as exc:  # collect them all (groups too): one report for the API
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{label}: {str(exc)[:600]}")
    print(f"schemathesis: {sum(calls.values())} requests over {len(calls)} operations")
    assert failures == []
    assert sum(calls.values()) >= 1000, calls
