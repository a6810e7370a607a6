"""docs/architecture.md is the true map: its Packages block names every package and module under
src/mlgate (each with its role), and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

import mlgate

PACKAGE = Path(mlgate.__file__).parent
MAP = Path(__file__).parents[1] / "docs" / "architecture.md"


def named_in_map(text: str) -> set[str]:
    """The paths the Packages block names: `errors.py`, `plans/`, `plans/model.py`,
    `api/routes/`, read from its two indents (a package, then its members)."""
    block = text.split("## Packages", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    named: set[str] = set()
    package = ""
    for line in block.splitlines():
        top = re.match(r"^  (\S+)", line)
        member = re.match(r"^    (\S+)", line)
        if top:
            package = top.group(1) if top.group(1).endswith("/") else ""
            named.add(top.group(1))
        elif member and package and not line.startswith("      "):
            named.add(package + member.group(1))
    return named


def in_source() -> set[str]:
    """Every module and package down to the members of a package: folders below that (api's
    routes/, db's migrations/, web's templates/) are named as folders."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*"):
        parts = path.relative_to(PACKAGE).parts
        if "__pycache__" in parts or len(parts) > 2:
            continue
        if path.is_dir():
            if len(parts) == 1 or any(path.rglob("*.py")) or path.name == "templates":
                found.add("/".join(parts) + "/")
        elif path.suffix == ".py" and not (len(parts) == 2 and path.name == "__init__.py"):
            found.add("/".join(parts))
    return found


def test_the_map_names_every_module_and_package() -> None:
    missing = sorted(in_source() - named_in_map(MAP.read_text()))
    assert not missing, f"docs/architecture.md does not name {missing}: add each with its role"


def test_the_map_names_nothing_that_is_gone() -> None:
    gone = sorted(
        name for name in named_in_map(MAP.read_text()) if not (PACKAGE / name.rstrip("/")).exists()
    )
    assert not gone, f"docs/architecture.md names {gone}, which src/mlgate no longer has"


def test_the_reading_of_the_map_finds_members() -> None:
    text = "## Packages\n```text\nsrc/mlgate/\n  errors.py  x\n  plans/  y\n    model.py  z\n```"
    assert named_in_map(text) == {"errors.py", "plans/", "plans/model.py"}
