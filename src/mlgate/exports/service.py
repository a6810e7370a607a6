"""A version handed out as ONNX, checked before it leaves: the graph, run by ONNX Runtime on the
version's holdout rows, must give the same labels as the version serves and probabilities (or
values) within TOLERANCE; otherwise the export is refused and says by how much it missed.

An imported ONNX version is handed back as the file it was imported from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgate.errors import Conflict, NotFound
from mlgate.registry import foreign, formats
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform, feature_columns
from mlgate.tracing import span
from mlgate.uow import UnitOfWork

# ONNX computes in float32: probabilities within 1e-5, values within 1e-5 relative (plus 1e-5);
# labels identical except on ties (the two likeliest classes within 1e-5: see `tied`).
TOLERANCE = 1e-5
MAX_CHECK_ROWS = 20_000


@dataclass(frozen=True)
class OnnxExport:
    data: bytes
    version: ModelVersion
    rows_checked: int
    max_difference: float  # of probabilities (classifiers) or values (regressors)
    note: str

    def headers(self) -> dict[str, str]:
        return {
            "X-Mlgate-Onnx-Rows-Checked": str(self.rows_checked),
            "X-Mlgate-Onnx-Max-Difference": f"{self.max_difference:.3g}",
        }


def export_onnx(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    model_name: str,
    number: int | None,
    alias: str | None = None,
) -> OnnxExport:
    said = {"mlgate.model": model_name, "mlgate.version": number, "mlgate.alias": alias}
    with span("export onnx", said):
        return _export_onnx(uow, artifacts, predictors, model_name, number, alias)


def _export_onnx(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    model_name: str,
    number: int | None,
    alias: str | None,
) -> OnnxExport:
    version = resolve_version(uow, model_name, number, alias)
    # Loaded as serving loads it: the signature and sha256 checked before anything is built.
    predictor = predictors.get(version)
    if version.algorithm == "imported-onnx":
        stored = artifacts.get(version.artifact.key)  # the bytes handed out: checked again
        formats.load(stored, expected_sha256=version.artifact.sha256, ref=version.ref,
                     fmt=version.artifact.format)  # fmt: skip
        _, raw = foreign.unpack(stored, version.ref)
        return OnnxExport(raw, version, 0, 0.0, "the ONNX file it was imported from, as it was")
    from mlgate.exports.convert import convert
    from mlgate.training.compare import holdout_rows

    data = convert(version, predictor.pipeline)
    try:
        rows = holdout_rows(uow, artifacts, version)
    except NotFound:
        raise Conflict(
            f"{version.ref} has no stored rows to check its ONNX graph on; retrain it"
        ) from None
    rows = rows.head(MAX_CHECK_ROWS)
    frame = conform(rows, version.columns)
    served = predictor.score(frame)
    outputs = _run(data, frame, version)
    difference = _check(version, served.predictions, served.probabilities, outputs, len(frame))
    n_tied = (
        int(tied(np.asarray(served.probabilities)).sum()) if served.probabilities is not None else 0
    )
    note = (
        f"checked on {len(frame):,} holdout rows: labels identical, probabilities within "
        f"{TOLERANCE:g} (largest difference {difference:.2g})"
        + (f"; {n_tied} tied rows may take either label" if n_tied else "")
        if version.task == "classification"
        else f"checked on {len(frame):,} holdout rows: values within {TOLERANCE:g} relative "
        f"(largest difference {difference:.2g})"
    )
    return OnnxExport(data, version, len(frame), difference, note)


def feeds_of(frame: pd.DataFrame, version: ModelVersion) -> dict[str, np.ndarray]:
    """The graph's inputs from conformed rows: one [N, 1] tensor per column the model reads."""
    feeds = {}
    for column in feature_columns(version.columns):
        values = frame[column.name]
        if column.type in ("string", "text"):
            strings = values.astype(object).where(values.notna(), "").map(str)
            feeds[column.name] = strings.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[column.name] = values.to_numpy(dtype="float32").reshape(-1, 1)
    return feeds


def tied(probabilities: np.ndarray) -> np.ndarray:
    """Rows whose two likeliest classes are within TOLERANCE: float32 arithmetic may rank them
    either way (a forest's exact 0.5 is 0.50000006 in float32), so either label is right."""
    if probabilities.shape[1] < 2:
        return np.zeros(len(probabilities), dtype=bool)
    top = np.sort(probabilities, axis=1)
    return np.asarray(top[:, -1] - top[:, -2] <= TOLERANCE)


def _run(data: bytes, frame: pd.DataFrame, version: ModelVersion) -> list[Any]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # as an imported graph is served: the same sums, in order
    session = onnxruntime.InferenceSession(
        data, sess_options=options, providers=["CPUExecutionProvider"]
    )
    return list(session.run(None, feeds_of(frame, version)))


def _check(
    version: ModelVersion,
    predictions: list[Any],
    probabilities: list[list[float]] | None,
    outputs: list[Any],
    n: int,
) -> float:
    if version.task == "classification":
        assert probabilities is not None
        labels = np.asarray(version.classes or (), dtype=object)[np.asarray(outputs[0]).ravel()]
        ties = tied(np.asarray(probabilities))
        differ = int(np.sum((labels != np.asarray(predictions, dtype=object)) & ~ties))
        gap = float(np.max(np.abs(np.asarray(outputs[1]) - np.asarray(probabilities)), initial=0))
        if differ or gap > TOLERANCE:
            raise Conflict(
                f"the ONNX graph of {version.ref} does not answer as the version does on its "
                f"{n:,} holdout rows ({differ} labels differ, probabilities by up to "
                f"{gap:.2g}; the tolerance is {TOLERANCE:g}), so it is not exported"
            )
        return gap
    ours = np.asarray(predictions, dtype="float64")
    theirs = np.asarray(outputs[0], dtype="float64").ravel()
    gaps = np.abs(theirs - ours)
    if np.any(gaps > TOLERANCE * (1 + np.abs(ours))):
        raise Conflict(
            f"the ONNX graph of {version.ref} does not answer as the version does on its "
            f"{n:,} holdout rows (values differ by up to {float(gaps.max()):.2g}; the "
            f"tolerance is {TOLERANCE:g} relative), so it is not exported"
        )
    return float(gaps.max(initial=0))
