"""Registering a model trained elsewhere as the next version of a model.

In order: identify the file (imports/files.py), read what it declares (imports/describe.py),
settle its input columns, task and classes with the input example and the options, load it as
it will be served and score the example (or a row of zeros) through it, then, with a holdout,
evaluate it as a trained version is evaluated, and register it. Anything refused is refused
before a byte is stored: nothing is registered and no file is left behind.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgate.access import audit
from mlgate.access.audit import records_its_own
from mlgate.columns import Column
from mlgate.errors import InvalidInput
from mlgate.imports.describe import Declared, declared
from mlgate.imports.files import ModelFile, RefusedModel
from mlgate.registry import foreign, formats
from mlgate.registry.model import Lineage, ModelVersion, Task, check_name
from mlgate.registry.service import NewVersion, register_version
from mlgate.registry.store import ArtifactStore
from mlgate.schema import conform, infer_columns
from mlgate.signing.model import SignVersion
from mlgate.uow import UnitOfWork

MAX_EXAMPLE_ROWS = 10_000  # kept as the reference rows when there is no holdout
_TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ImportRequest:
    model_name: str
    model: ModelFile
    input_example: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None
    holdout_name: str = ""  # where the holdout came from, for the lineage
    task: str | None = None
    classes: Sequence[Any] | None = None
    target: str | None = None
    trust: Sequence[str] = field(default_factory=tuple)
    actor: str = ""
    address: str = "local"  # for the audit log


def read_frame(name: str, data: bytes) -> pd.DataFrame:
    """Rows from a CSV or Parquet file's bytes; refused with what was wrong."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".parquet", ".pq") or data[:4] == b"PAR1":
            return pd.read_parquet(io.BytesIO(data))
        if suffix in (".csv", ".txt", ""):
            return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # pandas and pyarrow raise many kinds on a bad file
        raise InvalidInput(f"{name} cannot be read as rows: {str(exc)[:300]}") from None
    raise InvalidInput(f"{name}: rows come as a .csv or .parquet file")


@records_its_own
def import_model(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    request: ImportRequest,
    *,
    now: datetime,
    sign: SignVersion | None = None,
) -> ModelVersion:
    check_name("model", request.model_name)
    model = request.model
    found = declared(model, list(request.trust))
    columns = _columns(found, request.input_example)
    task = _task(found, request.task)
    classes = _classes(found, task, request.classes)
    target = _target(uow, request, columns)
    manifest = _manifest(found, model, columns, task, classes)
    pipeline = foreign.pipeline_of(manifest, model.raw, f"{request.model_name} (import)")
    if found.kind == "onnx" and task == "classification" and "label" not in manifest["onnx"]:
        manifest["onnx"]["scores"] = _score_kind(pipeline, columns, request.input_example)
        pipeline = foreign.pipeline_of(manifest, model.raw, f"{request.model_name} (import)")
    _probe(pipeline, columns, task, classes, request.input_example)
    sha = formats.sha256_of(model.raw)
    report: dict[str, Any] = {
        "import": {
            "kind": found.kind,
            "file": model.name,
            "origin": model.origin,
            "sha256": sha,
            "size_bytes": len(model.raw),
            "trusted": manifest.get("trusted", []),
            "mlflow_flavor": model.mlflow.get("flavor"),
            "holdout": (request.holdout_name or "holdout") if request.holdout is not None else None,
        },
        "notes": [],
    }
    metrics: dict[str, float] = {}
    attachments: dict[str, bytes] = {}
    n_rows = 0
    reference: pd.DataFrame | None
    if request.holdout is not None:
        metrics, details, page, reference = _evaluate(
            request, pipeline, columns, task, classes, target, now
        )
        report |= details
        report["notes"] = details.get("notes", [])
        attachments["report.html"] = page
        n_rows = len(reference)
    else:
        report["notes"].append(
            "Imported without a holdout: no metrics. Import it again with --holdout to "
            "evaluate it like a trained version."
        )
        reference = _reference(request.input_example, columns)
    if reference is not None:
        attachments["snapshot.parquet"] = _parquet(reference)
    lineage = Lineage(
        source_name="import",
        source_url=model.origin,
        table=None,
        query=None,
        n_rows=n_rows,
        data_sha256=sha,
        test_size=1.0,
        trained_by=request.actor,
    )
    new = NewVersion(
        task=task,  # type: ignore[arg-type]
        target=target,
        algorithm=f"imported-{found.kind}",
        estimator=foreign.pack(manifest, model.raw),
        params={},
        metrics=metrics,
        columns=columns,
        classes=classes,
        lineage=lineage,
        library_versions=found.library,
        fit_seconds=0.0,
        artifact_format=formats.IMPORTED,
        report=report,
        attachments=attachments,
    )
    version = register_version(
        uow, artifacts, new, model_name=request.model_name, now=now, sign=sign
    )
    audit.record(
        uow,
        at=now,
        actor=request.actor or "unknown",
        action="models.import_file",
        target=version.ref,
        address=request.address,
        result="ok",
        detail={k: report["import"][k] for k in ("kind", "origin", "sha256", "trusted")},
    )
    return version


