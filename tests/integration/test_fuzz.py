"""Fuzzing the OpenAPI document with schemathesis, calling the ASGI app in process, derandomized:
a fixed seed, so every run sends the same requests and a failure here is one anyone reproduces
(its curl line is printed). Fresh randomness, for as long as you like: `scripts/fuzz --minutes N`.

Every operation gets requests that fit its schema (each answer as documented: status, content
type, headers, body schema; no 5xx), sent as drawn and again aimed at the quickstart's model,
consumer or plan (and the model's production alias), so that they reach past "no such
model"; and requests that do not fit (each refused with a 4xx). The operations are dealt into
three shards, a test each, so that none runs past a minute; together they send at least as many
requests as this test sent before (60 schema-fitting draws an operation, 5,283 requests), for
fewer draws (25 and 20).

Not checked: that every schema-valid request is accepted. The document cannot say everything
the server checks (a model name must exist, a password must be long enough), so such requests
rightly get 4xx answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis.python import asgi

from mlgate.api.app import create_app
from tests import fuzzing
from tests.conftest import make_services
from tests.e2e.helpers import admin_key, quickstarted

SEED = 33
EXAMPLES = (25, 20)  # draws per operation: fitting the schema, and not
BEFORE = 5283  # requests this test sent before: 60 schema-fitting draws an operation


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    home: Path = tmp_path_factory.mktemp("fuzz") / "home"
    quickstarted(home)
    token = admin_key(home, "predict", "generate", "read", "train", "admin", user="fuzzer")
    services = make_services(home)
    yield create_app(services), token
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan once: end it
    services.close()


SHARDS = 3  # every third operation a test, so that no test runs past a minute
SENT: dict[int, int] = {}  # requests each shard sent, this run


@pytest.mark.slow(reason="about 1,800 generated requests in process: a third of the operations")
@pytest.mark.parametrize("shard", range(SHARDS))
def test_generated_requests_get_documented_answers_and_no_5xx(
    served: tuple[Any, str], shard: int
) -> None:
    app, token = served
    done = fuzzing.fuzz(app, token, seed_=SEED, examples=EXAMPLES, shard=(shard, SHARDS))
    operations = {key.rsplit(" [", 1)[0] for key in done.requests}
    everything = sum(1 for _ in fuzzing.operations(app))
    print(f"schemathesis: {done.total} requests over {len(operations)} operations, seed {SEED}")
    for finding in done.findings.values():
        print(finding)
    assert [str(f) for f in done.findings.values()] == []
    assert len(operations) >= everything // SHARDS > 80 // SHARDS
    SENT[shard] = done.total
    if len(SENT) == SHARDS:  # the last shard of a whole run: together, at least as many as before
        assert sum(SENT.values()) >= BEFORE, SENT
    negative = sum(n for key, n in done.requests.items() if key.endswith("[negative]"))
    # schema-violating requests, refused, never a 5xx: for every operation with something to
    # violate (a body, or a parameter other than free text; `/v1/plans/{name}` has none)
    violable = [op for op in operations if _violable(app, op)]
    assert len(violable) >= len(operations) // 3
    assert negative >= 10 * len(violable)


def _violable(app: Any, operation: str) -> bool:
    method, path = operation.split(" ", 1)
    spec = app.openapi()["paths"][path][method.lower()]
    if "requestBody" in spec:
        return True
    for parameter in spec.get("parameters", []):
        schema = parameter.get("schema", {})
        kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
        if kinds - {"string", "null"} or any(
            k in t for t in schema.get("anyOf", [schema]) for k in ("enum", "format", "const")
        ):
            return True
    return False
