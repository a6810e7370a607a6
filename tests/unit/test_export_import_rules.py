"""ONNX out and models in, over the in-memory fakes (exports/service.py, imports/service.py):
a version trained from an InMemorySource is exported only once its graph answers its holdout as
it does, and imported back as a version of its own that serves the same labels; an imported ONNX
version is handed back as the file it came in; a version without stored rows, or of a kind
without a conversion, is refused with why; a file that is a pickle or no model at all is refused
before a byte is stored. Every algorithm of the catalogue, every imported library and the HTTP
and CLI edges: tests/integration/test_onnx_export.py and test_imports.py."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import pytest

from mlgate.errors import Conflict
from mlgate.exports.convert import convert
from mlgate.exports.service import TOLERANCE, export_onnx
from mlgate.imports.files import RefusedModel, identify
from mlgate.imports.service import ImportRequest, import_model
from mlgate.registry.service import resolve_version
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform
from mlgate.training.compare import holdout_rows
from tests.fakes import FixedClock, InMemoryArtifactStore, InMemoryDatabase, InMemoryUnitOfWork
from tests.unit.test_batch_rules import NOW, Trained, train_churn


@dataclass
class Registry:
    db: InMemoryDatabase
    artifacts: InMemoryArtifactStore
    clock: FixedClock

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.db)

    def predictors(self) -> PredictorCache:
        return PredictorCache(self.artifacts)

    def export(self, name: str = "churn") -> bytes:
        return export_onnx(self.uow(), self.artifacts, self.predictors(), name, None).data


@pytest.fixture(scope="module")
def trained() -> Trained:
    return train_churn()


@pytest.fixture
def registry(trained: Trained) -> Registry:
    db, files, _ = trained
    artifacts = InMemoryArtifactStore()
    artifacts.files = dict(files)
    return Registry(copy.deepcopy(db), artifacts, FixedClock(NOW))


def test_a_version_is_exported_checked_and_imported_back_answering_alike(
    registry: Registry,
) -> None:
    done = export_onnx(registry.uow(), registry.artifacts, registry.predictors(), "churn", None)
    holdout = holdout_rows(registry.uow(), registry.artifacts, done.version)
    assert done.rows_checked == len(holdout) > 0 and done.max_difference <= TOLERANCE
    assert done.note.startswith(f"checked on {len(holdout):,} holdout rows: labels identical")
    assert done.headers()["X-Mlgate-Onnx-Rows-Checked"] == str(len(holdout))
    keys = set(registry.artifacts.list_keys())
    back = import_model(registry.uow(), registry.artifacts,
                        ImportRequest("churn-onnx", identify("churn.onnx", done.data)),
                        now=registry.clock())  # fmt: skip
    assert (back.model_name, back.number, back.algorithm) == ("churn-onnx", 1, "imported-onnx")
    assert back.task == done.version.task and back.classes == done.version.classes
    assert set(registry.artifacts.list_keys()) > keys  # the file, stored as a version's
    ours = registry.predictors().get(done.version).score(conform(holdout, done.version.columns))
    theirs = registry.predictors().get(back).score(conform(holdout, back.columns))
    assert theirs.predictions == ours.predictions
    np.testing.assert_allclose(theirs.probabilities, ours.probabilities, atol=TOLERANCE)  # type: ignore[arg-type]
    again = export_onnx(registry.uow(), registry.artifacts, registry.predictors(), "churn-onnx",
                        None)  # fmt: skip
    assert again.data == done.data and again.rows_checked == 0  # the file it came in, as it was
    assert again.note == "the ONNX file it was imported from, as it was"


def test_a_version_without_stored_rows_is_not_exported_unchecked(registry: Registry) -> None:
    version = resolve_version(registry.uow(), "churn", None)
    # as a version trained before snapshots were stored: its report names no attachments
    registry.db.versions[("churn", version.number)] = replace(version, report={})
    with pytest.raises(Conflict, match="has no stored rows to check its ONNX graph on; retrain"):
        registry.export()


def test_kinds_without_a_conversion_say_why(registry: Registry) -> None:
    version = resolve_version(registry.uow(), "churn", None)
    with pytest.raises(Conflict, match="has no ONNX conversion: a forecaster reads windows"):
        convert(replace(version, task="forecast"), None)
    imported = replace(version, algorithm="imported-xgboost")
    with pytest.raises(Conflict, match="imported as a file of its own library"):
        convert(imported, None)


@pytest.mark.parametrize(
    ("name", "raw", "code"),
    [
        ("model.pkl", b"\x80\x05K\x01.", "pickle_refused"),  # the bytes of a pickled 1
        ("model.joblib", b"not even a pickle", "pickle_refused"),  # by its name
        ("model.dat", b"\x00\x01 what is this", "not_a_model_file"),
        ("model.cbm", b"\x08\x07 an ONNX header", "format_mismatch"),
    ],
    ids=["pickle", "pickle-by-name", "unknown", "misnamed"],
)
def test_a_file_that_is_no_model_mlgate_reads_is_refused_by_name(
    name: str, raw: bytes, code: str
) -> None:
    with pytest.raises(RefusedModel) as refused:
        identify(name, raw)
    assert refused.value.code == code


def test_a_refused_import_stores_nothing(registry: Registry) -> None:
    keys = set(registry.artifacts.list_keys())
    broken = identify("broken.onnx", b"\x08\x07 not a graph after all")
    with pytest.raises(RefusedModel, match="the ONNX file cannot be read"):
        import_model(registry.uow(), registry.artifacts, ImportRequest("broken", broken),
                     now=registry.clock())  # fmt: skip
    assert set(registry.artifacts.list_keys()) == keys
    with registry.uow() as uow:
        assert uow.models.get("broken") is None
