"""A version's documentation dossier (issue 38): everything mlgate records of it, in one zip laid
out along the headings of the EU AI Act's Annex IV (the technical documentation of Article 11),
with a manifest of every file's sha256.

Reproducible: the same version, in the same state, gives the same zip bytes apart from its
timestamp, which is only in the zip's comment. Entries are sorted, each dated 1980-01-01 with
the same permissions, JSON is written with sorted keys, and the ML-BOM inside takes a serial
number made from its own content and the version's registration time as its timestamp (a
standalone `mlgate models bom` keeps CycloneDX's fresh serial per document).
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from mlgate.access.model import AuditEvent

DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
MANIFEST = "MANIFEST.sha256"
INDEX = "INDEX.md"

# Annex IV's headings, and the files of the dossier that answer each (None: what the provider
# must add, which mlgate does not record).
ANNEX_IV: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("1", "A general description of the AI system", ("card/card.md", "card/card.json",
     "bom.cdx.json"), "intended purpose and owner, the version, the task and the features; every "
     "library and version the model needs to run"),
    ("2", "A detailed description of the elements of the AI system and of the process for its "
     "development", ("lineage.json", "report/report.json", "report/report.html", "bom.cdx.json",
     "signature/model.sig", "signature/verification.json"), "the training data's source, query, "
     "snapshot sha256 and split; the algorithm and its parameters; validation and its metrics "
     "with intervals; the signature over the served files (integrity, cybersecurity)"),
    ("3", "Detailed information about the monitoring, functioning and control of the AI system",
     ("card/card.json", "monitoring.json", "report/report.json"), "capabilities and limits "
     "found by the report; accuracy per slice of the data (groups) with its gap to the whole; "
     "the monitoring settings, drift thresholds and checks"),
    ("4", "A description of the appropriateness of the performance metrics", (
     "report/report.json", "card/card.json"), "each metric with its confidence interval and the "
     "baseline it is compared with; the same per slice"),
    ("5", "A detailed description of the risk management system (Article 9)", (
     "card/card.json", "monitoring.json"), "mlgate supplies the limitations and the monitoring "
     "alerts; the risk management system itself is the provider's to describe"),
    ("6", "A description of relevant changes made through the system's lifecycle", (
     "history/aliases.json", "history/audit.json"), "every move of an alias to or from this "
     "version (who, when, why) and every recorded action on the version and its model"),
    ("7", "The harmonised standards applied, or the other solutions adopted", (), "not recorded "
     "by mlgate: the provider states them"),
    ("8", "A copy of the EU declaration of conformity (Article 47)", (), "not recorded by "
     "mlgate: the provider adds it"),
    ("9", "The system in place to evaluate performance in the post-market phase (Article 72), "
     "with the post-market monitoring plan", ("monitoring.json", "retention.json"), "the "
     "monitoring settings and checks, and how long the logs of Article 12 are kept"),
)  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """What goes into a version's dossier, as the use case gathered it."""

    ref: str
    card: dict[str, Any]
    card_markdown: str
    bom: dict[str, Any]
    created_at: datetime
    signature_bundle: str | None
    verification: dict[str, Any]
    report: dict[str, Any]
    report_page: bytes | None
    lineage: dict[str, Any]
    alias_history: list[dict[str, Any]]
    audit: list[AuditEvent]
    monitoring: dict[str, Any]
    retention: dict[str, Any]


def build(evidence: Evidence, *, now: datetime) -> bytes:
    """The dossier's zip bytes; `now` goes only into the zip's comment."""
    files = contents(evidence)
    return pack(files, comment=f"mlgate dossier of {evidence.ref}, built {now.isoformat()}")


def contents(evidence: Evidence) -> dict[str, bytes]:
    """Every file of the dossier by its path, the index and the manifest included."""
    files: dict[str, bytes] = {
        "card/card.json": _json(evidence.card),
        "card/card.md": evidence.card_markdown.encode(),
        "bom.cdx.json": _json(steady_bom(evidence.bom, evidence.created_at)),
        "signature/verification.json": _json(evidence.verification),
        "report/report.json": _json(evidence.report),
        "lineage.json": _json(evidence.lineage),
        "history/aliases.json": _json(evidence.alias_history),
        "history/audit.json": _json([event_json(e) for e in evidence.audit]),
        "monitoring.json": _json(evidence.monitoring),
        "retention.json": _json(evidence.retention),
    }
    if evidence.signature_bundle is not None:
        files["signature/model.sig"] = evidence.signature_bundle.encode()
    if evidence.report_page is not None:
        files["report/report.html"] = evidence.report_page
    files[INDEX] = _index(evidence.ref, files).encode()
    files[MANIFEST] = manifest(files).encode()
    return files


def manifest(files: Mapping[str, bytes]) -> str:
    """`sha256sum -c` form: each file's sha256 and path, sorted by path."""
    return "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
        for name in sorted(files)
        if name != MANIFEST
    )


def check_manifest(archive: bytes) -> list[str]:
    """What does not match in a dossier: files missing from the manifest or the zip, and files
    whose sha256 differs (empty: it checks)."""
    problems = []
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        names = set(zipped.namelist()) - {MANIFEST}
        listed: dict[str, str] = {}
        for line in zipped.read(MANIFEST).decode().splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        for name in sorted(names | set(listed)):
            if name not in listed:
                problems.append(f"{name}: not in the manifest")
            elif name not in names:
                problems.append(f"{name}: in the manifest, not in the dossier")
            elif hashlib.sha256(zipped.read(name)).hexdigest() != listed[name]:
                problems.append(f"{name}: sha256 differs from the manifest's")
    return problems


def pack(files: Mapping[str, bytes], *, comment: str) -> bytes:
    """A zip of `files`, the same bytes for the same files: sorted, fixed dates and modes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zipped:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever builds it
            info.external_attr = 0o100644 << 16
            zipped.writestr(info, files[name], compresslevel=9)
        zipped.comment = comment.encode()[:65535]
    return out.getvalue()


def steady_bom(document: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """The BOM with a serial number made from its content, and the version's registration as
    its timestamp: the same version, the same BOM."""
    steady = {**document, "metadata": {**document.get("metadata", {})}}
    steady["metadata"]["timestamp"] = created_at.isoformat()
    steady.pop("serialNumber", None)
    digest = hashlib.sha256(_json(steady)).hexdigest()
    steady["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'mlgate:' + digest)}"
    return steady


def _index(ref: str, files: Mapping[str, bytes]) -> str:
    lines = [
        f"# Technical documentation of {ref}",
        "",
        "Laid out along Annex IV of the EU AI Act (Regulation (EU) 2024/1689): each heading, "
        "the files of this dossier that answer it, and what they hold. `MANIFEST.sha256` lists "
        "every file's sha256 (`sha256sum -c MANIFEST.sha256` checks them).",
        "",
    ]
    for number, heading, answers, what in ANNEX_IV:
        present = [f"`{name}`" for name in answers if name in files]
        lines += [f"## {number}. {heading}", ""]
        lines.append(f"Files: {', '.join(present)}." if present else "Files: none.")
        lines += [f"What: {what}.", ""]
    return "\n".join(lines)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "address": event.address,
        "result": event.result,
        "detail": event.detail,
    }


def _json(value: Any) -> bytes:
    return orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        default=str,
    )  # fmt: skip
