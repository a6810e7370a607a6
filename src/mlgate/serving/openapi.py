"""An OpenAPI document for one model, generated from its training signature: the exact row
shape its prediction endpoint takes (every column, its type, null allowed) and what it answers
(labels from its classes, probabilities in their order). Client generators and validators can
use it as they are."""

from __future__ import annotations

from typing import Any

from mlgate import __version__
from mlgate.registry.model import ModelVersion
from mlgate.training.seen import KINDS

# The bounds the server holds these numbers to (mlgate/api/schemas.py's MAX_NUMBER and MAX_SEED,
# serving/service.py's MAX_TOP), stated so that a client or a fuzzer reading this document sends
# nothing the server refuses for its size.
MAX_NUMBER = 2**31 - 1
MAX_SEED = 2**32 - 1

_TYPES: dict[str, dict[str, Any]] = {
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "string": {"type": ["string", "null"]},
    "text": {"type": ["string", "null"]},
    "datetime": {"type": ["string", "null"], "format": "date-time"},
}


def model_openapi(version: ModelVersion, *, path_name: str) -> dict[str, Any]:
    row = {
        "type": "object",
        "required": [c.name for c in version.columns],
        "additionalProperties": False,
        "properties": {c.name: dict(_TYPES[c.type]) for c in version.columns},
    }
    label: dict[str, Any] = {"type": ["number", "string", "boolean"]}
    answer: dict[str, Any] = {
        "type": "object",
        "required": ["model", "version", "predictions"],
        "properties": {
            "model": {"type": "string", "const": version.model_name},
            "version": {"type": "integer"},
            "predictions": {"type": "array", "items": label},
        },
    }
    if version.classes is not None:
        label["enum"] = list(version.classes)
        answer["properties"]["classes"] = {"type": "array", "items": label}
        answer["properties"]["probabilities"] = {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                "minItems": len(version.classes),
                "maxItems": len(version.classes),
            },
        }
    if version.task in ("classification", "regression"):
        answer["properties"].update(_explained(version))
        answer["properties"]["warnings"] = _warnings(version)
    problem = {"$ref": "#/components/schemas/Problem"}
    errors = {
        str(status): {
            "description": text,
            "content": {"application/problem+json": {"schema": problem}},
        }
        for status, text in [
            (400, "The body is not JSON"),
            (401, "No valid API key"),
            (403, "The key may not call this model"),
            (413, "Too many rows or too large a body"),
            (422, "Rows that do not fit this schema"),
            (429, "A plan limit was reached"),
        ]
    }
    paths = {f"/v1/models/{path_name}/predict": {"post": _predict(row, answer, errors)}}
    if version.task == "generation":
        paths = {f"/v1/models/{path_name}/generate": {"post": _generate(version, row, errors)}}
    elif version.task == "forecast":
        paths = {f"/v1/models/{path_name}/forecast": {"post": _forecast(version, errors)}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{version.model_name} (mlgate)",
            "version": str(version.number),
            "description": (
                f"{version.task} model {version.model_name} v{version.number} "
                f"({version.algorithm}) predicting {version.target}; "
                f"served by mlgate {__version__}."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Row": row,
                "Problem": {
                    "type": "object",
                    "required": ["title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "code": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }


def _predict(row: dict[str, Any], answer: dict[str, Any], errors: dict[str, Any]) -> Any:
    return {
        "operationId": "predict",
        "security": [{"bearer": []}],
        "requestBody": _body(
            {
                "type": "object",
                "required": ["rows"],
                "additionalProperties": False,
                "properties": {
                    "rows": {"type": "array", "minItems": 1, "items": row},
                    "explain": {
                        "description": "Explain each row: true, or the `top` largest "
                        "contributions per row (the rest summed as `other`). A consumer's "
                        "plan must include explanations (else 403 "
                        "plan_excludes_explanations).",
                        "oneOf": [
                            {"type": "boolean"},
                            {
                                "type": "object",
                                "required": ["top"],
                                "additionalProperties": False,
                                "properties": {
                                    "top": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}
                                },
                            },
                        ],
                    },
                },
            }
        ),
        "responses": {"200": _ok("One prediction per row, in order", answer), **errors},
    }


def _warnings(version: ModelVersion) -> dict[str, Any]:
    """The answer's `warnings` (training/seen.py): present only when a row has one."""
    return {
        "type": "object",
        "description": "Rows with a value outside what training saw, by row index (0 = the "
        "first row); absent when every row is within it",
        "additionalProperties": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["column", "kind", "value", "seen", "message"],
                "properties": {
                    "column": {"enum": [c.name for c in version.columns]},
                    "kind": {"enum": list(KINDS)},
                    "value": {"description": "the row's value (null when missing)"},
                    "seen": {
                        "description": "[low, high] for outside_range; the most frequent "
                        "categories for unseen_category; null for missing"
                    },
                    "message": {"type": "string"},
                },
            },
        },
    }


def _explained(version: ModelVersion) -> dict[str, Any]:
    """The answer's fields when the body asked to explain (explainers/explain.py)."""
    names = [c.name for c in version.columns]
    contribution = {"type": "number"}
    return {
        "explanation": {
            "type": "object",
            "description": "How the rows were explained: method, implementation, scale "
            "(what base + contributions add up to) and, for sampling, its budget",
            "required": ["method", "implementation", "scale", "reference"],
            "properties": {
                "method": {"enum": ["linear", "tree_shap", "sampling"]},
                "implementation": {"type": "string"},
                "scale": {"enum": ["log-odds", "margin", "probability", "prediction"]},
                "reference": {"type": "string"},
                "budget": {"type": "object"},
            },
        },
        "explanations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["base", "value", "contributions"],
                "properties": {
                    "base": {"type": "number"},
                    "value": {"type": "number", "description": "base + contributions"},
                    "class": {"description": "the class whose output is explained"},
                    "contributions": {
                        "type": "object",
                        "properties": {n: contribution for n in [*names, "other"]},
                        "additionalProperties": False,
                    },
                    "errors": {
                        "type": "object",
                        "description": "standard errors of sampled contributions",
                    },
                },
            },
        },
    }


