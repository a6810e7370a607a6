"""The direction of imports between mlgate's packages, checked on every import statement in
every module (inside functions too: the AST is walked, not just its top).

- Inner packages never import an edge (api, cli, web, client, bootstrap) or a web/CLI framework.
  The Python client is an edge too: it speaks HTTP to the server and may show a rich progress
  bar, and nothing inner uses it.
- The use cases and rules import no database library (db/ translates its errors).
- A `repository.py` defines only Protocols (its records live in the package's model.py) and
  imports only records: the standard library, typing helpers
  (typing_extensions) and record modules, which are every `mlgate.<package>.model`,
  `mlgate.columns` (plain column records, no pandas) and `mlgate.errors` (the failures a
  protocol states). `mlgate.schema` is not one: it infers and conforms frames with pandas.
- httpx, redis (redis.asyncio included) and boto3/botocore are imported only by the adapter
  modules named in ADAPTERS, each with its reason; everything else reaches them through those.
- The runtime, the explainers and the job engine import nothing above them; only the edges
  import serving.
- The pages import from the API only its shared request pieces (authorize, problems, schemas).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import mlgate

PACKAGE = Path(mlgate.__file__).parent
EDGES = ("mlgate.api", "mlgate.cli", "mlgate.web", "mlgate.client", "mlgate.bootstrap")
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "typer", "click", "rich")
INNER = [
    p
    for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).parts[0]
    not in {"api", "cli", "web", "client", "bootstrap.py", "__main__.py", "__init__.py"}
]


def _dotted(path: Path) -> list[str]:
    """The module's name as parts: mlgate/plans/model.py -> [mlgate, plans, model]."""
    parts = ["mlgate", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_mlgate_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "mlgate":
        return False
    where = PACKAGE.joinpath(*parts[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every module the file imports. `from mlgate.plans import model` counts as
    mlgate.plans.model (not the package), and relative imports are resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = _dotted(path)
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{module}" if module else base
            submodules = {
                f"{module}.{alias.name}"
                for alias in node.names
                if _is_mlgate_module(f"{module}.{alias.name}")
            }
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(module)
    return found


def test_the_inner_packages_are_found() -> None:
    names = {p.relative_to(PACKAGE).parts[0] for p in INNER}
    assert {"registry", "training", "serving", "access", "sources", "db", "errors.py"} <= names


def test_inner_packages_import_no_edge_and_no_framework() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in INNER
        for name in imports_of(path)
        if any(name == edge or name.startswith(edge + ".") for edge in EDGES)
        or name.split(".")[0] in FRAMEWORKS
    ]
    assert not offences, "\n".join(offences) + (
        "\nAn inner module must not reach out to an edge or a framework: let the edge call it"
        " and hand in what it needs (a value, a callable, a protocol the edge implements)."
    )


# The use cases and rules speak the domain: the database layer (db/) translates its errors
# (an IntegrityError becomes errors.ConcurrentWrite), so none of them needs SQLAlchemy.
NO_DATABASE_LIBRARY = (
    "registry", "plans", "access", "training", "serving", "monitoring", "rollouts", "imports",
    "exports", "jobs", "signing", "cards",
)  # fmt: skip


def test_use_cases_and_rules_import_no_database_library() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in INNER
        if path.relative_to(PACKAGE).parts[0] in NO_DATABASE_LIBRARY
        for name in imports_of(path)
        if name.split(".")[0] in ("sqlalchemy", "alembic") or name.startswith("mlgate.db")
    ]
    assert not offences, "\n".join(offences) + (
        "\nStorage goes through a repository protocol (the package's repository.py) that db/"
        " implements; a database error becomes an mlgate.errors class inside db/."
    )


# A repository.py is a storage seam: db/ and tests/fakes.py implement it, and uow.py names every
# one. Importing a use case from it drags that use case (and what it imports, uow.py included)
# into every implementation, and makes loops such as uow -> repository -> use case -> uow.
REPOSITORIES = sorted(PACKAGE.rglob("repository.py"))
TYPING_HELPERS = ("typing_extensions",)
RECORD_MODULES = ("mlgate.columns", "mlgate.errors")  # and every mlgate.<package>.model


def is_record_or_stdlib(name: str) -> bool:
    return (
        name.split(".")[0] in sys.stdlib_module_names
        or name.split(".")[0] in TYPING_HELPERS
        or name in RECORD_MODULES
        or re.fullmatch(r"mlgate\.\w+\.model", name) is not None
    )


def test_the_repositories_are_found() -> None:
    packages = {p.relative_to(PACKAGE).parts[0] for p in REPOSITORIES}
    assert {
        "access", "cards", "jobs", "monitoring", "plans", "registry", "rollouts", "signing",
        "sources",
    } <= packages  # fmt: skip


def test_a_repository_imports_only_records() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: a repository.py may import only the"
        " standard library, typing helpers and records (mlgate.<package>.model, mlgate.columns,"
        f" mlgate.errors). Move what it needs from {name} into"
        f" mlgate/{path.relative_to(PACKAGE).parent}/model.py (or the model.py of the package it"
        " belongs to) and import it from there."
        for path in REPOSITORIES
        for name in sorted(imports_of(path))
        if not is_record_or_stdlib(name)
    ]
    assert not offences, "\n".join(offences)


