"""What a file handed to `mlgate models import-file` is: found from its bytes, checked against its
name, and never unpickled.

A file is an ONNX graph, an XGBoost model (UBJSON or JSON), a LightGBM model (text), a CatBoost
model (cbm), a skops file, or an MLflow model directory (or a zip of one) whose flavor stores one
of those. Pickles, and MLflow flavors stored as pickles, are refused with how to save the model
again without one.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.archives import ArchiveLimits, open_zip, read_entry
from mlgate.errors import InvalidInput

MAX_FILE_BYTES = 512 * 1024 * 1024
_EXTENSIONS = {
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".json": "xgboost",
    ".txt": "lightgbm",
    ".lgb": "lightgbm",
    ".cbm": "catboost",
    ".cb": "catboost",
    ".skops": "skops",
}
_PICKLES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".pt", ".pth", ".bin", ".model")
_RESAVE = {
    "sklearn": "skops.io.dump(model, 'model.skops')",
    "xgboost": "model.save_model('model.ubj')",
    "lightgbm": "model.booster_.save_model('model.txt')",
    "catboost": "model.save_model('model.cbm')",
    "pytorch": "torch.onnx.export(model, example, 'model.onnx', dynamic_axes=...)",
}


class RefusedModel(InvalidInput):
    """A model file mlgate will not register; `code` names why (the API's problem code)."""

    exit_code = 3

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ModelFile:
    """A model file, identified: its kind (foreign.KINDS), its bytes, and where it came from."""

    kind: str
    raw: bytes
    name: str  # the file's name as given
    origin: str  # "file model.onnx" or "MLflow directory run/model (flavor xgboost)"
    mlflow: dict[str, Any] = field(default_factory=dict)  # the MLmodel document, if any


def read_path(path: Path, limits: ArchiveLimits | None = None) -> ModelFile:
    """The model at `path`: a file, or an MLflow model directory."""
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise RefusedModel(
                f"{path} is a folder without an MLmodel file: give a model file, or an MLflow "
                "model directory",
                code="not_a_model_file",
            )
        files = {
            str(p.relative_to(path)): p.read_bytes()
            for p in path.rglob("*")
            if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES
        }
        return from_mlflow(files, str(path))
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RefusedModel(
                f"{path} holds {size:,} bytes; a model file may hold {MAX_FILE_BYTES:,}",
                code="file_too_large",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return identify(path.name, raw, limits)


def identify(name: str, raw: bytes, limits: ArchiveLimits | None = None) -> ModelFile:
    """The kind of `raw`, from its bytes; refused where its name says another kind. A zip (a
    skops file, a zipped MLflow directory) is read within `limits` (mlgate/archives.py; default
    ArchiveLimits()): ArchiveTooLarge (413) names the limit it passes."""
    suffix = Path(name).suffix.lower()
    found = _sniff(raw)
    if found == "pickle" or suffix in _PICKLES:
        raise RefusedModel(
            f"{name} is a pickle{'' if found == 'pickle' else ' (by its name)'}: mlgate never "
            "unpickles, since loading a pickle runs whatever code it names. Save the model in a "
            f"data-only format and import that: {_how_to_resave()}",
            code="pickle_refused",
        )
    if found == "zip":
        limits = limits or ArchiveLimits()
        with open_zip(raw, limits, what=Path(name).name) as archive:
            names = archive.namelist()
            if "schema.json" in names:
                found = "skops"
            elif any(n == "MLmodel" or n.endswith("/MLmodel") for n in names):
                files = _unzipped(archive, limits)
                return from_mlflow(files, name)
            else:
                raise RefusedModel(
                    f"{name} is a zip that is neither a skops file nor an MLflow model "
                    "directory (it has no schema.json and no MLmodel)",
                    code="not_a_model_file",
                )
    expected = _EXTENSIONS.get(suffix)
    if found is None:
        raise RefusedModel(
            f"{name} is not a model file mlgate reads (ONNX .onnx, XGBoost .ubj/.json, "
            "LightGBM .txt, CatBoost .cbm, skops .skops, or an MLflow model directory)",
            code="not_a_model_file",
        )
    if expected is not None and expected != found and suffix != ".zip":
        raise RefusedModel(
            f"{name} is named as a {expected} file but its bytes are a {found} file; rename "
            "it, or check that it is the file you meant",
            code="format_mismatch",
        )
    return ModelFile(found, raw, Path(name).name, f"file {Path(name).name}")


def _how_to_resave() -> str:
    return "; ".join(f"{library}: {call}" for library, call in _RESAVE.items())


def _sniff(raw: bytes) -> str | None:
    head = raw[:16]
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"CBM1"):
        return "catboost"
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"{"):
        # XGBoost: UBJSON ({ then a length marker) or JSON ({"learner": ...).
        if head[1:2] in (b"L", b"i", b"U", b"I", b"l", b"$", b"#"):
            return "xgboost"
        if b'"learner"' in raw[:4096]:
            return "xgboost"
        return None
    if head[:1] == b"\x08":  # an ONNX ModelProto starts with its ir_version (field 1, varint)
        return "onnx"
    return None