def _columns(found: Declared, example: pd.DataFrame | None) -> tuple[Column, ...]:
    """The input columns: the model's names (or the example's), with the model's types where
    it declares them, else the example's, else numbers."""
    inferred = {c.name: c for c in infer_columns(example)} if example is not None else {}
    names = found.features
    if names is None:
        if example is None:
            raise RefusedModel(
                f"the model reads {found.width} unnamed columns; give --input-example with a "
                "file of rows whose header names them, in the model's order",
                code="schema_needed",
            )
        names = [str(c) for c in example.columns]
        if found.width is not None and len(names) != found.width:
            raise RefusedModel(
                f"the model reads {found.width} columns but the input example has "
                f"{len(names)} ({', '.join(names[:10])}); give an example of exactly its inputs",
                code="schema_mismatch",
            )
    elif example is not None:
        missing = [n for n in names if n not in inferred]
        if missing:
            raise RefusedModel(
                f"the model reads the columns {', '.join(names)}; the input example lacks "
                f"{', '.join(missing)}",
                code="schema_mismatch",
            )
    out = []
    for name in names:
        kind = found.types.get(name)
        seen = inferred.get(name)
        if kind is None:
            kind = seen.type if seen is not None else "number"
        elif seen is not None and kind == "number" and seen.type not in ("number", "boolean"):
            raise RefusedModel(
                f"the model takes numbers in {name!r}, but the input example holds "
                f"{seen.type} values there",
                code="schema_mismatch",
            )
        out.append(Column(name, "string" if kind == "text" else kind))
    if found.kind in ("xgboost", "lightgbm", "catboost") or (
        found.kind == "onnx" and found.features is None
    ):
        strings = [c.name for c in out if c.type not in ("number", "boolean")]
        if strings:
            raise RefusedModel(
                f"the model reads numbers only, but the input example holds text in "
                f"{', '.join(strings)}",
                code="schema_mismatch",
            )
    return tuple(out)


def _task(found: Declared, asked: str | None) -> str:
    if asked is not None and asked not in _TASKS:
        raise InvalidInput(f"--task is classification or regression, not {asked!r}")
    if found.task is not None and asked is not None and asked != found.task:
        if (
            found.kind == "onnx"
            and found.task == "classification"
            and "label" not in (found.manifest.get("onnx") or {})
        ):
            return asked  # one output of several numbers: the user knows what they are
        raise RefusedModel(
            f"--task {asked}, but the model is a {found.task} model", code="schema_mismatch"
        )
    task = asked or found.task
    if task is None:
        raise RefusedModel(
            "the model does not say whether it classifies or regresses; give --task",
            code="schema_needed",
        )
    return task


