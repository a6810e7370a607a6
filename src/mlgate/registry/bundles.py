"""Portable version bundles: one zip with a manifest, the model and its files, each with its
sha256. `import_bundle` refuses a bundle whose bytes do not match its manifest, or that passes
an archive limit (mlgate/archives.py: entries, sizes, expansion, names), before writing
anything.

A signed version's bundle carries its signature (SIGNATURE_FILE, the OpenSSF Model Signing
bundle over the same file names). Importing with a keyring checks it against the importing
side's trusted keys: a signature by a key it does not trust, or one that does not match the
files, is refused; an unsigned bundle (from a version registered before signing) is imported
unless `require_signature`. The imported version is signed again by the importing server
(`sign`), the exporter's key named in its report's imported_from."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import datetime
from typing import Any

from mlgate import __version__, archives
from mlgate.access.audit import audited
from mlgate.columns import Column
from mlgate.errors import ArtifactError, InvalidInput
from mlgate.registry import formats
from mlgate.registry.model import Artifact, Lineage, ModelVersion, RegisteredModel, check_name
from mlgate.registry.service import owner, resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.signing import envelope
from mlgate.signing.keys import Keyring
from mlgate.signing.model import SignVersion
from mlgate.uow import UnitOfWork

BUNDLE_FORMAT = 1
MODEL_FILE = "model"
SIGNATURE_FILE = "signature.sigstore.json"


def export_bundle(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    model_name: str,
    number: int,
    *,
    with_snapshot: bool = True,
    now: datetime,
) -> bytes:
    version = resolve_version(uow, model_name, number)
    files: dict[str, bytes] = {
        MODEL_FILE: _checked(artifacts, version.artifact.key, version.artifact.sha256)
    }
    for name, entry in ((version.report or {}).get("attachments") or {}).items():
        if name == "snapshot.parquet" and not with_snapshot:
            continue
        files[name] = _checked(artifacts, entry["key"], entry["sha256"])
    with uow:
        signature = uow.signatures.get(version.model_name, version.number)
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "exported_by": f"mlgate {__version__}",
        "exported_at": now.isoformat(),
        "version": _describe(version),
        "files": {name: formats.sha256_of(data) for name, data in files.items()},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in files.items():
            bundle.writestr(f"files/{name}", data)
        if signature is not None:
            bundle.writestr(SIGNATURE_FILE, signature.bundle)
    return out.getvalue()


@audited("models.import", lambda a: a["model_name"] or "(the bundle's own name)")
def import_bundle(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    data: bytes,
    *,
    model_name: str | None,
    now: datetime,
    limits: archives.ArchiveLimits | None = None,
    keyring: Keyring | None = None,
    require_signature: bool = False,
    sign: SignVersion | None = None,
) -> ModelVersion:
    """Register the bundle's version as the next version of `model_name` (default: its own).
    `limits`: what the zip may unpack to (default: archives.ArchiveLimits()). `keyring`: the
    keys whose signatures are trusted (None: the signature is not checked).
    """
    manifest, files, signature = _read(data, limits or archives.ArchiveLimits())
    described = manifest["version"]
    name = check_name("model", model_name or described["model_name"])
    if files[MODEL_FILE] and formats.sha256_of(files[MODEL_FILE]) != described["artifact_sha256"]:
        raise InvalidInput("the bundle's model does not match the sha256 its version records")
    signed_by = None
    if keyring is not None:
        signed_by = _check_signature(signature, files, keyring, require=require_signature)
    stem = f"{name}/{uuid.uuid4().hex}"
    written: list[str] = []
    report = dict(described.get("report") or {})
    report["imported_from"] = {
        "model": described["model_name"],
        "version": described["number"],
        "exported_at": manifest["exported_at"],
        "signed_by": signed_by,
    }
    report["attachments"] = {}
    model_key = f"{stem}.{described['artifact_suffix']}"
    journal = [model_key, *(f"{stem}.{n}" for n in files if n != MODEL_FILE)]
    with uow:
        uow.models.add_pending(journal, owner(), now)
        uow.commit()
    try:
        artifacts.put(model_key, files[MODEL_FILE])
        written.append(model_key)
        for file_name, content in files.items():
            if file_name == MODEL_FILE:
                continue
            key = f"{stem}.{file_name}"
            artifacts.put(key, content)
            written.append(key)
            report["attachments"][file_name] = {"key": key, "sha256": formats.sha256_of(content)}
        with uow:
            model = uow.models.get(name)
            if model is None:
                model = RegisteredModel(
                    name, described["task"], described["target"], created_at=now
                )
                uow.models.add(model)
            elif (model.task, model.target) != (described["task"], described["target"]):
                raise InvalidInput(
                    f"model {name!r} is a {model.task} model of {model.target!r}; the bundle's "
                    "version is not. Import it under another name (--as)."
                )
            version = ModelVersion(
                model_name=name,
                number=model.latest_version + 1,
                task=described["task"],
                algorithm=described["algorithm"],
                target=described["target"],
                params=described["params"],
                metrics=described["metrics"],
                columns=tuple(Column.from_json(c) for c in described["columns"]),
                classes=None if described["classes"] is None else tuple(described["classes"]),
                lineage=Lineage.from_json(described["lineage"]),
                artifact=Artifact(
                    model_key,
                    described["artifact_format"],
                    described["artifact_sha256"],
                    len(files[MODEL_FILE]),
                ),
                library_versions=described["library_versions"],
                created_at=now,
                fit_seconds=described["fit_seconds"],
                report=report,
                description=described.get("description", ""),
                tags=described.get("tags", {}),
            )
            uow.models.add_version(version)
            if sign is not None:
                uow.signatures.put(sign(version))
            uow.models.remove_pending(journal)
            if version.description or version.tags:
                uow.models.annotate(
                    name, version.number, description=version.description, tags=version.tags
                )
            uow.commit()
    except BaseException:
        for key in written:
            artifacts.delete(key)
        with uow:
            uow.models.remove_pending(journal)
            uow.commit()
        raise
    return version


def _describe(version: ModelVersion) -> dict[str, Any]:
    report = {k: v for k, v in (version.report or {}).items() if k != "attachments"}
    suffix = version.artifact.key.rsplit("/", 1)[-1].split(".", 1)[1]
    return {
        "model_name": version.model_name,
        "number": version.number,
        "task": version.task,
        "target": version.target,
        "algorithm": version.algorithm,
        "params": version.params,
        "metrics": version.metrics,
        "columns": [c.to_json() for c in version.columns],
        "classes": None if version.classes is None else list(version.classes),
        "lineage": version.lineage.to_json(),
        "artifact_format": version.artifact.format,
        "artifact_sha256": version.artifact.sha256,
        "artifact_suffix": suffix,
        "library_versions": version.library_versions,
        "created_at": version.created_at.isoformat(),
        "fit_seconds": version.fit_seconds,
        "report": report,
        "description": version.description,
        "tags": version.tags,
    }


def _check_signature(
    signature: str | None, files: dict[str, bytes], keyring: Keyring, *, require: bool
) -> str | None:
    """The fingerprint of the trusted key that signed every file of the bundle; None for an
    unsigned bundle where that is allowed. Else InvalidInput, before anything is written."""
    if signature is None:
        if require:
            raise InvalidInput(
                "the bundle is unsigned (exported by an mlgate before signing, or from a version "
                "registered before it) and this server requires signatures; nothing was imported"
            )
        return None
    try:
        opened = envelope.open_bundle(signature, keyring)
    except envelope.Untrusted as exc:
        raise InvalidInput(
            f"the bundle is signed by key {exc.key_id[:16]}, which this server does not trust; "
            "pass the exporter's public key with --trust-key PATH (or add it to "
            "MLGATE_TRUSTED_KEYS) if you trust it. Nothing was imported."
        ) from None
    except envelope.Invalid as exc:
        raise InvalidInput(f"the bundle's signature does not verify ({exc}); nothing was imported"
                           ) from None  # fmt: skip
    wrong = sorted(
        n for n, content in files.items() if opened.files.get(n) != formats.sha256_of(content)
    )
    if wrong:
        raise InvalidInput(
            f"the bundle's {', '.join(wrong)} do(es) not match its signature; it was changed "
            "after it was signed, so nothing was imported"
        )
    return opened.key_id


def _read(
    data: bytes, limits: archives.ArchiveLimits
) -> tuple[dict[str, Any], dict[str, bytes], str | None]:
    try:
        with archives.open_zip(data, limits, what="the bundle") as bundle:
            manifest = json.loads(archives.read_entry(bundle, "manifest.json", limits))
            expected: dict[str, str] = manifest["files"]
            for name in expected:  # each becomes part of a stored file's key
                archives.check_name(name, what="the bundle's manifest")
                if "/" in name or name.startswith("."):
                    raise InvalidInput(
                        f"the bundle's manifest names a file {name[:80]!r}; bundle files are "
                        "plain names such as report.html"
                    )
            files = {
                name: archives.read_entry(bundle, f"files/{name}", limits) for name in expected
            }
            signature = (
                archives.read_entry(bundle, SIGNATURE_FILE, limits).decode()
                if SIGNATURE_FILE in bundle.namelist()
                else None
            )
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError) as exc:
        raise InvalidInput(f"not an mlgate bundle: {exc}") from None
    if manifest.get("bundle_format") != BUNDLE_FORMAT:
        raise InvalidInput(
            f"bundle format {manifest.get('bundle_format')!r} is not one this mlgate reads"
        )
    wrong = sorted(n for n, content in files.items() if formats.sha256_of(content) != expected[n])
    if wrong:
        raise InvalidInput(  # the caller's file, not our store: a 4xx, not a 500
            f"the bundle's {', '.join(wrong)} do(es) not match the sha256 in its manifest; "
            "it was changed or damaged, so nothing was imported"
        )
    if MODEL_FILE not in files:
        raise InvalidInput("the bundle holds no model")
    for name, content in files.items():  # a skops model is a zip of its own, loaded later
        if content.startswith(b"PK\x03\x04"):
            archives.open_zip(content, limits, what=f"the bundle's {name}").close()
    return manifest, files, signature


def _checked(artifacts: ArtifactStore, key: str, sha256: str) -> bytes:
    data = artifacts.get(key)
    if formats.sha256_of(data) != sha256:
        raise ArtifactError(f"{key} does not match its recorded sha256; `mlgate doctor` explains")
    return data
