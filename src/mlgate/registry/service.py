"""Registry use cases: register a fitted model as the next version, find versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mlgate.errors import ArtifactError, InvalidInput, NotFound
from mlgate.registry import formats
from mlgate.registry.model import (
    Artifact,
    Lineage,
    ModelVersion,
    RegisteredModel,
    Task,
    check_name,
)
from mlgate.registry.store import ArtifactStore
from mlgate.schema import Column
from mlgate.uow import UnitOfWork


def register_version(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    *,
    model_name: str,
    task: Task,
    target: str,
    algorithm: str,
    estimator: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    columns: Sequence[Column],
    classes: Sequence[Any] | None,
    lineage: Lineage,
    library_versions: dict[str, str],
    fit_seconds: float,
    now: datetime,
    artifact_format: str = formats.SKOPS,
    report: dict[str, Any] | None = None,
    attachments: dict[str, bytes] | None = None,
) -> ModelVersion:
    """Store a fitted estimator as the next version of `model_name` (v1 for a new model).

    The artifact (and each attachment, such as the HTML report) is written first under a fresh
    key, then the version row is committed; if the commit fails the files are removed, so no row
    lacks its files and no file its row. Attachments are listed in report["attachments"] with
    their keys and sha256.
    """
    check_name("model", model_name)
    data = formats.dump(estimator, artifact_format)
    stem = f"{model_name}/{uuid.uuid4().hex}"
    suffix = "skops" if artifact_format == formats.SKOPS else f"{artifact_format}.zip"
    key = f"{stem}.{suffix}"
    written = [key]
    report = dict(report or {})
    try:
        artifacts.put(key, data)
        for name, content in (attachments or {}).items():
            attachment_key = f"{stem}.{name}"
            artifacts.put(attachment_key, content)
            written.append(attachment_key)
            report.setdefault("attachments", {})[name] = {
                "key": attachment_key,
                "sha256": formats.sha256_of(content),
            }
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
                algorithm=algorithm,
                target=target,
                params=params,
                metrics=metrics,
                columns=tuple(columns),
                classes=None if classes is None else tuple(classes),
                lineage=lineage,
                artifact=Artifact(key, artifact_format, formats.sha256_of(data), len(data)),
                library_versions=library_versions,
                created_at=now,
                fit_seconds=fit_seconds,
                report=report or None,
            )
            uow.models.add_version(version)
            uow.commit()
    except BaseException as exc:
        for written_key in written:
            artifacts.delete(written_key)
        if isinstance(exc, sa.exc.IntegrityError):
            raise InvalidInput(
                f"another version of {model_name!r} was registered at the same moment; "
                "run the command again"
            ) from None
        raise
    return version


def list_models(uow: UnitOfWork) -> list[RegisteredModel]:
    with uow:
        return uow.models.all()


def get_versions(uow: UnitOfWork, model_name: str) -> tuple[RegisteredModel, list[ModelVersion]]:
    with uow:
        model = uow.models.get(model_name)
        if model is None:
            raise NotFound(f"no model named {model_name!r}; `mlgate models list` shows them")
        return model, uow.models.versions(model_name)


def resolve_version(uow: UnitOfWork, model_name: str, number: int | None) -> ModelVersion:
    """Version `number` of the model, or its latest version when `number` is None."""
    with uow:
        model = uow.models.get(model_name)
        if model is None or model.latest_version == 0:
            raise NotFound(f"no model named {model_name[:128]!r}")
        wanted = model.latest_version if number is None else number
        version = uow.models.get_version(model_name, wanted)
    if version is None:
        raise NotFound(
            f"model {model_name!r} has no version {wanted}; its latest is {model.latest_version}"
        )
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


def parse_ref(ref: str) -> tuple[str, int | None]:
    """ "churn" -> ("churn", None); "churn@3" or "churn@v3" -> ("churn", 3)."""
    name, _, version = ref.partition("@")
    if not version:
        return name, None
    digits = version.removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise InvalidInput(f"{ref!r}: write MODEL or MODEL@VERSION, e.g. churn@3")
    return name, int(digits)