def _classes(found: Declared, task: str, given: Sequence[Any] | None) -> list[Any] | None:
    if task != "classification":
        return None
    declared_classes = found.classes
    n = len(declared_classes) if declared_classes else found.n_classes
    if given:
        labels = list(given)
        if n is not None and len(labels) != n and not (n == 1 and len(labels) == 2):
            raise RefusedModel(
                f"--classes names {len(labels)} classes but the model has {n}",
                code="schema_mismatch",
            )
        return labels
    if declared_classes:
        return list(declared_classes)
    if n is None:
        raise RefusedModel(
            "the model does not say how many classes it has; give --classes", code="schema_needed"
        )
    return list(range(max(n, 2)))


def _target(uow: UnitOfWork, request: ImportRequest, columns: Sequence[Column]) -> str:
    with uow:
        existing = uow.models.get(request.model_name)
    if request.target:
        return request.target
    if existing is not None:
        return existing.target
    if request.holdout is not None:
        extra = [str(c) for c in request.holdout.columns if c not in {x.name for x in columns}]
        if len(extra) == 1:
            return extra[0]
        raise InvalidInput(
            "give --target: the holdout has "
            + (
                f"several columns besides the inputs ({', '.join(extra[:5])})"
                if extra
                else "no column besides the inputs"
            )  # fmt: skip
        )
    return "prediction"


def _manifest(
    found: Declared,
    model: ModelFile,
    columns: Sequence[Column],
    task: str,
    classes: list[Any] | None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "kind": found.kind,
        "task": task,
        "features": [c.name for c in columns],
        "classes": classes,
        "mlgate_bundle": 1,
        **found.manifest,
    }
    if found.kind == "onnx":
        spec = dict(manifest["onnx"])
        if spec["layout"] == "columns":
            for one in spec["inputs"]:
                one["columns"] = [one["name"]]
        else:
            spec["inputs"][0]["columns"] = [c.name for c in columns]
        spec["model_classes"] = found.model_classes or found.classes or classes
        manifest["onnx"] = spec
    if found.kind == "skops" and task == "classification":
        manifest.setdefault("model_classes", found.classes)
    return manifest


def _score_kind(pipeline: Any, columns: Sequence[Column], example: pd.DataFrame | None) -> str:
    """How a classifier's one output of numbers becomes probabilities: as they are when the
    example's rows are probabilities (each in [0, 1], summing to 1), else softmax (sigmoid for
    one column)."""
    model = pipeline[-1]
    rows = _probe_rows(columns, example)
    values = np.asarray(model.run(pipeline[:-1].transform(rows))[0], dtype="float64")
    values = values.reshape(len(rows), -1)
    if values.shape[1] == 1:
        return "logit"
    sums = values.sum(axis=1)
    if (values >= 0).all() and (values <= 1).all() and np.allclose(sums, 1.0, atol=1e-4):
        return "probabilities"
    return "logits"


def _probe_rows(columns: Sequence[Column], example: pd.DataFrame | None) -> pd.DataFrame:
    if example is not None and len(example):
        return conform(example.head(64).reset_index(drop=True), columns)
    return conform(
        pd.DataFrame({c.name: [0.0 if c.type in ("number", "boolean") else "a"] for c in columns}),
        columns,
    )


