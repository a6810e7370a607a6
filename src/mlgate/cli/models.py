"""`mlgate models ...`: what is registered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlgate.cli.context import console, services
from mlgate.errors import InvalidInput
from mlgate.registry import aliases as lifecycle
from mlgate.registry import service
from mlgate.training.undefined import (
    metric_rows,
    stated,
    stated_field,
    stated_optional,
    stated_or_blank,
    stated_range,
)

app = typer.Typer(help="List and inspect registered models.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List registered models."""
    models = services(ctx).registry.models()
    if not models:
        console.print("No models yet. Train one with `mlgate train`.")
        return
    table = Table("name", "task", "target", "latest version", "created")
    for m in models:
        table.add_row(
            m.name, m.task, m.target, str(m.latest_version), f"{m.created_at:%Y-%m-%d %H:%M}"
        )
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, model: str) -> None:
    """Show a model's versions with their metrics, lineage and input schema."""
    registered, versions = services(ctx).registry.versions(model)
    console.print(f"[bold]{registered.name}[/]: {registered.task} of {registered.target!r}")
    if registered.description:
        console.print(registered.description)
    if registered.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in registered.tags.items()))
    table = Table("version", "algorithm", "rows", "data sha256", "created")
    for v in versions:
        table.add_row(
            str(v.number),
            v.algorithm,
            f"{v.lineage.n_rows:,}",
            v.lineage.data_sha256[:12],
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    recent = versions[-6:]
    rows_of = {
        v.number: {
            r["name"]: r for r in metric_rows(v.metrics, (v.report or {}).get("evaluation", {}))
        }
        for v in recent
    }
    names = list(dict.fromkeys(k for v in recent for k in rows_of[v.number]))
    if names:
        metrics = Table("holdout metric", *[f"v{v.number}" for v in recent])
        for name in names:
            found = [rows_of[v.number].get(name) for v in recent]
            cells = ["" if r is None else stated(r["value"], ".4f", r["reason"]) for r in found]
            metrics.add_row(name, *cells)
        console.print(metrics)
    if versions:
        latest = versions[-1]
        lineage = latest.lineage
        rows_from = f"table {lineage.table}" if lineage.table else f"query {lineage.query}"
        origin = f"{lineage.source_name} ({lineage.source_url})"
        who = f" by {lineage.trained_by}" if lineage.trained_by else ""
        console.print(f"v{latest.number} trained{who} from {origin}, {rows_from}")
        console.print(f"artifact {latest.artifact.format} sha256 {latest.artifact.sha256}")
        libraries = ", ".join(f"{k} {v}" for k, v in latest.library_versions.items())
        console.print(f"libraries: {libraries}")
        schema = ", ".join(f"{c.name} ({c.type})" for c in latest.columns)
        console.print(f"input columns: {schema}")
        if latest.classes is not None:
            console.print(f"classes: {', '.join(map(str, latest.classes))}")


@app.command("report")
def report(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL or MODEL@VERSION, e.g. churn@3.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the HTML report.")
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(help="Also write each plot as a PNG into this folder (e.g. for slides)."),
    ] = None,
) -> None:
    """Summarise a version in the terminal and write its HTML report with plots."""
    registry = services(ctx).registry
    name, number, alias = service.parse_ref(ref)
    version = registry.resolve(name, number, alias)
    details = version.report or {}
    evaluation = details.get("evaluation", {})
    console.print(
        f"[bold]{version.ref}[/]: {version.algorithm} ({version.task} of {version.target!r}), "
        f"{version.lineage.n_rows:,} rows"
    )
    for warning in details.get("warnings", []):  # collinearity: before any number is read
        console.print(f"[bold yellow]warning[/] {warning}")
    from mlgate.training.evaluate import metrics_heading

    metrics = Table("metric", metrics_heading(evaluation), "95% interval", "baseline")
    for row in metric_rows(version.metrics, evaluation):
        interval = row["interval"]
        metrics.add_row(
            row["name"],
            stated(row["value"], ".4f", row["reason"]),
            f"{stated(interval[0], '.4f')} – {stated(interval[1], '.4f')}" if interval else "",
            stated_or_blank(row["baseline"], ".4f", row["reason"]),
        )
    console.print(metrics)
    for note in details.get("notes", []):
        console.print(f"[yellow]note[/] {note}")
    coefficients = details.get("coefficients", [])
    if coefficients:
        console.print(_coefficient_table(coefficients))
    for line in details.get("reading", []):
        console.print(f"• {line}")
    for label, words in details.get("indicative_terms", {}).items():
        console.print(f"words pointing to {label}: " + ", ".join(w for w, _ in words))
    permutation = details.get("importance", {}).get("permutation", {})
    if permutation:
        top = sorted(permutation.items(), key=lambda kv: -abs(kv[1]))[:5]
        console.print(
            "most important inputs: " + ", ".join(f"{k} ({stated(v, '.3f')})" for k, v in top)
        )
    page = registry.attachment(version, "report.html")
    target = output or Path(f"{version.model_name}-v{version.number}-report.html")
    target.write_bytes(page.replace(b"<!--mlgate:version-->", f"v{version.number}".encode()))
    console.print(f"HTML report with {len(details.get('plots', []))} plots: {target}")
    if plots is not None:
        from mlgate.training.report import plot_files

        plots.mkdir(parents=True, exist_ok=True)
        for file_name, image in plot_files(page).items():
            (plots / file_name).write_bytes(image)
        console.print(f"plots as PNG files: {plots}/")


