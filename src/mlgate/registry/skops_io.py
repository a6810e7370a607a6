"""skops.io, imported without the two seconds its import spends on libraries it never uses.

At import, skops builds its list of scikit-learn's estimators with `sklearn.utils.all_estimators`,
which walks every scikit-learn package and imports each one to look inside, vendored packages
included: `sklearn.externals.array_api_compat.torch` imports PyTorch (1.6 s here), `.dask`
imports dask.array, and the function itself imports `sklearn.utils._testing`, which imports
pytest. None of those modules is looked at (the walk skips "externals" and private modules); only
their import costs. `skops_io()` imports skops.io with `estimators()` standing in: the same walk,
which does not enter the packages it skips, so the list, and skops' trust list, are the same
(tests/integration/test_artifacts.py compares them).

Its trust list also names every public ufunc of NumPy and SciPy, and a ufunc has no `__module__`:
skops finds each by `getattr(module, name, None)` on every loaded module in turn (some 2,000 in
a command of ours), half a second of exceptions raised and caught. During the import,
`whichmodule` below stands in: the same search in the same order with the same answer, reading
a plain module's namespace directly and asking only modules with a `__getattr__` of their own.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import threading
import warnings
from collections.abc import Callable
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
            module = _import_with_lookup()
        finally:
            sklearn.utils.all_estimators = real
    return module


def _import_with_lookup() -> ModuleType:
    """skops.io, its trust list built with `whichmodule` standing in for skops' own: the
    package is created, then its `_utils`, patched, then the package's body runs."""
    import importlib.util

    spec = importlib.util.find_spec("skops.io")
    if spec is None or spec.loader is None:  # pragma: no cover - skops is a dependency
        return importlib.import_module("skops.io")
    package = importlib.util.module_from_spec(spec)
    sys.modules["skops.io"] = package
    try:
        utils: Any = importlib.import_module("skops.io._utils")
        own = getattr(utils, "whichmodule", None)
        if own is None:  # a skops that finds modules otherwise: its own import, unhurried
            spec.loader.exec_module(package)
        else:
            utils.whichmodule = whichmodule(own)
            try:
                spec.loader.exec_module(package)
            finally:
                utils.whichmodule = own  # saving and loading use skops' own from here on
    except BaseException:
        for name in [n for n in sys.modules if n == "skops.io" or n.startswith("skops.io.")]:
            del sys.modules[name]
        raise
    import skops

    skops.io = package  # what the import system sets
    return package


_MODULE_ATTRIBUTES = frozenset(dir(ModuleType))


def whichmodule(own: Callable[[Any, str], str]) -> Callable[[Any, str], str]:
    """skops' `whichmodule(obj, name)`: the first loaded module, in import order, whose
    attribute `name` is `obj`. A plain module's attribute is its namespace's entry (or, missing
    there, what its `__getattr__` answers); anything else is asked as skops asks."""

    def find(obj: Any, name: str) -> str:
        known = getattr(obj, "__module__", None)
        if known is not None:
            return str(known)
        if "." in name or name in _MODULE_ATTRIBUTES:
            return own(obj, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for module_name, module in sys.modules.copy().items():
                if module_name in ("__main__", "__mp_main__") or module is None:
                    continue
                if type(module) is ModuleType:
                    namespace = module.__dict__
                    if name in namespace:
                        found = namespace[name]
                    elif "__getattr__" in namespace:
                        try:
                            found = getattr(module, name, None)
                        except (AttributeError, ImportError):
                            continue
                    else:
                        continue
                else:
                    try:
                        found = getattr(module, name, None)
                    except (AttributeError, ImportError):
                        continue
                if found is obj:
                    return module_name
        return "__main__"

    return find


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
