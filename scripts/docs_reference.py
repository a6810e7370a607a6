"""mkdocs hook: the guide's reference pages, generated from the code at build time.

`<!-- generated: cli -->` becomes every `mlgate` command with its arguments and options (read
from the Typer definitions), `<!-- generated: http -->` every HTTP operation (read from the
server's OpenAPI document, which is also published as reference/openapi.json). The Python client's
page uses mkdocstrings directly.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_reference())
    if "<!-- generated: http -->" in markdown:
        markdown = markdown.replace("<!-- generated: http -->", http_reference())
    return markdown


def on_files(files: Any, config: Any) -> Any:
    """Publish the OpenAPI document beside the HTTP reference (reference/openapi.json)."""
    from mkdocs.structure.files import File

    document = json.dumps(openapi(), indent=1)
    files.append(File.generated(config, "reference/openapi.json", content=document))
    return files


# -- the CLI ------------------------------------------------------------------------------------


def cli_reference() -> str:
    import typer.main

    from mlgate.cli.main import app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="mlgate")
    out = [_command(["mlgate"], root, context, title="mlgate (options of every command)")]
    for words, command in _commands(root, ["mlgate"]):
        out.append(_command(words, command, context))
    return "\n".join(out)


def _commands(command: Any, words: list[str]) -> list[tuple[list[str], Any]]:
    if not hasattr(command, "commands"):
        return [(words, command)]
    found: list[tuple[list[str], Any]] = []
    for name, sub in sorted(command.commands.items()):
        if not getattr(sub, "hidden", False):
            found += _commands(sub, [*words, name])
    return found


def _command(words: list[str], command: Any, context: Any, title: str = "") -> str:
    params = [p for p in command.params if not p.hidden and p.name != "help"]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    usage = " ".join(
        [*words, *(p.name.upper() if p.required else f"[{p.name.upper()}]" for p in arguments)]
    )
    lines = [f"## {title or ' '.join(words)}", "", (command.help or "").strip(), ""]
    if not title:
        lines += ["```text", usage + (" [OPTIONS]" if options else ""), "```", ""]
    if params:
        lines += ["| argument or option | type | default | what it does |", "|---|---|---|---|"]
        for p in arguments + options:
            names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            if p.param_type_name == "argument":
                names = f"`{p.name.upper()}`"
            lines.append(
                f"| {names}{' (required)' if p.required else ''} | {_type(p, context)} "
                f"| {_default(p)} | {_cell(p.help or '')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _type(param: Any, context: Any) -> str:
    try:
        shown = str(param.display_type(context)).strip("<>")
    except Exception:  # a Typer internal changed: the name is enough
        shown = ""
    return _cell(shown.replace("[", "").replace("]", ""))


def _default(param: Any) -> str:
    value = param.default
    if value in (None, "", (), []) or param.required:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# -- the HTTP API -------------------------------------------------------------------------------


@cache
def openapi() -> dict[str, Any]:
    """The document a server publishes at /openapi.json, from an app over a throwaway home."""
    from mlgate.api.app import create_app
    from mlgate.bootstrap import bootstrap
    from mlgate.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/mlgate.db",
            artifact_dir=Path(home) / "artifacts",
        )
        services = bootstrap(settings)
        try:
            document: dict[str, Any] = create_app(services).openapi()
        finally:
            services.close()
    return document


def http_reference() -> str:
    document = openapi()
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method in _HTTP_METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    out = [f"Generated from the OpenAPI document of mlgate {document['info']['version']}.", ""]
    out += ["## Errors", "", "Every operation answers errors as problem details:", ""]
    out += _error_table(document)
    for tag in sorted(by_tag):
        out += [f"## {tag}", ""]
        for method, path, operation in by_tag[tag]:
            out += _operation(method, path, operation)
    return "\n".join(out)


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method} {path}`", ""]
    if operation.get("summary"):
        lines += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
        for p in parameters:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} "
                f"| {_cell(p.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        kinds = ", ".join(f"`{k}`" for k in body)
        schema = next(iter(body.values())).get("schema", {})
        named = schema.get("$ref", "").rsplit("/", 1)[-1]
        lines += [f"Body: {kinds}" + (f", schema `{named}`" if named else "") + ".", ""]
    responses = operation.get("responses", {})
    ok = [f"`{c}` {_cell(r.get('description', ''))}" for c, r in responses.items() if c < "400"]
    failed = [f"`{c}`" for c in responses if c >= "400"]
    if ok or failed:
        said = "; ".join(ok) + (f"; errors: {', '.join(failed)}" if failed else "")
        lines += [f"Answers: {said}.", ""]
    return lines


def _error_table(document: dict[str, Any]) -> list[str]:
    """What each error status means, once for the whole API."""
    said: dict[str, Counter[str]] = {}
    for item in document["paths"].values():
        for method in _HTTP_METHODS:
            for code, response in item.get(method, {}).get("responses", {}).items():
                if code >= "400":
                    said.setdefault(code, Counter())[response.get("description", "")] += 1
    lines = ["| status | meaning (as most operations say it) |", "|---|---|"]
    lines += [f"| `{c}` | {_cell(said[c].most_common(1)[0][0])} |" for c in sorted(said)]
    return [*lines, ""]
