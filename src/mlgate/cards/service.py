"""Model cards' use cases: assemble a version's card from what mlgate records of it, edit its
fields, and compute its slices on the version's holdout rows."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from mlgate.access.audit import audited
from mlgate.cards.model import EDITABLE, SMALL_SLICE, CardRecord, ModelCard
from mlgate.errors import InvalidInput
from mlgate.registry import aliases as lifecycle
from mlgate.registry.model import ModelVersion, same_label
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.uow import UnitOfWork

MAX_FIELD = 4000
# The owner is a name (a team, a person): one line, as long as its column (String(255)).
MAX_LENGTHS = {"intended_use": MAX_FIELD, "owner": 255}


def record_of(uow: UnitOfWork, version: ModelVersion) -> CardRecord:
    """The version's stored card fields and slices (empty ones where none were stored)."""
    with uow:
        found = uow.cards.get(version.model_name, version.number)
    return found or CardRecord(version.model_name, version.number)


def check_fields(fields: Mapping[str, str]) -> None:
    """InvalidInput unless every field is editable, within its length, and free of control
    characters (intended_use may hold line breaks and tabs; the owner is one line)."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(
            f"a card's editable fields are {', '.join(EDITABLE)}; {', '.join(unknown)} is not one"
        )
    for key, value in fields.items():
        if len(value) > MAX_LENGTHS[key]:
            raise InvalidInput(f"{key}: at most {MAX_LENGTHS[key]} characters")
        allowed = "\n\t" if key == "intended_use" else ""
        if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
            where = "" if allowed else " or line breaks"
            raise InvalidInput(f"{key}: no control characters{where}")


@audited("models.card", "{model_name}@{number}", detail=lambda a, _: dict(a["fields"]))
def set_fields(
    uow: UnitOfWork,
    model_name: str,
    number: int,
    fields: Mapping[str, str],
    *,
    actor: str,
    now: datetime,
) -> CardRecord:
    """Set a version's editable card fields (intended_use, owner)."""
    check_fields(fields)
    with uow:
        version = _version(uow, model_name, number)
        current = uow.cards.get(model_name, number) or CardRecord(model_name, version.number)
        changed = replace(
            current,
            intended_use=fields.get("intended_use", current.intended_use),
            owner=fields.get("owner", current.owner),
            updated_at=now,
            updated_by=actor,
        )
        uow.cards.put(changed)
        uow.commit()
    return changed


@audited("models.card", "{model_name}@{number}",
         detail=lambda a, _: {"slices": list(dict.fromkeys(a["columns"]))})  # fmt: skip
def set_slices(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    model_name: str,
    number: int,
    columns: Sequence[str],
    *,
    actor: str,
    now: datetime,
) -> CardRecord:
    """Compute the version's metrics per slice of `columns` on its holdout rows, and keep them
    with its card (replacing slices computed before)."""
    from mlgate.cards.slices import slice_metrics
    from mlgate.schema import conform
    from mlgate.training.compare import holdout_rows
    from mlgate.training.evaluate import Outputs

    with uow:
        version = _version(uow, model_name, number)
    if version.task not in ("classification", "regression"):
        raise InvalidInput(f"{version.ref} is a {version.task} model: it has no holdout to slice")
    imported = (version.report or {}).get("import")
    if imported is not None and not imported.get("holdout"):
        raise InvalidInput(
            f"{version.ref} was imported without a holdout: it has no labelled rows to slice; "
            "import it again with --holdout"
        )
    columns = list(dict.fromkeys(columns))  # each column once, in the order given
    rows = holdout_rows(uow, artifacts, version)
    scores = predictors.get(version).score(conform(rows, version.columns))
    truth_raw = rows[version.target].to_numpy()
    if version.task == "classification":
        classes = tuple(version.classes or ())
        truth = _codes(truth_raw, classes)
        outputs = Outputs(
            _codes(np.asarray(scores.predictions, dtype=object), classes),
            np.asarray(scores.probabilities, dtype="float64"),
        )
    else:
        truth = truth_raw.astype("float64")
        outputs = Outputs(np.asarray(scores.predictions, dtype="float64"))
    sets, whole = slice_metrics(version, rows.reset_index(drop=True), truth, outputs, columns)
    with uow:
        current = uow.cards.get(model_name, number) or CardRecord(model_name, number)
        changed = replace(current, slices=sets, whole=whole, updated_at=now, updated_by=actor)
        uow.cards.put(changed)
        uow.commit()
    return changed


