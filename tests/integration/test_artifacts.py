"""Artifacts: stored without pickle, checked by sha256 and trust list before every load."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from mlgate.bootstrap import Services
from mlgate.errors import ArtifactError, InvalidInput
from mlgate.registry import formats
from mlgate.registry.service import resolve_version
from mlgate.registry.store import LocalArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to


@pytest.fixture
def trained(services: Services, tmp_path: Path) -> Services:
    demo.churn_frame(n_rows=300).to_csv(tmp_path / "customers.csv", index=False)
    add_source_to(services, "csv", str(tmp_path), cwd=tmp_path)
    train_model(
        services.uow(),
        services.artifacts,
        services.open_source,
        TrainSpec(
            "churn",
            "csv",
            "churned",
            "logistic_regression",
            table="customers",
            drop=("customer_id",),
        ),
        now=services.clock,
    )
    return services


def test_a_model_loads_back_and_predicts(trained: Services) -> None:
    version = resolve_version(trained.uow(), "churn", 1)
    frame = pd.DataFrame({c.name: [None] for c in version.columns}).astype(object)
    frame = frame.astype({c.name: "float64" for c in version.columns if c.type == "number"})
    scores = PredictorCache(trained.artifacts).get(version).score(frame)
    assert scores.predictions[0] in (0, 1)
    assert scores.probabilities is not None and sum(scores.probabilities[0]) == pytest.approx(1.0)


def test_a_tampered_artifact_is_refused(trained: Services) -> None:
    version = resolve_version(trained.uow(), "churn", 1)
    path = trained.settings.artifact_dir / version.artifact.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match the sha256 recorded"):
        PredictorCache(trained.artifacts).get(version)


def test_a_missing_artifact_says_so(trained: Services) -> None:
    version = resolve_version(trained.uow(), "churn", 1)
    (trained.settings.artifact_dir / version.artifact.key).unlink()
    with pytest.raises(ArtifactError, match="is missing"):
        PredictorCache(trained.artifacts).get(version)


def test_types_off_the_trust_list_are_refused_even_with_a_matching_hash() -> None:
    tree = GradientBoostingClassifier(n_estimators=2).fit([[0], [1]], [0, 1])
    with pytest.raises(ArtifactError, match="does not load back"):
        formats.dump(tree)
    import skops.io as sio

    data = sio.dumps(tree)
    with pytest.raises(ArtifactError, match="not on the trust list"):
        formats.load(data, expected_sha256=formats.sha256_of(data), ref="tree@v1")


def test_a_file_that_smuggles_a_function_is_refused() -> None:
    # Hand-edit a trusted file so that it names os.system: the check must refuse it unopened.
    from sklearn.linear_model import LinearRegression

    data = formats.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    schema["__module__"], schema["__class__"] = "os", "system"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            content = json.dumps(schema).encode() if item == "schema.json" else source.read(item)
            target.writestr(item, content)
    bad = out.getvalue()
    with pytest.raises(ArtifactError, match="os.system"):
        formats.load(bad, expected_sha256=formats.sha256_of(bad), ref="evil@v1")


def test_the_local_store_writes_atomically_and_stays_in_its_folder(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.put("m/a.skops", b"first")
    store.put("m/a.skops", b"second")
    assert store.get("m/a.skops") == b"second"
    assert [p.name for p in (tmp_path / "artifacts" / "m").iterdir()] == ["a.skops"]  # no temp left
    with pytest.raises(InvalidInput, match="outside the artifact folder"):
        store.put("../escape.skops", b"x")


def test_skops_is_imported_with_the_same_estimators_and_trust_list_as_its_own_import() -> None:
    """skops_io() spares skops' import the walk into PyTorch and dask (see registry/skops_io.py);
    the estimators it lists, and so skops' trusted types, are those of scikit-learn's own walk."""
    from sklearn.utils import all_estimators

    from mlgate.registry.skops_io import estimators, skops_io

    ours = estimators()
    assert set(ours) == set(all_estimators()) and len(ours) == len(set(ours)) > 150
    assert [name for name, _ in ours] == sorted(name for name, _ in ours)
    trusted = skops_io()._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES  # type: ignore[attr-defined]
    from skops.io._utils import get_type_name

    expected = [get_type_name(c) for _, c in all_estimators()]
    assert sorted(trusted) == sorted(n for n in expected if n.startswith("sklearn."))


def test_skops_trusts_the_ufuncs_its_own_lookup_names() -> None:
    """The trust list's ufuncs, found during skops_io()'s import by our `whichmodule`, are those
    skops' own finds now, in this process with its modules (registry/skops_io.py)."""
    import numpy as np
    import scipy.special

    from mlgate.registry.skops_io import skops_io, whichmodule

    trusted = skops_io()._trusted_types  # type: ignore[attr-defined]
    from skops.io import _utils

    assert _utils.whichmodule.__module__ == "skops.io._utils"  # skops' own, after the import
    numpy_names = _utils.get_public_type_names(module=np, oftype=np.ufunc)
    assert numpy_names == trusted.NUMPY_UFUNC_TYPE_NAMES and len(numpy_names) > 80
    ours = whichmodule(_utils.whichmodule)
    checked = 0
    for module in (np, scipy.special):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, np.ufunc) or type(obj).__name__ == "ufunc":
                assert ours(obj, obj.__name__) == _utils.whichmodule(obj, obj.__name__), name
                checked += 1
    assert checked > 300