def _generate(version: ModelVersion, row: dict[str, Any], errors: dict[str, Any]) -> Any:
    rows = {"type": "array", "items": {**row, "required": list(row["required"])}}
    return {
        "operationId": "generate",
        "security": [{"bearer": []}],
        "requestBody": _body(
            {
                "type": "object",
                "required": ["n"],
                "additionalProperties": False,
                "properties": {
                    "n": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER},
                    "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED},
                },
            }
        ),
        "responses": {
            "200": _ok(
                f"n synthetic rows like those {version.model_name} learned",
                {
                    "type": "object",
                    "required": ["model", "version", "rows"],
                    "properties": {
                        "model": {"type": "string", "const": version.model_name},
                        "version": {"type": "integer"},
                        "rows": rows,
                    },
                },
            ),
            **errors,
        },
    }


def _forecast(version: ModelVersion, errors: dict[str, Any]) -> Any:
    params = version.params or {}
    window, horizon = int(params.get("window", 1)), int(params.get("horizon", 1))
    return {
        "operationId": "forecast",
        "security": [{"bearer": []}],
        "requestBody": _body(
            {
                "type": "object",
                "required": ["history"],
                "additionalProperties": False,
                "properties": {
                    "history": {"type": "array", "items": {"type": "number"}, "minItems": window}
                },
            }
        ),
        "responses": {
            "200": _ok(
                f"the next {horizon} values of {version.target}",
                {
                    "type": "object",
                    "required": ["model", "version", "forecast"],
                    "properties": {
                        "model": {"type": "string", "const": version.model_name},
                        "version": {"type": "integer"},
                        "forecast": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": horizon,
                            "maxItems": horizon,
                        },
                    },
                },
            ),
            **errors,
        },
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
