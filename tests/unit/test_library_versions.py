"""A version's lineage names the libraries it was trained with, read from the modules themselves
(XGBoost installs here as the `xgboost-cpu` distribution, and imports as `xgboost`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata

import pytest

from mlgate.training import libraries
from mlgate.training.service import library_versions, module_version


def test_xgboost_is_in_the_lineage_whatever_its_distribution_is_called() -> None:
    import xgboost

    assert library_versions()["xgboost"] == xgboost.__version__


@pytest.mark.parametrize("name, module", sorted(libraries._LIBRARIES.items()))
def test_every_installed_library_is_recorded_with_its_modules_version(
    name: str, module: str
) -> None:
    recorded = library_versions().get(name)
    if importlib.util.find_spec(module) is None:
        assert recorded is None
        return
    assert recorded is not None, f"{name} is installed (import {module}) but not in the lineage"
    if module in sys.modules:  # the models' libraries: their own word
        assert recorded == importlib.import_module(module).__version__
    else:  # not imported only to be asked (torch costs seconds): the distribution installing it
        providers = libraries._distributions()[module]  # metadata.packages_distributions()
        assert recorded in {metadata.version(p) for p in providers}


def test_a_library_that_is_not_installed_is_left_out() -> None:
    assert module_version("mlgate_no_such_module") is None


def test_the_api_shows_a_versions_libraries_as_the_cli_does() -> None:
    """`GET /v1/models/{name}` carries each version's libraries (`mlgate models show` prints
    them): an XGBoost version names xgboost's version there too."""
    import numpy as np
    import pandas as pd
    import xgboost

    from mlgate.api import schemas
    from tests.unit.test_fit_every_row import World

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "z": rng.normal(size=60)})
    frame["y"] = (frame["x"] > 0).map({True: "a", False: "b"})
    world = World(frame)
    version = world.train("y", "xgboost")
    with world.uow() as uow:
        model = uow.models.get(version.model_name)
    assert model is not None
    (shown,) = schemas.detail(model, [version]).model_dump()["versions"]
    assert shown["library_versions"] == version.library_versions
    assert shown["library_versions"]["xgboost"] == xgboost.__version__


def test_known_distribution_names_spare_the_scan_of_every_installed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading every distribution's file list costs each training a second or two here; with
    the libraries installed under the names they are published as (xgboost-cpu included), no
    training pays it."""

    def scan() -> None:
        raise AssertionError("read every installed distribution's file list")

    monkeypatch.setattr(libraries, "_distributions", scan)
    monkeypatch.delitem(sys.modules, "xgboost", raising=False)  # asked of its distribution
    assert library_versions()["xgboost"] == metadata.version("xgboost-cpu")
