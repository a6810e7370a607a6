"""Checking the whole registry: every version's files exist and match their sha256, and every
stored file belongs to a version."""

from __future__ import annotations

from dataclasses import dataclass

from mlgate.access.audit import audited
from mlgate.errors import ArtifactError
from mlgate.registry import formats
from mlgate.registry.aliases import files_of
from mlgate.registry.store import ArtifactStore
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str


BATCHES = "batches/"  # consumers' batch files: the batch jobs own them (serving/batches.py)


def check_registry(uow: UnitOfWork, artifacts: ArtifactStore) -> tuple[int, list[Finding]]:
    """(number of versions checked, what is wrong with the fix to apply)."""
    findings: list[Finding] = []
    owned: set[str] = set()
    with uow:
        versions = [v for m in uow.models.all() for v in uow.models.versions(m.name)]
    for version in versions:
        expected = {version.artifact.key: version.artifact.sha256}
        for entry in ((version.report or {}).get("attachments") or {}).values():
            expected[entry["key"]] = entry["sha256"]
        owned.update(files_of(version))
        delete = f"`mlgate models delete {version.model_name} {version.number}`"
        for key, sha256 in expected.items():
            try:
                data = artifacts.get(key)
            except ArtifactError:
                findings.append(
                    Finding(
                        f"{version.ref}: {key} is missing", f"restore it from a backup, or {delete}"
                    )
                )
                continue
            if formats.sha256_of(data) != sha256:
                findings.append(
                    Finding(
                        f"{version.ref}: {key} does not match its sha256 (changed on disk)",
                        f"restore the original from a backup, or {delete}",
                    )
                )
    for key in artifacts.list_keys():
        if key not in owned and not key.startswith(BATCHES):
            findings.append(
                Finding(
                    f"{key} belongs to no version (left by an interrupted write or delete)",
                    "remove it: `mlgate doctor --fix` does",
                )
            )
    return len(versions), findings


@audited(
    "registry.remove_orphans",
    lambda a: "artifacts",
    detail=lambda a, removed: {"removed": len(removed), "keys": removed[:50]},
)
def remove_orphans(uow: UnitOfWork, artifacts: ArtifactStore) -> list[str]:
    """Delete the stored files that belong to no version; returns their keys."""
    with uow:
        owned = {
            k for m in uow.models.all() for v in uow.models.versions(m.name) for k in files_of(v)
        }
    orphans = [
        key for key in artifacts.list_keys() if key not in owned and not key.startswith(BATCHES)
    ]
    for key in orphans:
        artifacts.delete(key)
    return orphans