# The libraries that talk to other services, and the modules allowed to import them: each an
# adapter behind which the rest of the code stays free of the wire. A path ending in "/" is a
# whole folder.
ADAPTER_LIBRARIES = ("httpx", "redis", "boto3", "botocore")
ADAPTERS = {
    "outbound/client.py": "the one HTTP client of webhooks and usage sinks (addresses checked)",
    "plans/redis_counters.py": "the Counters protocol over Redis (Lua scripts, metered batches)",
    "plans/resp.py": "the event loop's pipelined Redis client; reads URLs with redis-py's parser",
    "registry/s3.py": "the ArtifactStore protocol over an S3-compatible object store",
    "sso/discovery.py": "the identity provider's discovery document and key set (JWKS)",
    "sso/device.py": "the device authorization grant at the identity provider (RFC 8628)",
    "client/": "the Python client: an adapter to the server's HTTP API by nature",
    "cli/remote.py": "the CLI's one transport to a remote server; remote commands call Remote",
}  # fmt: skip


def _adapter_for(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE).as_posix()
    return next(
        (entry for entry in ADAPTERS if relative == entry or relative.startswith(entry)), None
    )


def _service_libraries(path: Path) -> list[str]:
    return sorted(name for name in imports_of(path) if name.split(".")[0] in ADAPTER_LIBRARIES)