@app.command("card")
def card(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@N (or MODEL for what it serves now).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the card here, not to stdout.")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="md (Markdown), json or html.")] = "md",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Edit a field: intended_use=TEXT or owner=NAME (repeatable)."),
    ] = None,
    slices: Annotated[
        str | None,
        typer.Option(
            help="Compute each slice's metrics on the holdout for these columns, e.g. "
            "region,age_band (numeric columns in quantile bins); kept with the card."
        ),
    ] = None,
) -> None:
    """The version's model card: intended use and owner, data, features, metrics with
    intervals and per slice, explanations, limitations, monitoring, aliases, integrity."""
    import orjson

    from mlgate.cards import render

    if format_ not in ("md", "json", "html"):
        raise InvalidInput(f"--format is md, json or html; not {format_!r}")
    cards = services(ctx).cards
    name, number, alias = service.parse_ref(ref)
    fields = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--set takes FIELD=VALUE, e.g. owner=risk-team; got {item!r}")
        fields[key.strip()] = value
    columns = slice_columns(slices) if slices else []
    cards.annotate(name, number, fields, columns, actor=_actor(), alias=alias)
    found = cards.card(name, number, alias)
    if format_ == "json":
        text = orjson.dumps(found.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
    elif format_ == "html":
        text = render.html_page(found)
    else:
        text = render.markdown(found)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"model card of {found.ref}: {output}")


def slice_columns(given: str) -> list[str]:
    """`region,age_band` as column names."""
    return [c.strip() for c in given.split(",") if c.strip()]


@app.command("bom")
def bom(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@N (or MODEL for what it serves now).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write it here, not to stdout.")
    ] = None,
) -> None:
    """The version's ML bill of materials: a CycloneDX 1.6 JSON document (the model with its
    card, the training data snapshot, every library), checked against CycloneDX's schema."""
    import orjson

    name, number, alias = service.parse_ref(ref)
    document = services(ctx).cards.bom(name, number, alias)
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"CycloneDX {document['specVersion']} ML-BOM of {ref}: {output}")


@app.command("dossier")
def dossier(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@N (or MODEL for what it serves now).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip to write.")],
) -> None:
    """The version's documentation dossier: its card, ML-BOM, signature and its verification,
    full report, lineage, alias history, audit trail, monitoring history and log retention,
    laid out along the EU AI Act's Annex IV (INDEX.md), with a manifest of sha256s."""
    name, number, alias = service.parse_ref(ref)
    archive = services(ctx).cards.dossier(name, number, alias)
    output.write_bytes(archive)
    console.print(f"dossier of {ref} ({len(archive):,} bytes): {output}")


def _actor() -> str:
    from mlgate.cli.training import cli_actor

    return cli_actor()


