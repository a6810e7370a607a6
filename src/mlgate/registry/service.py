"""Registry use cases: register a fitted model as the next version, find versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlgate.access.audit import audited
from mlgate.columns import Column
from mlgate.errors import ArtifactError, ConcurrentWrite, Conflict, InvalidInput, NotFound
from mlgate.processes import process_gone, this_process
from mlgate.registry import formats
from mlgate.registry.model import (
    PRODUCTION,
    Artifact,
    Lineage,
    ModelVersion,
    RegisteredModel,
    Task,
    check_name,
)
from mlgate.registry.store import ArtifactStore
from mlgate.signing.model import SignVersion
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class NewVersion:
    """What a training run hands the registry: a version but for its number and time."""

    task: Task
    target: str
    algorithm: str
    estimator: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    columns: Sequence[Column]
    classes: Sequence[Any] | None
    lineage: Lineage
    library_versions: dict[str, str]
    fit_seconds: float
    artifact_format: str = formats.SKOPS
    report: dict[str, Any] | None = None
    attachments: Mapping[str, bytes | Callable[[], bytes]] = field(default_factory=dict)


@audited("models.register_version", "model_name")
def register_version(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    new: NewVersion,
    *,
    model_name: str,
    now: datetime,
    sign: SignVersion | None = None,
) -> ModelVersion:
    """Store a fitted estimator as the next version of `model_name` (v1 for a new model).

    Crash-safe in three steps: the keys about to be written are journaled (committed); the
    artifact and each attachment (such as the HTML report) are written under fresh keys; then
    one transaction inserts the version row and clears the journal. A process killed anywhere
    leaves journaled files that `recover_writes` (run at every start) removes, so no row lacks
    its files and no file its row. Attachments are listed in report["attachments"] with their
    keys and sha256. An attachment may be a function that makes its bytes when they are
    written (a partitioned snapshot, one part in memory at a time). `sign` signs the version
    (signing/: every file by the sha256 just computed) in the transaction that inserts it.
    """
    check_name("model", model_name)
    task, target, artifact_format, attachments = (
        new.task, new.target, new.artifact_format, new.attachments
    )  # fmt: skip
    data = formats.dump(new.estimator, artifact_format)
    stem = f"{model_name}/{uuid.uuid4().hex}"
    suffix = "skops" if artifact_format == formats.SKOPS else f"{artifact_format}.zip"
    key = f"{stem}.{suffix}"
    written = [key, *(f"{stem}.{name}" for name in attachments)]
    report = dict(new.report or {})
    with uow:
        uow.models.add_pending(written, this_process(), now)
        uow.commit()
    try:
        crash_point("journaled")
        artifacts.put(key, data)
        crash_point("artifact written")
        for name, given in attachments.items():
            attachment_key = f"{stem}.{name}"
            content = given() if callable(given) else given
            artifacts.put(attachment_key, content)
            report.setdefault("attachments", {})[name] = {
                "key": attachment_key,
                "sha256": formats.sha256_of(content),
            }
        crash_point("attachments written")
        with uow:
            model = uow.models.get(model_name)
            if model is None:
                model = RegisteredModel(model_name, task, target, created_at=now)
                uow.models.add(model)
            elif model.task != task or model.target != target:
                raise InvalidInput(
                    f"model {model_name!r} is a {model.task} model of {model.target!r}; a new "
                    f"version must be too (this one is a {task} model of {target!r}). "
                    "Train it under another model name."
                )
            version = ModelVersion(
                model_name=model_name,
                number=model.latest_version + 1,
                task=task,
                algorithm=new.algorithm,
                target=target,
                params=new.params,
                metrics=new.metrics,
                columns=tuple(new.columns),
                classes=None if new.classes is None else tuple(new.classes),
                lineage=new.lineage,
                artifact=Artifact(key, artifact_format, formats.sha256_of(data), len(data)),
                library_versions=new.library_versions,
                created_at=now,
                fit_seconds=new.fit_seconds,
                report=report or None,
            )
            uow.models.add_version(version)
            if sign is not None:
                uow.signatures.put(sign(version))
            uow.models.remove_pending(written)
            crash_point("before commit")
            uow.commit()
        crash_point("committed")
    except BaseException as exc:
        for written_key in written:
            artifacts.delete(written_key)
        try:
            with uow:
                uow.models.remove_pending(written)
                uow.commit()
        except Exception:  # the next start's recover_writes clears the journal
            pass
        if isinstance(exc, ConcurrentWrite):
            raise InvalidInput(
                f"another version of {model_name!r} was registered at the same moment; "
                "run the command again"
            ) from None
        raise
    return version


# Tests set this to kill the process at a named point of register_version (see test_crashes).
CRASH_HOOK: Callable[[str], None] | None = None
STALE_AFTER = timedelta(hours=1)


def crash_point(name: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(name)


def recover_writes(uow: UnitOfWork, artifacts: ArtifactStore, *, now: datetime) -> list[str]:
    """Remove files journaled by writes whose process died (on this host: its pid is gone;
    elsewhere: older than STALE_AFTER); returns their keys."""
    with uow:
        pending = uow.models.pending()
    dead = [key for key, owner, since in pending if _dead(owner, since, now)]
    for key in dead:
        artifacts.delete(key)
    if dead:
        with uow:
            uow.models.remove_pending(dead)
            uow.commit()
    return dead


def owner() -> str:
    """This process, as journal entries name it: host:pid."""
    return this_process()


def _dead(owner: str, since: datetime, now: datetime) -> bool:
    return process_gone(owner, since, now, STALE_AFTER)


def list_models(uow: UnitOfWork) -> list[RegisteredModel]:
    with uow:
        return uow.models.all()


def get_versions(uow: UnitOfWork, model_name: str) -> tuple[RegisteredModel, list[ModelVersion]]:
    with uow:
        model = uow.models.get(model_name)
        if model is None:
            raise NotFound(f"no model named {model_name!r}; `mlgate models list` shows them")
        return model, uow.models.versions(model_name)


def resolve_version(
    uow: UnitOfWork, model_name: str, number: int | None, alias: str | None = None
) -> ModelVersion:
    """The version a request means: `number`, else the target of `alias`, else the target of
    the production alias if the model has one, else its latest version. Archived versions are
    not served."""
    with uow:
        model = uow.models.get(model_name)
        if model is None or model.latest_version == 0:
            raise NotFound(f"no model named {model_name[:128]!r}")
        if number is not None:
            wanted = number
        else:
            targets = uow.models.aliases(model_name)
            if alias is not None and alias not in targets:
                raise NotFound(f"model {model_name!r} has no alias {alias[:64]!r}")
            wanted = targets.get(alias or PRODUCTION, model.latest_version)
        version = uow.models.get_version(model_name, wanted)
        if number is None and (version is None or version.archived_at is not None):
            # The latest is archived or deleted: the newest version still in service answers.
            serving = [v for v in uow.models.versions(model_name) if v.archived_at is None]
            if not serving:
                raise Conflict(f"every version of {model_name!r} is archived")
            version = serving[-1]
    if version is None:
        raise NotFound(
            f"model {model_name!r} has no version {wanted}; its latest is {model.latest_version}"
        )
    if version.archived_at is not None:
        raise Conflict(f"{version.ref} is archived and no longer served")
    return version


def read_attachment(
    uow: UnitOfWork, artifacts: ArtifactStore, version: ModelVersion, name: str
) -> bytes:
    """A file stored with `version` (e.g. "report.html"), checked against its recorded sha256."""
    entry = ((version.report or {}).get("attachments") or {}).get(name)
    if entry is None:
        raise NotFound(f"{version.ref} has no {name}; it was trained without one")
    data = artifacts.get(entry["key"])
    if formats.sha256_of(data) != entry["sha256"]:
        raise ArtifactError(
            f"the {name} of {version.ref} does not match the sha256 recorded when it was "
            "registered; it was changed on disk"
        )
    return data


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """MODEL, MODEL@VERSION or MODEL@ALIAS as (name, version, alias): "churn@3" and "churn@v3"
    name version 3, "churn@production" the production alias."""
    name, _, suffix = ref.partition("@")
    if not suffix:
        return name, None, None
    digits = suffix.removeprefix("v")
    if digits.isdecimal() and len(digits) <= 9 and int(digits) >= 1:
        return name, int(digits), None
    if set(suffix) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") and len(suffix) <= 64:
        return name, None, suffix
    raise InvalidInput(
        f"{ref[:80]!r}: write MODEL, MODEL@VERSION (churn@3) or MODEL@ALIAS (churn@production)"
    )
