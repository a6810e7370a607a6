"""OneHot moved from training/encoders.py to runtime/encoders.py with the model runtime; model
files written before the move name the old path, and still load (and score) as they did."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pandas as pd

from mlgate.registry import formats
from mlgate.runtime.encoders import OneHot


def _renamed(data: bytes, old: str, new: str) -> bytes:
    """The same skops file, its schema naming `new` wherever it named `old`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            raw = source.read(item)
            if item.filename == "schema.json":
                raw = json.dumps(json.loads(raw)).replace(old, new).encode()
            target.writestr(item, raw)
    return out.getvalue()


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


def test_a_model_file_naming_the_old_path_loads_and_encodes_alike() -> None:
    frame = pd.DataFrame({"city": ["a", "b", None, "a"]})
    fitted = OneHot().fit(frame)
    now = formats.dump(fitted)
    assert "mlgate.runtime.encoders" in str(formats.types_in(now))
    before = _renamed(now, "mlgate.runtime.encoders", "mlgate.training.encoders")
    assert formats.types_in(before) >= {"mlgate.training.encoders.OneHot"}
    loaded = formats.load_skops(before, "v1")
    assert isinstance(loaded, OneHot)
    expected = fitted.transform(frame)
    got = loaded.transform(frame)
    assert (_dense(got) == _dense(expected)).all()