@app.command("promote")
def promote(
    ctx: typer.Context,
    model: str,
    version: Annotated[str, typer.Argument(help="The version number, e.g. 3 or v3.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "production",
    reason: Annotated[str, typer.Option(help="Why, for the history.")] = "",
    require_better: Annotated[
        bool,
        typer.Option(
            help="Refuse unless the version significantly beats the alias's current one (an "
            "unset alias: what the bare model name serves today)."
        ),
    ] = False,
    alpha: Annotated[float, typer.Option(help="Significance level for --require-better.")] = 0.05,
) -> None:
    """Point an alias (production by default) at a version."""
    registry = services(ctx).registry
    number = lifecycle.parse_alias_target(version)
    # A version whose artifact fails its checks is never promoted (Registry.load).
    if require_better:
        guarded = registry.promote_if_better(
            model, number, alias, alpha=alpha, actor=_actor(), reason=reason
        )
        console.print(f"compared with: {guarded.baseline.why}")
        if guarded.comparison:
            _print_comparison(guarded.comparison.to_json())
        event = guarded.event
    else:
        event = registry.promote(model, number, alias, actor=_actor(), reason=reason)
    before = f"v{event.from_version}" if event.from_version else "nothing"
    console.print(f"{model}@{alias}: {before} -> v{event.to_version}")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    model: str,
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "production",
    reason: Annotated[str, typer.Option(help="Why, for the history.")] = "",
) -> None:
    """Move an alias back to the version it pointed at before (again to go further back)."""
    event = services(ctx).registry.rollback(model, alias, actor=_actor(), reason=reason)
    console.print(f"{model}@{alias}: v{event.from_version} -> v{event.to_version} (rolled back)")


@app.command("aliases")
def aliases(ctx: typer.Context, model: str) -> None:
    """List a model's aliases, with each one's history."""
    registry = services(ctx).registry
    targets = registry.aliases(model)
    if not targets:
        console.print(f"{model} has no aliases; `mlgate models promote {model} N` makes one")
        return
    table = Table("alias", "version", "moves (oldest first)")
    for alias, number in targets.items():
        moves = registry.history(model, alias)
        trail = ", ".join(
            f"{e.kind} v{e.to_version} by {e.actor} {e.at:%Y-%m-%d %H:%M}"
            + (f" ({e.reason})" if e.reason else "")
            for e in moves
        )
        table.add_row(alias, f"v{number}", trail)
    console.print(table)


@app.command("archive")
def archive(ctx: typer.Context, model: str, version: str) -> None:
    """Take a version out of service (kept, not servable); refused while an alias points at it."""
    archived = services(ctx).registry.archive(model, lifecycle.parse_alias_target(version))
    console.print(f"archived {archived.ref}")


@app.command("retire")
def retire(
    ctx: typer.Context,
    model: str,
    version: str,
    on: Annotated[
        datetime | None, typer.Option(help="When it leaves service (UTC); omit to cancel.")
    ] = None,
) -> None:
    """Announce a version's end of service: consumers pinned to it get Deprecation and Sunset
    headers from now on."""
    from datetime import UTC

    at = None if on is None else on if on.tzinfo else on.replace(tzinfo=UTC)
    found = services(ctx).registry.retire(model, lifecycle.parse_alias_target(version), at)
    when = f"retires on {at:%Y-%m-%d %H:%M} UTC" if at else "is no longer scheduled to retire"
    console.print(f"{found.ref} {when}")


@app.command("retrain")
def retrain(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MODEL or MODEL@VERSION (default: the latest).")],
    from_version: Annotated[
        int | None,
        typer.Option(help="Reproduce version N from the rows stored with it."),
    ] = None,
) -> None:
    """Train a new version with the same settings: on today's rows of the same source, or, with
    --from-version, on the exact rows version N was trained on."""
    from mlgate.cli.training import print_result, run_training
    from mlgate.training.service import retrain_spec

    name, number, alias = service.parse_ref(model)
    version = services(ctx).registry.resolve(name, from_version or number, alias)
    spec = retrain_spec(version, from_snapshot=from_version is not None, actor=_actor())
    print_result(run_training(ctx, spec))


@app.command("compare")
def compare(
    ctx: typer.Context,
    model: str,
    a: Annotated[str, typer.Argument(help="The baseline version, e.g. 3.")],
    b: Annotated[str, typer.Argument(help="The candidate version, e.g. 5.")],
    alpha: Annotated[float, typer.Option(help="Significance level of the verdict.")] = 0.05,
) -> None:
    """Compare two versions on the candidate's holdout rows: metrics side by side, a paired
    bootstrap interval of the difference, a paired test, and a verdict (stored)."""
    result = services(ctx).registry.compare(
        model, lifecycle.parse_alias_target(a), lifecycle.parse_alias_target(b), alpha=alpha
    )
    _print_comparison(result.to_json())


def _print_comparison(result: dict[str, Any]) -> None:
    table = Table(
        f"{result['model']} on {result['n_rows']:,} holdout rows",
        f"v{result['a']}",
        f"v{result['b']}",
    )
    table.add_row(
        result["metric"], stated(result["value_a"], ".4f"), stated(result["value_b"], ".4f")
    )
    console.print(table)
    low, high = result["interval"]
    console.print(
        f"difference (v{result['b']} - v{result['a']}): {stated(result['difference'], '+.4f')}, "
        f"95% paired bootstrap interval [{stated(low, '+.4f')}, {stated(high, '+.4f')}]"
    )
    console.print(
        f"{result['test']}: p = {stated(result['p_value'], '.3g')} (alpha {result['alpha']})"
    )
    console.print(f"[bold]verdict[/]: {result['verdict']}")


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL (the model) or MODEL@N (one version).")],
    tags: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs; KEY= removes a tag.")],
) -> None:
    """Add or remove tags on a model or a version."""
    name, number, _ = service.parse_ref(ref)
    pairs = {}
    for pair in tags:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"{pair!r}: write KEY=VALUE (KEY= removes the tag)")
        pairs[key.strip()] = value.strip()
    services(ctx).registry.annotate(name, number, tags=pairs)
    console.print(f"tagged {ref}")


