"""The references leave nothing out: every `mlgate` command and option, and every HTTP route of
the server, has its entry in what scripts/docs_reference.py writes into docs/reference/cli.md and
docs/reference/http.md at `mkdocs build`; every setting has its row in docs/reference/settings.md
(written by hand), and that page names no setting mlgate does not read.

The commands are walked from the Typer app and the routes from the FastAPI app itself, not from
the OpenAPI document the generator reads: a route left out of that document (`include_in_schema`)
is missing from the reference, and fails here unless it is a page of the dashboard or portal.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main
from fastapi.routing import iter_route_contexts

from mlgate import settings as settings_module
from mlgate.api.app import create_app
from mlgate.bootstrap import bootstrap
from mlgate.cli.main import app as cli_app
from mlgate.neural import threads
from mlgate.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Pages for people in a browser (the dashboard, the portal) and FastAPI's own documentation
# pages: not operations of the API, so not in its reference.
NOT_THE_API = re.compile(r"^/$|^/(ui|portal)(/|$)|^/(docs|redoc|openapi\.json)(/|$)")


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "scripts/docs_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(command: Any, words: list[str]) -> Iterator[tuple[str, Any]]:
    for name, sub in getattr(command, "commands", {}).items():
        if sub.hidden:
            continue
        if hasattr(sub, "commands"):
            yield from _commands(sub, [*words, name])
        else:
            yield " ".join([*words, name]), sub


def _sections(markdown: str) -> dict[str, str]:
    """`## mlgate models promote` -> the text up to the next such heading."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_command_and_option_is_in_the_cli_reference(generator: ModuleType) -> None:
    sections = _sections(generator.cli_reference())
    commands = dict(_commands(typer.main.get_command(cli_app), ["mlgate"]))
    assert len(commands) > 50 and "mlgate models promote" in commands
    missing = sorted(set(commands) - set(sections))
    assert not missing, f"commands missing from docs/reference/cli.md: {missing}"
    for words, command in commands.items():
        for param in command.params:
            if param.hidden or param.name == "help":
                continue
            names = (
                [f"`{param.name.upper()}`"]
                if param.param_type_name == "argument"
                else [f"`{o}`" for o in param.opts]
            )
            for shown in names:
                assert shown in sections[words], f"{words}: {shown} missing from its reference"


def test_every_route_of_the_server_is_in_the_http_reference(generator: ModuleType) -> None:
    reference = generator.http_reference()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/mlgate.db",
            artifact_dir=Path(home) / "artifacts",
        )
        services = bootstrap(settings)
        try:
            routes = [
                (method, route.path)
                for route in iter_route_contexts(create_app(services).routes)
                for method in sorted(route.methods or ())
                if method != "HEAD"
            ]
        finally:
            services.close()
    api = [(m, p) for m, p in routes if not NOT_THE_API.match(p)]
    assert len(api) > 80 and ("POST", "/v1/models/{name}/predict") in api
    missing = [f"{m} {p}" for m, p in api if f"### `{m} {p}`" not in reference]
    assert not missing, f"routes missing from docs/reference/http.md: {missing}"


def test_every_setting_is_on_the_settings_page() -> None:
    page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    read = {f"MLGATE_{f.upper()}" for f in Settings.__dataclass_fields__} | {
        "MLGATE_CONFIG",  # the file the others may come from
        threads.VARIABLE,  # read where a network trains
        "MLGATE_URL",  # the CLI's own (cli/main.py, cli/monitoring.py)
        "MLGATE_TOKEN",
        "MLGATE_WEBHOOK_SECRET",
    }
    rows = set(re.findall(r"^\| `(MLGATE_[A-Z0-9_]+)`", page, flags=re.MULTILINE))
    assert not read - rows, f"settings without a row in docs/reference/settings.md: {read - rows}"
    named = set(re.findall(r"\bMLGATE_[A-Z0-9_]+\b", page))
    assert not named - read, f"docs/reference/settings.md names unknown settings: {named - read}"
    documented = set(re.findall(r"\bMLGATE_[A-Z0-9_]+", settings_module.__doc__ or ""))
    assert documented <= read  # settings.py's own list stays true too
