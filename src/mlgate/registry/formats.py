"""Saving fitted models in a data-only format, and loading them only if they are what we saved.

scikit-learn pipelines are stored with skops, whose files describe every object by type. Loading
checks, in order: the sha256 recorded at registration, then that every type in the file is on
`TRUSTED_TYPES`. Nothing is unpickled; a file naming any other type is refused before it is loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import skops.io as sio

from mlgate.errors import ArtifactError

SKOPS = "skops"

TRUSTED_TYPES = frozenset(
    {
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.bool_",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
    }
)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump(estimator: Any) -> bytes:
    """The estimator as skops bytes; refuses estimators made of types we would not load."""
    data: bytes = sio.dumps(estimator)
    untrusted = types_in(data) - TRUSTED_TYPES
    if untrusted:
        names = ", ".join(sorted(untrusted))
        raise ArtifactError(f"the fitted model holds types mlgate does not load back: {names}")
    return data


def load(data: bytes, *, expected_sha256: str, ref: str) -> Any:
    """The estimator in `data`, after checking its sha256 and that it holds only trusted types."""
    actual = sha256_of(data)
    if actual != expected_sha256:
        raise ArtifactError(
            f"the artifact of {ref} does not match the sha256 recorded when it was registered "
            f"(expected {expected_sha256[:12]}…, found {actual[:12]}…); it was changed or damaged "
            "on disk, so it will not be loaded. Restore it from a backup or train a new version."
        )
    found = types_in(data)
    untrusted = found - TRUSTED_TYPES
    if untrusted:
        raise ArtifactError(
            f"the artifact of {ref} names types that are not on the trust list: "
            f"{', '.join(sorted(untrusted))}; it will not be loaded"
        )
    try:
        return sio.loads(data, trusted=sorted(found))
    except Exception as exc:  # skops raises many kinds; all mean "this file is unusable"
        raise ArtifactError(f"the artifact of {ref} could not be read: {exc}") from exc


def types_in(data: bytes) -> set[str]:
    """Every type a skops file names, as module.Class."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"not a skops file: {exc}") from None
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
