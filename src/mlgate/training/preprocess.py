"""Preprocessing chosen from column types, fitted and saved inside the model's pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlgate.schema import Column

MISSING_CATEGORY = "__missing__"


def build_preprocessor(columns: Sequence[Column], *, scale: bool) -> ColumnTransformer:
    """Numbers (and booleans as 0/1): median imputation, then scaling if the algorithm needs it.
    Strings: missing becomes its own category, then one-hot; categories unseen in training are
    encoded as all zeros rather than refused."""
    numeric = [c.name for c in columns if c.type in ("number", "boolean")]
    categorical = [c.name for c in columns if c.type == "string"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
                        ),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(transformers)


def build_pipeline(columns: Sequence[Column], estimator: Any, *, scale: bool) -> Pipeline:
    return Pipeline(
        [("preprocess", build_preprocessor(columns, scale=scale)), ("model", estimator)]
    )