def _defines_only_protocols(tree: ast.Module) -> list[str]:
    """What the module defines at its top besides Protocol classes (imports and the docstring
    aside): each as 'name (what it is)'."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(base) for base in node.bases}
            if not bases & {"Protocol", "typing.Protocol"} or node.decorator_list:
                found.append(f"{node.name} (a class that is not a bare Protocol)")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(f"{node.name} (a function)")
        elif not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):
            found.append(f"{ast.unparse(node).splitlines()[0]} (a statement)")
    return found


def test_a_repository_defines_only_protocols() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} defines {what}: a repository.py holds only the storage"
        " protocols. Records (dataclasses the protocols take or give back) go in"
        f" mlgate/{path.relative_to(PACKAGE).parent}/model.py; rules go in the package's other"
        " modules."
        for path in REPOSITORIES
        for what in _defines_only_protocols(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert not offences, "\n".join(offences)


def test_the_protocol_rule_finds_a_record() -> None:
    """The rule above bites: a record, a function or a constant in a repository is named."""
    source = (
        "from dataclasses import dataclass\n"
        "from typing import Protocol\n"
        "@dataclass(frozen=True)\n"
        "class Row:\n"
        "    n: int\n"
        "class Store(Protocol):\n"
        "    def get(self) -> Row: ...\n"
        "def helper() -> None: ...\n"
        "LIMIT = 3\n"
    )
    assert _defines_only_protocols(ast.parse(source)) == [
        "Row (a class that is not a bare Protocol)",
        "helper (a function)",
        "LIMIT = 3 (a statement)",
    ]


def test_httpx_redis_and_boto3_are_imported_only_by_adapters() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: only the adapters in ADAPTERS"
        f" ({', '.join(ADAPTERS)}) may. Call the adapter instead (or put the code that needs"
        f" {name.split('.')[0]} behind a protocol an adapter implements); if this module is itself"
        " an adapter, add it to ADAPTERS in tests/test_layers.py with a one-line reason."
        for path in sorted(PACKAGE.rglob("*.py"))
        if _adapter_for(path) is None
        for name in _service_libraries(path)
    ]
    assert not offences, "\n".join(offences)


def test_every_listed_adapter_still_uses_its_library() -> None:
    used = {_adapter_for(p) for p in PACKAGE.rglob("*.py") if _service_libraries(p)}
    stale = [entry for entry in ADAPTERS if entry not in used]
    assert not stale, f"{stale} import none of {ADAPTER_LIBRARIES}: remove them from ADAPTERS"


@pytest.mark.e2e  # a fresh interpreter is the point: this one has imported everything
@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("mlgate", ("sklearn", "pandas", "sqlalchemy", "fastapi")),
        # every `mlgate` command pays for what the CLI imports (about 0.25 s for pandas here):
        # the commands that read or score rows import pandas themselves
        (
            "mlgate.cli.main",
            ("sklearn", "pandas", "scipy", "matplotlib", "torch", "opentelemetry.sdk"),
        ),  # fmt: skip
    ],
)
def test_importing_loads_no_heavy_library(module: str, heavy: tuple[str, ...]) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# A loaded model (runtime/) and the explainers (explainers/) sit below every use case that
# scores or explains: serving answers calls with them, training reports, monitoring, rollouts
# and exports score with them. None of those reaches into serving/, which keeps the wire
# codecs and the serving use cases.
ABOVE_RUNTIME = ("serving", "training", "monitoring", "rollouts", "exports", "imports", "plans")
# The job engine (jobs/) runs every kind of job and knows none: training and serving (batches)
# hand it their work, so it imports no use case, no model and no source.
ABOVE_JOBS = (*ABOVE_RUNTIME, "runtime", "explainers", "registry", "sources")


def _package_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize(
    ("package", "may_not"),
    [
        ("runtime", (*ABOVE_RUNTIME, "explainers")),
        ("explainers", ABOVE_RUNTIME),
        ("jobs", ABOVE_JOBS),
    ],
)
def test_the_runtime_the_explainers_and_the_job_engine_import_nothing_above_them(
    package: str, may_not: tuple[str, ...]
) -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: move what it needs below {package}/"
        for path in INNER
        if _package_of(path) == package
        for name in imports_of(path)
        if any(name == f"mlgate.{p}" or name.startswith(f"mlgate.{p}.") for p in may_not)
    ]
    assert offences == []


def test_only_the_edges_import_serving() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: score through mlgate.runtime, explain "
        "through mlgate.explainers"
        for path in INNER
        if _package_of(path) != "serving"
        for name in imports_of(path)
        if name == "mlgate.serving" or name.startswith("mlgate.serving.")
    ]
    assert offences == []


def test_tracing_imports_no_other_mlgate_package() -> None:
    """Every layer times its stages through tracing/, so it sits below them all."""
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: tracing/ stays below every package"
        for path in INNER
        if _package_of(path) == "tracing"
        for name in imports_of(path)
        if name.startswith("mlgate.") and not name.startswith("mlgate.tracing")
    ]
    assert offences == []


# The dashboard and the portal share the API's request pieces (the one authorization, the
# problem statuses, the bounded path types), never a route or the prediction edge: a page calls
# the use cases as bound at the composition root (Services.serving, Services.registry, ...).
WEB_MAY_USE_OF_API = ("mlgate.api.authorize", "mlgate.api.problems", "mlgate.api.schemas")


def test_the_pages_import_only_the_apis_shared_request_pieces() -> None:
    web = list(PACKAGE.joinpath("web").rglob("*.py"))
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}: reach the use case through Services"
        for path in web
        for name in imports_of(path)
        if (name == "mlgate.api" or name.startswith("mlgate.api."))
        and name not in WEB_MAY_USE_OF_API
    ]
    assert web and offences == []