def _unzipped(archive: zipfile.ZipFile, limits: ArchiveLimits) -> dict[str, bytes]:
    """The MLflow directory's files by relative path (entries' limits checked by open_zip)."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    marker = min((n for n in names if n == "MLmodel" or n.endswith("/MLmodel")), key=len)
    root = marker[: -len("MLmodel")]
    return {n[len(root) :]: read_entry(archive, n, limits) for n in names if n.startswith(root)}


# The flavors whose file is one of ours, and how each names the file in MLmodel.
_FLAVORS = ("onnx", "xgboost", "lightgbm", "catboost", "sklearn")
_PICKLE_FORMATS = ("pickle", "cloudpickle")


def from_mlflow(files: dict[str, bytes], where: str) -> ModelFile:
    """The model of an MLflow model directory (its files by relative path)."""
    import yaml

    try:
        document = yaml.safe_load(files["MLmodel"].decode())
        flavors = dict(document["flavors"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RefusedModel(
            f"the MLmodel file of {where} cannot be read: {exc}", code="damaged_file"
        ) from None
    flavor = next((f for f in _FLAVORS if f in flavors), None)
    if flavor is None:
        found = ", ".join(sorted(f for f in flavors if f != "python_function")) or "python_function"
        raise RefusedModel(
            f"{where} is an MLflow model of flavor {found}, which mlgate does not import: it "
            "stores its model as a pickle or as code. Save it with the onnx, xgboost, "
            "lightgbm, catboost or sklearn (serialization_format='skops') flavor",
            code="pickle_refused",
        )
    spec = flavors[flavor] or {}
    file_name = spec.get("pickled_model") if flavor == "sklearn" else spec.get("data")
    serialization = str(spec.get("serialization_format") or "")
    pickled = serialization in _PICKLE_FORMATS or (flavor == "sklearn" and serialization != "skops")
    if flavor == "lightgbm" and str(file_name or "").endswith((".pkl", ".pickle")):
        pickled = True
    if pickled:
        raise RefusedModel(
            f"{where} stores its {flavor} model as a {serialization or 'pickle'}, which mlgate "
            "never loads (unpickling runs code). Save it again with "
            "mlflow.sklearn.save_model(model, path, serialization_format='skops'), or the "
            "library's own flavor (xgboost, lightgbm, catboost, onnx)",
            code="pickle_refused",
        )
    if not file_name or str(file_name) not in files:
        raise RefusedModel(
            f"{where}: MLmodel names the file {file_name!r}, which the directory lacks",
            code="damaged_file",
        )
    raw = files[str(file_name)]
    kind = "skops" if flavor == "sklearn" else flavor
    if flavor == "lightgbm" and str(file_name).endswith(".skops"):
        kind = "skops"
    if kind == "onnx" and _sniff(raw) != "onnx":
        raise RefusedModel(f"{where}: {file_name} is not an ONNX graph", code="damaged_file")
    return ModelFile(
        kind,
        raw,
        str(file_name),
        f"MLflow directory {Path(where).name} (flavor {flavor})",
        mlflow={"flavor": flavor, "spec": _plain(spec), "signature": document.get("signature")},
    )


def signature_columns(mlflow: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The (name, MLflow type) of each input an MLflow signature declares by name, or None."""
    signature = mlflow.get("signature") or {}
    raw = signature.get("inputs")
    if not raw:
        return None
    try:
        inputs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    named = [(str(i["name"]), str(i.get("type", ""))) for i in inputs if i.get("name")]
    return named if len(named) == len(inputs) else None


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
