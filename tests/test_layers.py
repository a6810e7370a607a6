"""Inner packages never import an edge (api, cli, web, client, bootstrap) or a web/CLI
framework. The Python client is an edge too: it speaks HTTP to the server and may show a rich
progress bar, and nothing inner uses it."""

from __future__ import annotations

import ast
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


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
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
    assert offences == []


# The use cases and rules speak the domain: the database layer (db/) translates its errors
# (an IntegrityError becomes errors.ConcurrentWrite), so none of them needs SQLAlchemy.
NO_DATABASE_LIBRARY = (
    "registry", "plans", "access", "training", "serving", "monitoring", "rollouts", "imports",
    "exports",
)  # fmt: skip


def test_use_cases_and_rules_import_no_database_library() -> None:
    offences = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in INNER
        if path.relative_to(PACKAGE).parts[0] in NO_DATABASE_LIBRARY
        for name in imports_of(path)
        if name.split(".")[0] in ("sqlalchemy", "alembic") or name.startswith("mlgate.db")
    ]
    assert offences == []


@pytest.mark.e2e  # a fresh interpreter is the point: this one has imported everything
@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("mlgate", ("sklearn", "pandas", "sqlalchemy", "fastapi")),
        # every `mlgate` command pays for what the CLI imports (about 0.25 s for pandas here):
        # the commands that read or score rows import pandas themselves
        ("mlgate.cli.main", ("sklearn", "pandas", "scipy", "matplotlib", "torch")),
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


def _package_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize(
    ("package", "may_not"),
    [
        ("runtime", (*ABOVE_RUNTIME, "explainers")),
        ("explainers", ABOVE_RUNTIME),
    ],
)
def test_the_runtime_and_the_explainers_import_nothing_above_them(
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
