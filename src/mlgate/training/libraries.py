"""The Python and library versions a version is trained with, named in its lineage."""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Mapping
from importlib import metadata

# The libraries a version's lineage names, and the modules they are imported as. Versions are
# read from the modules, never from one distribution's name: XGBoost installs as `xgboost` or
# `xgboost-cpu`, PyTorch as `torch` or a CUDA build, and both import alike.
_LIBRARIES = {
    "mlgate": "mlgate",
    "scikit-learn": "sklearn",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "skops": "skops",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "safetensors": "safetensors",
}
# Other names the same module is published under: asked before reading every distribution's
# file list (0.8-2 s of each training here, for xgboost-cpu alone).
_ALSO_INSTALLED_AS = {"xgboost": ("xgboost-cpu",), "torch": ("torch-cpu",)}


def library_versions() -> dict[str, str]:
    """The Python and library versions a version is trained with (those installed)."""
    out = {"python": sys.version.split()[0]}
    for name, module in _LIBRARIES.items():
        found = module_version(module, usual=(name, *_ALSO_INSTALLED_AS.get(name, ())))
        if found is not None:
            out[name] = found
    return out


def module_version(module: str, *, usual: str | tuple[str, ...] = ()) -> str | None:
    """The version of an importable module: its own `__version__` once imported (the models'
    libraries are), else that of the distribution that installs it, whatever that one is called
    (importing torch only to ask would cost seconds); None when it is not installed. The
    distribution's usual names (`usual`) are asked first: finding it among all installed ones
    reads every distribution's file list (2 s a training here)."""
    loaded = sys.modules.get(module)
    version = getattr(loaded, "__version__", None)
    if isinstance(version, str):
        return version
    if importlib.util.find_spec(module) is None:
        return None
    for name in (usual,) if isinstance(usual, str) else usual:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # installed under another name: try the next, then look it up
    for distribution in _distributions().get(module, []):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()