def build_card(
    uow: UnitOfWork,
    version: ModelVersion,
    record: CardRecord,
    *,
    verification: dict[str, Any] | None = None,
) -> ModelCard:
    """The version's card: everything mlgate knows of it that a reviewer asks for."""
    report = version.report or {}
    evaluation = report.get("evaluation") or {}
    intervals = evaluation.get("intervals") or {}
    with uow:
        signature = uow.signatures.get(version.model_name, version.number)
        check = uow.monitoring.last_check(version.model_name)
        settings = uow.monitoring.settings(version.model_name)
    aliases = lifecycle.aliases_of(uow, version.model_name)
    history = [
        e.to_json()
        for alias in sorted(aliases)
        for e in lifecycle.history(uow, version.model_name, alias)
        if version.number in (e.to_version, e.from_version)
    ]
    lineage = version.lineage
    slices = record.slices_json() if record.slices else None
    data: dict[str, Any] = {
        "model": version.model_name,
        "version": version.number,
        "ref": version.ref,
        "intended_use": record.intended_use,
        "owner": record.owner,
        "edited_at": record.updated_at.isoformat() if record.updated_at else None,
        "edited_by": record.updated_by or None,
        "description": version.description,
        "task": version.task,
        "algorithm": version.algorithm,
        "target": version.target,
        "classes": None if version.classes is None else list(version.classes),
        "created_at": version.created_at.isoformat(),
        "trained_by": lineage.trained_by or None,
        "data": {
            "source": lineage.source_name,
            "source_url": lineage.source_url,
            "table": lineage.table,
            "query": lineage.query,
            "n_rows": lineage.n_rows,
            "snapshot_sha256": lineage.data_sha256,
            "dropped_columns": list(lineage.dropped_columns),
            "test_size": lineage.test_size,
            "seed": lineage.seed,
        },
        "features": [c.to_json() for c in version.columns],
        "evaluation": {
            "method": evaluation.get("method", "holdout"),
            "n_rows": evaluation.get("n_holdout"),
            "metrics": {
                k: {"value": v, "interval": intervals.get(k)} for k, v in version.metrics.items()
            },
            "baseline": evaluation.get("baseline"),
            "baseline_kind": evaluation.get("baseline_kind"),
        },
        "slices": slices,
        "explanations": _explanations(report),
        "limitations": _limitations(report, record),
        "monitoring": None
        if settings is None and check is None
        else {
            "sample_rate": None if settings is None else settings.sample_rate,
            "state": None if check is None else check.state,
            "checked_at": None if check is None else check.checked_at.isoformat(),
        },
        "aliases": {
            "current": sorted(a for a, n in aliases.items() if n == version.number),
            "history": history,
        },
        "signature": None
        if signature is None
        else {
            "key_id": signature.key_id,
            "signed_at": signature.signed_at.isoformat(),
            "signed_by": signature.signed_by,
        },
        # what checking the signature over the files finds now (None: not checked here)
        "verification": None
        if verification is None
        else {"state": verification["state"], "problems": list(verification["problems"])},
        "artifact": {
            "format": version.artifact.format,
            "sha256": version.artifact.sha256,
            "size_bytes": version.artifact.size_bytes,
        },
        "libraries": dict(version.library_versions),
    }
    return ModelCard(version.ref, data)


def _explanations(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The global view: each importance the report has, and the mean absolute contributions."""
    found = {f"{kind} importance": dict(v) for kind, v in (report.get("importance") or {}).items()}
    mean_abs = (report.get("contributions") or {}).get("mean_abs")
    if mean_abs:
        found["mean |contribution|"] = dict(mean_abs)
    return found


def _limitations(report: Mapping[str, Any], record: CardRecord) -> list[str]:
    evaluation = report.get("evaluation") or {}
    said = [
        *report.get("warnings", []),
        *(report.get("inference") or {}).get("warnings", []),
        *report.get("notes", []),
        *evaluation.get("notes", []),
        *(f"{k}: undefined ({why})" for k, why in (evaluation.get("undefined") or {}).items()),
        *(
            f"slice {s.column} = {s.value} has {s.n_rows} holdout rows (fewer than "
            f"{SMALL_SLICE}): its numbers are too few to lean on"
            for group in record.slices
            for s in group.slices
            if s.small
        ),
    ]
    return list(dict.fromkeys(str(x) for x in said))


def _codes(values: np.ndarray, classes: tuple[Any, ...]) -> np.ndarray:
    """Labels as the model's class codes (0..k-1, the order of `classes`)."""
    lookup: dict[Any, int] = {}
    out = np.empty(len(values), dtype="int64")
    for i, value in enumerate(values):
        key = (type(value).__name__, str(value))
        if key not in lookup:
            lookup[key] = next(
                (c for c, label in enumerate(classes) if same_label(value, label)), -1
            )
        out[i] = lookup[key]
    return out


def _version(uow: UnitOfWork, model_name: str, number: int) -> ModelVersion:
    from mlgate.errors import NotFound

    found = uow.models.get_version(model_name, number)
    if found is None:
        raise NotFound(f"model {model_name!r} has no version {number}")
    return found
