"""schemathesis over the app's OpenAPI document, in process (its ASGI transport: no socket), for
the CI test (`tests/integration/test_fuzz.py`: a fixed seed, the same requests every run) and
for `scripts/fuzz --minutes N` (fresh seeds until the time is up).

Each operation is fuzzed twice: with requests that fit its schema (every answer as documented,
no 5xx) and with requests that do not (each must be refused with a 4xx). A failing request is
recorded with a curl line that sends it again, and fuzzing goes on: no shrinking, so a finding
costs one request, and one run reports every distinct failure, not the first.

schemathesis' pytest plugin does not run under pytest 9 (it reaches for a private attribute), so
the operations are driven here: each one its own Hypothesis run over its strategy.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SERVER = "http://127.0.0.1:8000"  # where a curl line points: `mlgate serve`'s default
DEMO = {  # what `mlgate quickstart` makes, by the paths that name it
    "/v1/models/{name}": ["churn", "churn@production"],
    "/v2/models/{name}": ["churn", "churn@production"],
    "/v1/consumers/{name}": ["demo-customer"],
    "/v1/plans/{name}": ["starter"],
}
TOKEN_HEADER = "Authorization: Bearer $MLGATE_TOKEN"  # the token itself is never printed


@dataclass
class Finding:
    """One distinct failure: an operation, the kind of failure, how often, and the first
    request that showed it as a curl line."""

    operation: str
    kind: str
    detail: str
    curl: str
    count: int = 1

    def __str__(self) -> str:
        return f"{self.operation}: {self.kind} (x{self.count})\n  {self.detail}\n  {self.curl}"


@dataclass
class Fuzzed:
    """What a run did: requests per operation and mode, and the findings by (operation, kind)."""

    requests: dict[str, int] = field(default_factory=dict)
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def operations(app: Any) -> Iterator[Any]:
    """The app's operations, as its served OpenAPI document lists them."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The key is ours to send: generated Authorization headers would only be overwritten by it.
    schema.config.generation.update(with_security_parameters=False)
    # A curl line sends the request as it was: generated "secrets" are data, not ours (our
    # token never enters a case: it is added when the case is sent).
    schema.config.output.sanitization.update(enabled=False)
    for result in schema.get_all_operations():
        yield result.ok()


def aims(case: Any) -> list[str]:
    """What `case`'s `{name}` may name instead, of what the quickstart made: the churn model
    (and its production alias), its consumer and plan, so that the rest of the request reaches
    past "no such model". None where the path has no such name, nor for DELETE (the rest of the
    run would find nothing)."""
    if case.method.upper() == "DELETE" or "name" not in case.path_parameters:
        return []
    return next((t for prefix, t in DEMO.items() if case.path.startswith(prefix)), [])


def curl_of(case: Any) -> str:
    """A curl line that sends `case` again to a server at SERVER, with $MLGATE_TOKEN."""
    line: str = case.as_curl_command(base_url=SERVER).split("\n\n\u26a0")[0]  # no warnings
    return f"{line} -H {shlex.quote(TOKEN_HEADER).replace(chr(39), chr(34))}"


def _kinds(exc: BaseException) -> list[tuple[str, str]]:
    """(kind, detail) of each failure in `exc`: schemathesis' checks, or what the app raised."""
    if isinstance(exc, BaseExceptionGroup):
        return [k for e in exc.exceptions for k in _kinds(e)]
    title = getattr(exc, "title", None)
    message = str(getattr(exc, "message", "") or exc)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    # the line that says what was wrong: the invalid part of a request, else the first
    first = next((x for x in lines if x.startswith("Invalid component")), lines[0] if lines else "")
    return [(str(title) if title else type(exc).__name__, first[:300])]


