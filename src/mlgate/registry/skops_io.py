"""skops.io, imported without the two seconds its import spends on libraries it never uses.

At import, skops builds its list of scikit-learn's estimators with `sklearn.utils.all_estimators`,
which walks every scikit-learn package and imports each one to look inside, vendored packages
included: `sklearn.externals.array_api_compat.torch` imports PyTorch (1.6 s here), `.dask`
imports dask.array, and the function itself imports `sklearn.utils._testing`, which imports
pytest. None of those modules is looked at (the walk skips "externals" and private modules); only
their import costs. `skops_io()` imports skops.io with `estimators()` standing in: the same walk,
which does not enter the packages it skips, so the list, and skops' trust list, are the same
(tests/integration/test_artifacts.py compares them).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

_IGNORED = {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}
_LOCK = threading.Lock()


def skops_io() -> ModuleType:
    loaded = sys.modules.get("skops.io")
    if loaded is not None:
        return loaded
    with _LOCK:
        import sklearn.utils

        real = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = estimators
        try:
            module = importlib.import_module("skops.io")
        finally:
            sklearn.utils.all_estimators = real
    return module


def estimators(type_filter: Any = None) -> list[tuple[str, type]]:
    """`sklearn.utils.all_estimators()` (no filter), without importing the modules it skips."""
    if type_filter is not None:  # not what skops asks; the original knows how
        from sklearn.utils import all_estimators

        return list(all_estimators(type_filter))
    import sklearn
    from sklearn.base import BaseEstimator

    found: set[tuple[str, type]] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in _public_modules(Path(sklearn.__file__).parent, "sklearn"):
            members = inspect.getmembers(importlib.import_module(name), inspect.isclass)
            found.update((n, c) for n, c in members if not n.startswith("_"))
    return sorted(
        (
            (n, c)
            for n, c in found
            if issubclass(c, BaseEstimator) and n != "BaseEstimator" and not _abstract(c)
        ),
        key=lambda pair: pair[0],
    )


def _public_modules(folder: Path, prefix: str) -> list[str]:
    names = []
    for info in pkgutil.iter_modules([str(folder)]):
        if info.name.startswith("_") or info.name in _IGNORED:
            continue
        names.append(f"{prefix}.{info.name}")
        if info.ispkg:
            names += _public_modules(folder / info.name, f"{prefix}.{info.name}")
    return names


def _abstract(cls: type) -> bool:
    return bool(getattr(cls, "__abstractmethods__", None))