def _probe(
    pipeline: Any,
    columns: Sequence[Column],
    task: str,
    classes: list[Any] | None,
    example: pd.DataFrame | None,
) -> None:
    """Score the example (or one row of zeros) as serving will; refused if the model cannot."""
    try:
        rows = _probe_rows(columns, example)
    except (InvalidInput, ValueError, TypeError) as exc:
        raise RefusedModel(
            f"the input example does not fit the model's columns: {exc}", code="schema_mismatch"
        ) from None
    try:
        predictions = np.asarray(pipeline.predict(rows))
        if task == "classification":
            proba = np.asarray(pipeline.predict_proba(rows))
    except Exception as exc:  # whatever the library says: the model cannot score these rows
        what = "the input example" if example is not None else "a row of zeros"
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        raise RefusedModel(
            f"the model could not score {what}: {message}", code="schema_mismatch"
        ) from None
    if len(predictions) != len(rows):
        raise RefusedModel(
            f"the model answered {len(predictions)} predictions for {len(rows)} rows",
            code="unsupported_model",
        )
    if task == "classification":
        assert classes is not None
        if proba.ndim != 2 or proba.shape[1] != len(classes):
            raise RefusedModel(
                f"the model gives {proba.shape[-1]} probabilities a row but has "
                f"{len(classes)} classes; give --classes with one label for each",
                code="schema_mismatch",
            )


def _reference(example: pd.DataFrame | None, columns: Sequence[Column]) -> pd.DataFrame | None:
    if example is None:
        return None
    return example[[c.name for c in columns]].head(MAX_EXAMPLE_ROWS).reset_index(drop=True)


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _evaluate(
    request: ImportRequest,
    pipeline: Any,
    columns: Sequence[Column],
    task: str,
    classes: list[Any] | None,
    target: str,
    now: datetime,
) -> tuple[dict[str, float], dict[str, Any], bytes, pd.DataFrame]:
    """Metrics with intervals and the report, on the holdout, as for a trained version."""
    from mlgate.training.data import normalise_labels
    from mlgate.training.evaluate import evaluate, outputs_of
    from mlgate.training.report import ReportInputs, build_report

    holdout = request.holdout
    assert holdout is not None
    if target not in holdout.columns:
        raise InvalidInput(f"the holdout has no column {target!r} (the target)")
    rows = holdout[holdout[target].notna()].reset_index(drop=True)
    if rows.empty:
        raise InvalidInput(f"the holdout has no rows with a value of {target!r}")
    try:
        X = conform(rows, columns)
    except (InvalidInput, ValueError) as exc:
        raise InvalidInput(f"the holdout does not fit the model's columns: {exc}") from None
    if task == "classification":
        assert classes is not None
        truth = normalise_labels(rows[target])
        index = {str(c): k for k, c in enumerate(classes)}
        unknown = sorted({str(v) for v in truth} - set(index))
        if unknown:
            raise InvalidInput(
                f"the holdout's {target!r} holds labels the model does not know: "
                f"{', '.join(unknown[:5])}; its classes are {', '.join(map(str, classes))} "
                "(give --classes to name them)"
            )
        y: pd.Series[Any] = pd.Series([index[str(v)] for v in truth], dtype="int64")
    else:
        y = pd.to_numeric(rows[target], errors="coerce").astype("float64")
    outputs = outputs_of(task, pipeline, X)  # type: ignore[arg-type]
    task_: Task = task  # type: ignore[assignment]
    evaluation = evaluate(
        task_, y.to_numpy(), outputs, y.to_numpy(), n_classes=len(classes or ()), seed=0
    )
    notes = (
        "The baseline is fitted on the holdout itself (the model's training rows are not "
        "here): the majority class, or the mean.",
    )
    data, page = build_report(
        ReportInputs(
            model_name=request.model_name,
            algorithm=f"imported-{request.model.kind}",
            task=task_,
            target=target,
            pipeline=pipeline,
            X_train=X,
            y_train=y,
            X_test=X,
            y_test=y,
            outputs=outputs,
            evaluation=evaluation,
            classes=None if classes is None else tuple(classes),
            coefficients=False,
            notes=notes,
            lineage={"import": request.model.origin, "holdout": request.holdout_name},
            trained_at=now,
            seed=0,
            columns=tuple(columns),
            refits=False,
        )
    )
    details = {"evaluation": evaluation.to_json(), **data}
    reference = rows[[*(c.name for c in columns), target]]
    return dict(evaluation.metrics), details, page, reference
