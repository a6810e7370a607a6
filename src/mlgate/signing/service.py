"""Signing use cases: sign a version, verify it (fully, or as a load needs), sign old ones.

What a signature covers: every file of the version (the model artifact, named "model", and
each attachment: report, training snapshot, ...) by its sha256, under the version's name
(`churn@v3`), so a signature moved to another version's row does not verify there.

At load only the model's bytes are read: the loader checks the envelope with a trusted key,
the name, that the model's bytes hash to the signed digest, and that the digests recorded in
the database equal the signed ones (attachments are checked against those digests whenever
they are read). `verify_version` reads and hashes every file (`mlgate models verify`,
`mlgate doctor`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from mlgate.access.audit import audited
from mlgate.errors import ArtifactError, Conflict, SignatureError
from mlgate.registry import formats
from mlgate.registry.model import ModelVersion
from mlgate.registry.store import ArtifactStore
from mlgate.signing import envelope
from mlgate.signing.keys import Keyring, SigningKey
from mlgate.signing.model import MODEL_FILE, Signature, Verification
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.signing")


def signed_files(version: ModelVersion) -> dict[str, str]:
    """Each file of `version` by its signed name, with the sha256 recorded at registration."""
    attachments = (version.report or {}).get("attachments") or {}
    return {MODEL_FILE: version.artifact.sha256, **{n: e["sha256"] for n, e in attachments.items()}}


def sign_version(key: SigningKey, version: ModelVersion, *, actor: str, now: datetime) -> Signature:
    """A signature of `version`'s files as recorded (their bytes were just hashed, or checked)."""
    bundle = envelope.seal(key, version.ref, signed_files(version))
    return Signature(version.model_name, version.number, key.key_id, now, actor, bundle)


def check_signature(
    signature: Signature | None, keyring: Keyring, version: ModelVersion
) -> Verification:
    """The signature checked against the version's recorded digests (no file is read)."""
    if signature is None:
        return Verification(version.ref, "unsigned")
    found = Verification(
        version.ref, "invalid", signature.key_id, signature.signed_at, signature.signed_by
    )
    try:
        opened = envelope.open_bundle(signature.bundle, keyring)
    except envelope.Untrusted as exc:
        return replace(
            found, state="untrusted", key_id=exc.key_id,
            problems=(f"signed by key {exc.key_id[:16]}, which this server does not trust; add "
                      "its public key to MLGATE_TRUSTED_KEYS if it is yours",),
        )  # fmt: skip
    except envelope.Invalid as exc:
        return replace(found, problems=(str(exc),))
    problems = [f"the signature names {opened.subject}"] if opened.subject != version.ref else []
    problems += _differences(opened.files, signed_files(version), "recorded in the database")
    return replace(
        found, state="mismatch" if problems else "verified", key_id=opened.key_id,
        files=opened.files, problems=tuple(problems),
    )  # fmt: skip


def verify_version(
    uow: UnitOfWork, artifacts: ArtifactStore, keyring: Keyring, version: ModelVersion
) -> Verification:
    """The signature checked, and every file of the version read and hashed against it."""
    with uow:
        signature = uow.signatures.get(version.model_name, version.number)
    found = check_signature(signature, keyring, version)
    if found.state != "verified" and found.state != "mismatch":
        return found
    keys = {MODEL_FILE: version.artifact.key}
    for name, entry in ((version.report or {}).get("attachments") or {}).items():
        keys[name] = entry["key"]
    on_disk: dict[str, str] = {}
    problems = list(found.problems)
    for name, key in keys.items():
        try:
            on_disk[name] = formats.sha256_of(artifacts.get(key))
        except ArtifactError:  # reported below: signed but not in the artifact store
            continue
    problems += _differences(found.files, on_disk, "in the artifact store")
    problems = list(dict.fromkeys(problems))
    return Verification(
        found.ref, "mismatch" if problems else "verified", key_id=found.key_id,
        signed_at=found.signed_at, signed_by=found.signed_by, files=found.files,
        problems=tuple(problems),
    )  # fmt: skip


def check_load(
    uow: UnitOfWork, keyring: Keyring, version: ModelVersion, data: bytes, *, require: bool
) -> Verification:
    """Before `data` (the version's model) is built: the signature must be trusted and match;
    else SignatureError, logged. An unsigned version (registered before signing) loads with a
    warning, or is refused where `require` (MLGATE_REQUIRE_SIGNATURES)."""
    with uow:
        signature = uow.signatures.get(version.model_name, version.number)
    found = check_signature(signature, keyring, version)
    if found.state == "unsigned":
        if require:
            log.error("refused to load %s: it is unsigned", version.ref)
            raise SignatureError(
                f"{version.ref} is unsigned and MLGATE_REQUIRE_SIGNATURES is on; sign it with "
                f"`mlgate models sign {version.model_name}@{version.number}` if its files are "
                "the ones you registered"
            )
        log.warning("%s is unsigned (registered before signing); `mlgate models sign`", version.ref)
        return found
    problems = list(found.problems)
    if found.files and formats.sha256_of(data) != found.files.get(MODEL_FILE):
        problems.append("the model's bytes do not match the signed sha256")
    if found.state == "verified" and not problems:
        return found
    log.error("refused to load %s: %s", version.ref, "; ".join(problems))
    raise SignatureError(
        f"{version.ref} fails its signature check ({'; '.join(problems)}), so it will not be "
        "loaded; `mlgate doctor` lists what is wrong. Restore its files from a backup, or train "
        "a new version."
    )


@audited("models.sign", lambda a: ", ".join(v.ref for v in a["versions"])[:200] or "(none)")
def sign_existing(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    key: SigningKey,
    versions: list[ModelVersion],
    *,
    actor: str,
    now: datetime,
    again: bool = False,
) -> list[Signature]:
    """Sign the `versions` that have no signature (every one with `again`: re-signing with a new
    key before the old one stops being trusted). Each file must still match its recorded sha256:
    a signature vouches for files as they were registered."""
    made: list[Signature] = []
    for version in versions:
        with uow:
            if not again and uow.signatures.get(version.model_name, version.number) is not None:
                continue
        keys = {MODEL_FILE: version.artifact.key}
        for name, entry in ((version.report or {}).get("attachments") or {}).items():
            keys[name] = entry["key"]
        expected = signed_files(version)
        changed = [n for n, k in keys.items() if formats.sha256_of(artifacts.get(k)) != expected[n]]
        if changed:
            raise Conflict(
                f"{version.ref}: {', '.join(changed)} no longer match(es) the sha256 recorded at "
                "registration, so it will not be signed; `mlgate doctor` explains"
            )
        signature = sign_version(key, version, actor=actor, now=now)
        with uow:
            uow.signatures.put(signature)
            uow.commit()
        made.append(signature)
    return made


def _differences(signed: Mapping[str, str], other: Mapping[str, str], where: str) -> list[str]:
    out = []
    for name in sorted(set(signed) | set(other)):
        if name not in other:
            out.append(f"{name} is signed but not {where}")
        elif name not in signed:
            out.append(f"{name} is {where} but not signed")
        elif signed[name] != other[name]:
            out.append(f"{name} does not match its signed sha256 ({where})")
    return out
