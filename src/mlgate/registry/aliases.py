"""Aliases: named pointers at versions (production, staging, ...), moved by promotion and
rollback, with every move kept as history; and archiving versions out of service."""

from __future__ import annotations

from datetime import datetime

from mlgate.access.audit import audited
from mlgate.errors import Conflict, InvalidInput, NotFound
from mlgate.registry.model import AliasEvent, ModelVersion, check_alias
from mlgate.registry.store import ArtifactStore
from mlgate.uow import UnitOfWork


@audited("models.promote", "{model_name}@{number}")
def promote(
    uow: UnitOfWork,
    model_name: str,
    number: int,
    alias: str,
    *,
    actor: str,
    reason: str = "",
    now: datetime,
) -> AliasEvent:
    """Point `alias` at version `number` (creating the alias if new)."""
    check_alias(alias)
    with uow:
        version = _servable(uow, model_name, number)
        current = uow.models.aliases(model_name).get(alias)
        if current == number:
            raise Conflict(f"{alias} already points at {version.ref}")
        event = AliasEvent(model_name, alias, "promote", current, number, actor, reason, now)
        uow.models.move_alias(event)
        uow.commit()
    return event


@audited("models.rollback", "{model_name}@{alias}")
def rollback(
    uow: UnitOfWork, model_name: str, alias: str, *, actor: str, reason: str = "", now: datetime
) -> AliasEvent:
    """Move `alias` back to the version it pointed at before its current one; again to go
    further back. Archived versions on the way are skipped."""
    check_alias(alias)
    with uow:
        _model(uow, model_name)
        current = uow.models.aliases(model_name).get(alias)
        if current is None:
            raise NotFound(f"model {model_name!r} has no alias {alias!r}")
        targets = _stack(uow.models.alias_history(model_name, alias))[:-1]
        while targets:
            candidate = uow.models.get_version(model_name, targets[-1])
            if candidate is not None and candidate.archived_at is None:
                break
            targets.pop()
        if not targets:
            raise Conflict(f"{alias} of {model_name!r} has no earlier version to roll back to")
        event = AliasEvent(model_name, alias, "rollback", current, targets[-1], actor, reason, now)
        uow.models.move_alias(event)
        uow.commit()
    return event


def aliases_of(uow: UnitOfWork, model_name: str) -> dict[str, int]:
    with uow:
        _model(uow, model_name)
        return uow.models.aliases(model_name)


def history(uow: UnitOfWork, model_name: str, alias: str) -> list[AliasEvent]:
    with uow:
        _model(uow, model_name)
        return uow.models.alias_history(model_name, alias)


@audited("models.archive", "{model_name}@{number}")
def archive(uow: UnitOfWork, model_name: str, number: int, *, now: datetime) -> ModelVersion:
    """Take a version out of service (kept, not servable); refused while an alias points at it."""
    with uow:
        version = _version(uow, model_name, number)
        pointing = sorted(a for a, v in uow.models.aliases(model_name).items() if v == number)
        if pointing:
            raise Conflict(
                f"{version.ref} is the target of {', '.join(pointing)}; promote another version "
                "there (or roll back) first"
            )
        uow.models.archive(model_name, number, now)
        uow.commit()
    return version


@audited("models.retire", "{model_name}@{number}")
def schedule_retirement(
    uow: UnitOfWork, model_name: str, number: int, at: datetime | None
) -> ModelVersion:
    """Announce (or, with None, cancel) the end of a version's service: consumers pinned to it
    get Deprecation and Sunset headers from now on."""
    with uow:
        version = _version(uow, model_name, number)
        uow.models.schedule_retirement(model_name, number, at)
        uow.commit()
    return version


def _stack(events: list[AliasEvent]) -> list[int]:
    """The alias's targets as a stack: a promotion pushes, a rollback pops."""
    stack: list[int] = []
    for event in events:
        if event.kind == "promote":
            stack.append(event.to_version)
        else:
            while stack and stack[-1] != event.to_version:
                stack.pop()
    return stack


def _model(uow: UnitOfWork, model_name: str) -> None:
    if uow.models.get(model_name) is None:
        raise NotFound(f"no model named {model_name[:128]!r}")


def _version(uow: UnitOfWork, model_name: str, number: int) -> ModelVersion:
    _model(uow, model_name)
    version = uow.models.get_version(model_name, number)
    if version is None:
        raise NotFound(f"model {model_name!r} has no version {number}")
    return version


def _servable(uow: UnitOfWork, model_name: str, number: int) -> ModelVersion:
    version = _version(uow, model_name, number)
    if version.archived_at is not None:
        raise Conflict(f"{version.ref} is archived; it cannot be promoted or served")
    return version


def parse_alias_target(text: str) -> int:
    digits = text.removeprefix("v")
    if not digits.isdecimal() or len(digits) > 9 or int(digits) < 1:
        raise InvalidInput(f"{text!r} is not a version number; write 3 or v3")
    return int(digits)


@audited(
    "models.annotate",
    lambda a: f"{a['model_name']}@{a['number']}" if a["number"] else a["model_name"],
)
def annotate(
    uow: UnitOfWork,
    model_name: str,
    number: int | None,
    *,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Set a description and add tags (an empty value removes one) on a model or a version."""
    for key, value in (tags or {}).items():
        if not key or len(key) > 64 or len(value) > 256:
            raise InvalidInput("tag keys are 1-64 characters and values at most 256")
    if description is not None and len(description) > 4000:
        raise InvalidInput("a description is at most 4,000 characters")
    with uow:
        _model(uow, model_name)
        uow.models.annotate(model_name, number, description=description, tags=tags or {})
        uow.commit()


@audited("models.delete_version", "{model_name}@{number}")
def delete_version(
    uow: UnitOfWork, artifacts: ArtifactStore, model_name: str, number: int
) -> ModelVersion:
    """Delete a version's row, then its files; refused while an alias points at it. Its number
    is never given to another version."""
    with uow:
        version = _version(uow, model_name, number)
        pointing = sorted(a for a, v in uow.models.aliases(model_name).items() if v == number)
        if pointing:
            raise Conflict(
                f"{version.ref} is the target of {', '.join(pointing)}; move the alias first"
            )
        uow.models.delete_version(model_name, number)
        uow.commit()
    for key in files_of(version):
        artifacts.delete(key)
    return version


def files_of(version: ModelVersion) -> list[str]:
    """The keys of every file a version owns in the artifact store."""
    attachments = ((version.report or {}).get("attachments") or {}).values()
    return [version.artifact.key, *(entry["key"] for entry in attachments)]
