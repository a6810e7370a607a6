"""A model card as Markdown (the CLI's default) and as a standalone HTML page."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from mlgate.cards.model import ModelCard

TOP_FEATURES = 10


def markdown(card: ModelCard) -> str:
    return "\n".join(_lines(card.to_json())) + "\n"


def html_page(card: ModelCard) -> str:
    """The card as one self-contained page: the Markdown's sections, as HTML."""
    e = html.escape
    body: list[str] = []
    table: list[str] = []
    for line in _lines(card.to_json()):
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-", ":"}:
                continue
            tag = "th" if not table else "td"
            table.append("<tr>" + "".join(f"<{tag}>{e(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("# "):
            body.append(f"<h1>{e(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{e(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{e(line[2:])}</li>")
        elif line:
            body.append(f"<p>{e(line)}</p>")
    if table:
        body.append("<table>" + "".join(table) + "</table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    )
    title = e(f"{card.ref}: model card")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")  # fmt: skip


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–"


def _interval(value: Any) -> str:
    return f"{value[0]:.4f} – {value[1]:.4f}" if value else "–"


def _lines(d: dict[str, Any]) -> Iterator[str]:
    yield f"# Model card: {d['model']} v{d['version']}"
    yield ""
    yield f"{d['algorithm']} ({d['task']} of `{d['target']}`), trained {d['created_at']}" + (
        f" by {d['trained_by']}" if d["trained_by"] else ""
    )
    if d["description"]:
        yield ""
        yield d["description"]
    yield ""
    yield "## Intended use and owner"
    yield ""
    unstated = "(not stated: mlgate models card --set intended_use=...)"
    # What people typed is text: a Markdown viewer would render HTML in it as markup.
    yield f"- intended use: {html.escape(d['intended_use'] or '', quote=False) or unstated}"
    yield f"- owner: {html.escape(d['owner'] or '', quote=False) or '(not stated)'}"
    if d["edited_by"]:
        yield f"- edited by {d['edited_by']} at {d['edited_at']}"
    data = d["data"]
    yield ""
    yield "## Data"
    yield ""
    yield f"- source: {data['source']} ({data['table'] or 'query: ' + str(data['query'])})"
    yield f"- snapshot: {data['n_rows']} rows, sha256 {data['snapshot_sha256']}"
    yield f"- held out: {data['test_size']:.0%} of the rows (seed {data['seed']})"
    if data["dropped_columns"]:
        yield f"- columns not used: {', '.join(data['dropped_columns'])}"
    yield ""
    yield "## Features"
    yield ""
    yield "| feature | type |"
    yield "|---|---|"
    for f in d["features"]:
        yield f"| {f['name']} | {f['type']} |"
    evaluation = d["evaluation"]
    yield ""
    yield f"## Metrics ({evaluation['method']}, {evaluation['n_rows']} rows)"
    yield ""
    yield "| metric | value | 95% interval |"
    yield "|---|---|---|"
    for name, found in evaluation["metrics"].items():
        yield f"| {name} | {_number(found['value'])} | {_interval(found['interval'])} |"
    if d["slices"]:
        yield ""
        yield "## Metrics per slice"
        yield ""
        yield (
            "Each slice of the holdout rows, its metrics with 95% bootstrap intervals and "
            "its gap to the whole holdout (slice − whole); small slices are flagged."
        )
        for group in d["slices"]["columns"]:
            yield ""
            binned = f" ({group['binned']})" if group["binned"] else ""
            yield f"### {group['column']}{binned}"
            yield ""
            names = list(d["slices"]["whole"])
            yield "| slice | rows | " + " | ".join(names) + " |"
            yield "|---|---|" + "---|" * len(names)
            for s in group["slices"]:
                cells = []
                for name in names:
                    value = s["metrics"].get(name)
                    if value is None:
                        cells.append("–")
                        continue
                    interval = s["intervals"].get(name)
                    gap = s["gaps"].get(name)
                    cells.append(
                        f"{value:.3f}" + (f" ({interval[0]:.3f}–{interval[1]:.3f})" if interval
                                          else "") + (f" Δ {gap:+.3f}" if gap is not None else "")
                    )  # fmt: skip
                flag = " (small)" if s["small"] else ""
                yield f"| {s['value']}{flag} | {s['n_rows']} | " + " | ".join(cells) + " |"
    if d["explanations"]:
        yield ""
        yield "## Explanations (global)"
        for kind, values in d["explanations"].items():
            top = sorted(values.items(), key=lambda kv: -abs(kv[1]))[:TOP_FEATURES]
            yield ""
            yield f"{kind}: " + ", ".join(f"{k} ({v:.3g})" for k, v in top)
    yield ""
    yield "## Limitations"
    yield ""
    for line in d["limitations"] or ["none found by the report"]:
        yield f"- {line}"
    yield ""
    yield "## Monitoring"
    yield ""
    monitoring = d["monitoring"]
    if monitoring is None:
        yield "- not monitored (mlgate monitor-config)"
    else:
        yield (
            f"- sampled: {monitoring['sample_rate']}; last check: {monitoring['state'] or 'none'}"
            + (f" at {monitoring['checked_at']}" if monitoring["checked_at"] else "")
        )
    yield ""
    yield "## Aliases"
    yield ""
    current = d["aliases"]["current"]
    yield f"- points here now: {', '.join(current) if current else 'none'}"
    for event in d["aliases"]["history"]:
        came = f"v{event['from_version']} → " if event["from_version"] else ""
        why = f" ({event['reason']})" if event["reason"] else ""
        moved = f"{event['kind']} {event['alias']} {came}v{event['to_version']}"
        yield f"- {event['at']}: {moved} by {event['actor']}{why}"
    yield ""
    yield "## Integrity"
    yield ""
    artifact = d["artifact"]
    size = f"{artifact['size_bytes']} bytes"
    yield f"- artifact: {artifact['format']}, {size}, sha256 {artifact['sha256']}"
    signature = d["signature"]
    if signature:
        yield (f"- signed with key {signature['key_id']} by {signature['signed_by']} at "
               f"{signature['signed_at']} (mlgate models verify)")  # fmt: skip
    else:
        yield "- unsigned"
    checked = d.get("verification")
    if checked and checked["state"] == "verified":
        yield "- signature checked now: the files are the ones signed"
    elif checked and checked["state"] != "unsigned":
        problems = "; ".join(checked["problems"]) or checked["state"]
        yield f"- **signature checked now: {checked['state']}**: {problems}"
    yield "- libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(d["libraries"].items()))
