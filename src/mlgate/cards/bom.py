"""A version's ML bill of materials: a CycloneDX 1.6 document (cyclonedx-python-lib).

The model is the BOM's subject (metadata.component), a `machine-learning-model` component with
its artifact's sha256 and its model card; the training data snapshot a `data` component with its
sha256; every library and version the artifact was trained with (the version's lineage) a
`library` component with its package URL; the signature, where the version is signed, a
property of the model naming its key and signer. cyclonedx-python-lib 11 does not model
`modelCard` nor a component's `data`: the document it writes gets them as the schema spells
them, and `validate` checks the whole against CycloneDX's own JSON schema."""

from __future__ import annotations

import functools
import json
from typing import Any

from mlgate.cards.model import ModelCard
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion

# What every version's artifact needs to load and score: the preprocessing is a scikit-learn
# pipeline read with skops, over numpy, pandas and scipy. Its algorithm's library comes on top.
CORE_LIBRARIES = ("python", "mlgate", "numpy", "pandas", "scipy", "scikit-learn", "skops")
_LIBRARY_NEEDS = {"torch": ("torch", "safetensors")}


def needed_libraries(version: ModelVersion) -> dict[str, str]:
    """The libraries (and their versions, from the lineage) `version`'s artifact needs: the core
    and its algorithm's library, not every model library that happened to be installed when it
    was trained (an XGBoost model needs no torch; a scanner would flag what it does not run).
    A version whose algorithm the catalogue does not know keeps every library recorded."""
    from mlgate.errors import NotFound
    from mlgate.training.catalogue import get_algorithm

    try:
        library = get_algorithm(version.algorithm).library
    except NotFound:
        return dict(version.library_versions)
    wanted = {*CORE_LIBRARIES, *_LIBRARY_NEEDS.get(library, (library,))}
    return {k: v for k, v in version.library_versions.items() if k in wanted}


SPEC = "1.6"
_PYPI = {"mlgate", "scikit-learn", "numpy", "pandas", "scipy", "skops", "xgboost", "lightgbm",
         "catboost", "torch", "safetensors"}  # fmt: skip


def bom_of(version: ModelVersion, card: ModelCard) -> dict[str, Any]:
    """The version's CycloneDX ML-BOM as JSON data (serialNumber and timestamp included)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    data = card.to_json()
    model = Component(
        name=version.model_name,
        version=str(version.number),
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model:{version.model_name}@{version.number}",
        description=version.description or None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=version.artifact.sha256)],
        properties=_properties(version, data, Property),
    )
    snapshot = Component(
        name=f"{version.model_name}-v{version.number}-training-rows",
        type=ComponentType.DATA,
        bom_ref=f"data:{version.lineage.data_sha256}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=version.lineage.data_sha256)],
    )
    libraries = []
    for name, found in sorted(needed_libraries(version).items()):
        purl = (
            PackageURL(type="pypi", name=name, version=found)
            if name in _PYPI
            else PackageURL(type="generic", name=name, version=found)
        )
        libraries.append(
            Component(
                name=name,
                version=found,
                type=ComponentType.LIBRARY if name != "python" else ComponentType.PLATFORM,
                purl=purl,
                bom_ref=str(purl),
            )  # fmt: skip
        )
    bom = Bom()
    bom.metadata.component = model
    bom.components.add(snapshot)
    for library in libraries:
        bom.components.add(library)
    bom.register_dependency(model, [snapshot, *libraries])
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    document["metadata"]["component"]["modelCard"] = _model_card(version, data, snapshot)
    for component in document.get("components", []):
        if component.get("type") == "data":
            component["data"] = [_dataset(version, data)]
    return document


def validate(document: dict[str, Any]) -> None:
    """InvalidInput unless `document` validates against CycloneDX 1.6's JSON schema (the
    schema ships with cyclonedx-python-lib: no network)."""
    error = _validator().validate_str(json.dumps(document))
    if error is not None:
        raise InvalidInput(f"the ML-BOM does not validate against CycloneDX {SPEC}: {error}")


@functools.cache
def _validator() -> Any:
    """The schema's validator, made once (reading the schema costs about 0.5 s)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def _properties(version: ModelVersion, data: dict[str, Any], prop: Any) -> list[Any]:
    found = [
        prop(name="mlgate:algorithm", value=version.algorithm),
        prop(name="mlgate:artifact-format", value=version.artifact.format),
        prop(name="mlgate:created-at", value=version.created_at.isoformat()),
    ]
    signature = data.get("signature")
    if signature:
        found += [
            prop(name="mlgate:signature:format", value="OpenSSF Model Signing (sigstore bundle)"),
            prop(name="mlgate:signature:key-id", value=signature["key_id"]),
            prop(name="mlgate:signature:signed-by", value=signature["signed_by"]),
            prop(name="mlgate:signature:signed-at", value=signature["signed_at"]),
            prop(
                name="mlgate:signature:ref",
                value=f"/v1/models/{version.model_name}/versions/{version.number}/signature",
            ),  # fmt: skip
        ]
    return found


def _dataset(version: ModelVersion, data: dict[str, Any]) -> dict[str, Any]:
    lineage = data["data"]
    where = lineage["table"] or "query"
    return {
        "type": "dataset",
        "name": f"{lineage['source']}:{where}",
        "contents": {
            "properties": [
                {"name": "mlgate:rows", "value": str(lineage["n_rows"])},
                {"name": "mlgate:sha256", "value": lineage["snapshot_sha256"]},
                {"name": "mlgate:test-size", "value": str(lineage["test_size"])},
            ]
        },
        "classification": "training",
        "description": f"The {lineage['n_rows']} rows {version.ref} was trained on, as stored "
        "with it (a Parquet snapshot)",
    }


def _model_card(version: ModelVersion, data: dict[str, Any], snapshot: Any) -> dict[str, Any]:
    if version.task not in ("classification", "regression", "generation", "forecast"):
        raise InvalidInput(f"{version.ref}: no model card for a {version.task} model")
    metrics = []
    for name, found in data["evaluation"]["metrics"].items():
        metrics.append(_metric(name, found["value"], found["interval"], None))
    for group in (data.get("slices") or {}).get("columns", []):
        for s in group["slices"]:
            for name, value in s["metrics"].items():
                metrics.append(
                    _metric(name, value, s["intervals"].get(name), f"{s['column']}={s['value']}")
                )
    considerations: dict[str, Any] = {}
    if data["intended_use"]:
        considerations["useCases"] = [data["intended_use"]]
    if data["limitations"]:
        considerations["technicalLimitations"] = list(data["limitations"])
    card: dict[str, Any] = {
        "bom-ref": f"card:{version.model_name}@{version.number}",
        "modelParameters": {
            "task": version.task,
            "architectureFamily": version.algorithm,
            "datasets": [{"ref": str(snapshot.bom_ref)}],
            "inputs": [{"format": "tabular"}],
            "outputs": [{"format": "label" if version.task == "classification" else "number"}],
        },
        "quantitativeAnalysis": {"performanceMetrics": metrics},
    }
    if considerations:
        card["considerations"] = considerations
    if data["owner"]:
        card["properties"] = [{"name": "mlgate:owner", "value": data["owner"]}]
    return card


def _metric(
    name: str, value: float, interval: list[float] | tuple[float, float] | None, where: str | None
) -> dict[str, Any]:
    found: dict[str, Any] = {"type": name, "value": f"{value:.6g}"}
    if where is not None:
        found["slice"] = where
    if interval:
        found["confidenceInterval"] = {
            "lowerBound": f"{interval[0]:.6g}",
            "upperBound": f"{interval[1]:.6g}",
        }
    return found