@app.command("describe")
def describe(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL or MODEL@N.")],
    text: Annotated[str, typer.Argument(help="The description.")],
) -> None:
    """Set the description of a model or a version."""
    name, number, _ = service.parse_ref(ref)
    services(ctx).registry.annotate(name, number, description=text)
    console.print(f"described {ref}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    model: str,
    version: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a version and its files (refused while an alias points at it)."""
    number = lifecycle.parse_alias_target(version)
    if not yes and not typer.confirm(f"Delete {model}@v{number} and its files?"):
        raise typer.Exit(1)
    deleted = services(ctx).registry.delete_version(model, number)
    console.print(f"deleted {deleted.ref}")


@app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@N (or MODEL for what it serves now).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (.zip, .onnx or .sql).")
    ] = None,
    snapshot: Annotated[bool, typer.Option(help="Include the training rows.")] = True,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="bundle (a portable zip), onnx (one checked graph) or sql (one checked query).",
        ),
    ] = "bundle",
    dialect: Annotated[
        str, typer.Option(help="With --format sql: sqlite, duckdb, postgresql or mysql.")
    ] = "postgresql",
    table: Annotated[
        str | None,
        typer.Option(
            help="With --format sql: the table the query reads (default: the one it "
            "was trained on)."
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key", help="With --format sql: a column the query answers first (repeat for more)."
        ),
    ] = None,
    check_source: Annotated[
        str | None,
        typer.Option(
            help="With --format sql: the source whose server checks PostgreSQL or "
            "MySQL SQL (default: the version's own)."
        ),
    ] = None,
    view: Annotated[
        str | None,
        typer.Option(help="With --format sql: write CREATE VIEW of this name AS the query."),
    ] = None,
    function: Annotated[
        str | None,
        typer.Option(
            help="With --format sql: write the query as a function of this name, checked by "
            "calling it on the engine (PostgreSQL: a SQL function of a table's row; MySQL: a "
            "stored function of the input columns answering the prediction; DuckDB: a table "
            "macro; SQLite has none)."
        ),
    ] = None,
) -> None:
    """Write a version as a portable bundle (model, report, rows; sha256 of every file), as
    an ONNX graph of its preprocessing and model, or as one SQL query scoring a table where it
    lies; the graph and the query are checked against the version on its holdout rows first."""
    registry = services(ctx).registry
    name, number, alias = service.parse_ref(ref)
    version = registry.resolve(name, number, alias)
    if format_ not in ("bundle", "onnx", "sql"):
        raise InvalidInput(f"--format is bundle, onnx or sql, not {format_!r}")
    if format_ == "sql":
        if function is not None and view is not None:
            raise InvalidInput("--view and --function write one file each: ask for one")
        with console.status(f"writing {version.ref} as {dialect} SQL and checking it"):
            sql_done = registry.export_sql(name, version.number, dialect=dialect, table=table,
                                       key=tuple(key or ()), check_source=check_source,
                                       view=view, function=function)  # fmt: skip
        sql_path = output or Path(f"{name}-v{version.number}.{dialect}.sql")
        header = "".join(f"-- {line}\n" for line in (
            f"{version.ref} as {dialect} SQL, written by mlgate", sql_done.note))  # fmt: skip
        fc = sql_done.function_conformance
        if fc is not None:
            header += f"-- the function: checked on {fc.engine} against {fc.rows_compared:,} rows\n"
        sql_path.write_text(
            header + (sql_done.function_sql or sql_done.view_sql or sql_done.sql) + ";\n"
        )
        console.print(f"exported {version.ref} to {sql_path} ({len(sql_done.sql):,} characters): "
                      f"{sql_done.note}")  # fmt: skip
        return
    if format_ == "onnx":
        with console.status(f"converting {version.ref} to ONNX and checking it"):
            done = registry.export_onnx(name, version.number)
        path = output or Path(f"{name}-v{version.number}.onnx")
        path.write_bytes(done.data)
        console.print(f"exported {version.ref} to {path} ({len(done.data):,} bytes): {done.note}")
        return
    data = registry.export_bundle(name, version.number, with_snapshot=snapshot)
    target = output or Path(f"{name}-v{version.number}.mlgate.zip")
    target.write_bytes(data)
    console.print(f"exported {version.ref} to {target} ({len(data):,} bytes)")


@app.command("import")
def import_(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="A bundle from `mlgate models export`.")],
    as_: Annotated[str | None, typer.Option("--as", help="Register under this model name.")] = None,
    trust_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust-key",
            help="A PEM public key whose signature you trust for this bundle (the exporting "
            "server's; repeat for more), besides this server's own and MLGATE_TRUSTED_KEYS.",
        ),
    ] = None,
) -> None:
    """Register a bundle as the next version of its model (or of --as); refused if any file
    does not match its sha256, or its signature is by a key this server does not trust."""
    data, keys = _read(bundle), [_read(path) for path in trust_key or ()]
    version = services(ctx).registry.import_bundle(data, model_name=as_, trust_keys=keys)
    signed_by = ((version.report or {}).get("imported_from") or {}).get("signed_by")
    if signed_by is None:
        console.print("[yellow]warning[/] the bundle is unsigned (exported from a version "
                      "registered before signing); it was imported and signed here")  # fmt: skip
    else:
        console.print(f"signature verified: signed by key {signed_by[:16]}")
    console.print(f"imported as {version.ref}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@N (or MODEL for what it serves now).")],
) -> None:
    """Say who signed a version (their key's fingerprint) and when, and whether its signature
    and every one of its files verify. Exits 1 when they do not."""
    name, number, alias = service.parse_ref(ref)
    found = services(ctx).signing.verify(name, number, alias)
    if found.state == "unsigned":
        console.print(f"[yellow]unsigned[/] {found.ref}: registered before signing; "
                      f"`mlgate models sign {ref}` signs it")  # fmt: skip
        raise typer.Exit(1)
    mark = "[green]verified[/]" if found.ok else f"[red]{found.state}[/]"
    when = found.signed_at.isoformat(timespec="seconds") if found.signed_at else "?"
    console.print(f"{mark} {found.ref} signed by key {found.key_id} on {when} "
                  f"(registered by {found.signed_by})")  # fmt: skip
    for file_name, digest in sorted(found.files.items()):
        console.print(f"  {file_name}  sha256 {digest}")
    for problem in found.problems:
        console.print(f"  [red]problem[/] {problem}")
    if not found.ok:
        raise typer.Exit(1)


@app.command("sign")
def sign(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(help="MODEL@N, or MODEL for each of its unsigned versions.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every unsigned version.")] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again", help="Re-sign signed versions too, with the current key (key rotation)."
        ),
    ] = False,
) -> None:
    """Sign versions registered before signing (each file must still match the sha256 recorded
    when it was registered), or re-sign them with a new key (--again)."""
    if (ref is None) == (not all_):
        raise InvalidInput("name a version (churn@3) or a model, or pass --all")
    name, number, alias = service.parse_ref(ref) if ref else (None, None, None)
    if alias is not None:
        raise InvalidInput("name a version by its number (churn@3), not an alias")
    made = services(ctx).signing.sign(name, number, actor=_actor(), again=again)
    for signature in made:
        console.print(
            f"signed {signature.model_name}@v{signature.number} with key {signature.key_id[:16]}"
        )
    left = "" if made or again else " (those already signed stay as they are; --again re-signs)"
    console.print(f"{len(made)} version(s) signed{left}")


def _coefficient_table(rows: list[dict[str, Any]], limit: int = 30) -> Table:
    """The statsmodels twin's coefficients, the strongest first (by |t| or |z|)."""
    multiclass = any(r.get("outcome") for r in rows)
    table = Table(
        *(["class"] if multiclass else []),
        "term", "estimate", "std. error", "95% interval", "p", "standardized",
        title="coefficients in the data's units (with standard errors)",
    )  # fmt: skip
    strongest = sorted(rows, key=lambda r: -abs(r.get("statistic") or 0.0))  # undefined: last
    for r in strongest[:limit]:
        cells = [
            r["term"],
            stated_field(r, "estimate", ".4g"),
            stated_field(r, "std_error", ".3g"),
            stated_range(r, "low", "high", ".3g"),
            stated_field(r, "p_value", ".2g"),
            stated_optional(r, "standardized", ".4g"),
        ]
        table.add_row(*([r.get("outcome", "")] if multiclass else []), *cells)
    if len(rows) > limit:
        table.caption = f"the {limit} strongest of {len(rows)}; all in the HTML report"
    return table


@app.command("import-file")
def import_file(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model to add a version to (made if new).")],
    path: Annotated[
        Path,
        typer.Argument(
            help="An ONNX graph (.onnx), XGBoost (.ubj/.json), LightGBM (.txt), CatBoost "
            "(.cbm) or skops (.skops) file, or an MLflow model directory."
        ),
    ],
    input_example: Annotated[
        Path | None,
        typer.Option(
            help="Rows (.csv/.parquet) of the model's inputs: names its columns "
            "where the model does not, and is the drift reference without a holdout."
        ),
    ] = None,  # fmt: skip
    holdout: Annotated[
        str | None,
        typer.Option(
            help="Labelled rows to evaluate it on: a .csv/.parquet file, or "
            "SOURCE:TABLE of a registered source."
        ),
    ] = None,  # fmt: skip
    task: Annotated[
        str | None, typer.Option(help="classification or regression, where the model is silent.")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="The class labels in the model's order, comma-separated.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="The name of what it predicts (the holdout's label column).")
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            help="A type a skops file may hold beyond the trust list (repeatable; "
            "recorded in the audit log)."
        ),
    ] = None,  # fmt: skip
) -> None:
    """Register a model trained elsewhere as the next version of MODEL. Nothing is unpickled:
    pickles, and MLflow flavors stored as pickles, are refused with how to save them safely."""
    from mlgate.access import audit
    from mlgate.archives import ArchiveLimits
    from mlgate.imports.files import read_path
    from mlgate.imports.service import ImportRequest, read_frame

    s = services(ctx)
    example = (
        None if input_example is None else read_frame(input_example.name, _read(input_example))
    )
    rows, holdout_name = None, ""
    if holdout is not None:
        rows, holdout_name = _holdout(s, holdout), holdout
    request = ImportRequest(
        model_name=model,
        model=read_path(path, ArchiveLimits.of(s.settings)),
        input_example=example,
        holdout=rows,
        holdout_name=holdout_name,
        task=task,
        classes=None if classes is None else [c.strip() for c in classes.split(",") if c.strip()],
        target=target,
        trust=tuple(trust or ()),
        actor=audit.local_actor(),
    )
    with console.status(f"importing {path.name}" + (", evaluating it" if rows is not None else "")):
        version = s.registry.import_model(request)
    kind = (version.report or {}).get("import", {}).get("kind", "")
    console.print(
        f"imported {path.name} ({kind}) as [bold]{version.ref}[/]: {version.task} of "
        f"{version.target!r}, columns {', '.join(c.name for c in version.columns)}"
    )
    evaluation = (version.report or {}).get("evaluation", {})
    for row in metric_rows(version.metrics, evaluation):
        console.print(f"  {row['name']} {stated(row['value'], '.4f', row['reason'])}")
    for note in (version.report or {}).get("notes", []):
        console.print(f"[yellow]note[/] {note}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _holdout(s: Any, given: str) -> Any:
    """The holdout's rows: a file, or SOURCE:TABLE of a registered source."""
    from mlgate.imports.service import read_frame

    path = Path(given)
    if path.exists() or ":" not in given:
        return read_frame(path.name, _read(path))
    source_name, _, table = given.partition(":")
    source = s.sources.open(source_name)
    try:
        return source.read_table(table)
    finally:
        source.close()