def fuzz_operation(
    operation: Any,
    headers: dict[str, str],
    mode: GenerationMode,
    *,
    examples: int,
    seed_: int,
    into: Fuzzed,
    on_finding: Callable[[Finding], None] | None = None,
) -> None:
    """`examples` requests of `mode` for `operation`, drawn from `seed_`; findings go `into`."""
    label = f"{operation.method.upper()} {operation.path}"
    key = f"{label} [{mode.value}]"

    @seed(seed_)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.generate],  # no explicit examples, no replays, no shrinking
    )
    def run(case: Any) -> None:
        send(case)
        for name in aims(case) if mode is GenerationMode.POSITIVE else []:
            case.path_parameters = {**case.path_parameters, "name": name}  # it re-validates
            send(case)  # the same draw again, aimed at what exists: one draw, more requests

    def send(case: Any) -> None:
        into.requests[key] = into.requests.get(key, 0) + 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # recorded, and the run goes on
            for kind, detail in _kinds(exc):
                found = into.findings.get((label, kind))
                if found is not None:
                    found.count += 1
                    continue
                finding = Finding(label, kind, detail, curl_of(case))
                into.findings[(label, kind)] = finding
                if on_finding is not None:
                    on_finding(finding)

    with contextlib.suppress(Unsatisfiable):  # negative mode: every request fits the schema
        run()


def fuzz(
    app: Any,
    token: str,
    *,
    seed_: int,
    examples: int | tuple[int, int],
    until: float | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    into: Fuzzed | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Fuzzed:
    """Every operation in each mode, `examples` draws each (or a pair: draws that fit the
    schema, draws that do not), seeded from `seed_`; stops once time.monotonic() passes
    `until`. `shard=(k, n)` takes the k-th of every n operations (the seeds stay those of the
    whole run, so the shards together send exactly what one run sends)."""
    per_mode = examples if isinstance(examples, tuple) else (examples, examples)
    done = Fuzzed() if into is None else into
    headers = {"Authorization": f"Bearer {token}"}
    for i, operation in enumerate(operations(app)):
        if i % shard[1] != shard[0]:
            continue
        for j, mode in enumerate(MODES):
            if until is not None and time.monotonic() > until:
                return done
            seeded = seed_ * 1000 + 2 * i + j
            fuzz_operation(
                operation, headers, mode, examples=per_mode[j], seed_=seeded, into=done,
                on_finding=on_finding,
            )  # fmt: skip
    return done


def main(argv: list[str] | None = None) -> int:
    """scripts/fuzz: fresh seeds, round after round over every operation, for N minutes."""
    import argparse
    import os
    import secrets
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="how long to fuzz")
    parser.add_argument("--seed", type=int, help="the first round's seed (default: fresh)")
    parser.add_argument("--examples", type=int, default=25, help="per operation, mode and round")
    args = parser.parse_args(argv)
    first = secrets.randbelow(2**31) if args.seed is None else args.seed

    scratch = Path(tempfile.mkdtemp(prefix="mlgate-fuzz-"))
    os.environ.setdefault("MLGATE_TESTS_SHARED_DIR", str(scratch / "shared"))
    Path(os.environ["MLGATE_TESTS_SHARED_DIR"]).mkdir(exist_ok=True)
    from schemathesis.python import asgi

    from mlgate.api.app import create_app
    from tests.conftest import make_services
    from tests.e2e.helpers import admin_key, quickstarted

    home = scratch / "home"
    quickstarted(home)
    token = admin_key(home, "predict", "generate", "read", "train", "admin", user="fuzzer")
    services = make_services(home)
    app = create_app(services)
    done = Fuzzed()
    until = time.monotonic() + 60 * args.minutes

    def report(finding: Finding) -> None:
        print(f"FOUND {finding.operation}: {finding.kind}\n  {finding.detail}\n  {finding.curl}",
              flush=True)  # fmt: skip

    print(
        f"fuzzing for {args.minutes:g} minutes from seed {first}; the curl lines expect "
        f"`mlgate serve` at {SERVER} and an admin key's token in MLGATE_TOKEN",
        flush=True,
    )
    rounds = 0
    try:
        while time.monotonic() < until:
            fuzz(app, token, seed_=first + rounds, examples=args.examples, until=until,
                 on_finding=report, into=done)  # fmt: skip
            rounds += 1
            print(f"round {rounds} (seed {first + rounds - 1}): {done.total} requests, "
                  f"{len(done.findings)} distinct failures", flush=True)  # fmt: skip
    finally:
        asgi.shutdown_lifespans()
        services.close()
        shutil.rmtree(scratch, ignore_errors=True)
    failing = sum(f.count for f in done.findings.values())
    print(
        f"\n{done.total} requests in {rounds} round(s) from seed {first}; "
        f"{len(done.findings)} distinct failure(s), {failing} failing request(s)"
    )
    for finding in sorted(done.findings.values(), key=lambda f: (-f.count, f.operation)):
        print(finding)
    sys.stdout.flush()
    return 1 if done.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
