"""Preprocessing chosen from column types and the algorithm, fitted and saved with the model.

The matrix a model sees is laid out as numbers (and booleans, and datetime parts) first, then one
block per categorical column, then the words of each text column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from mlgate.errors import InvalidInput
from mlgate.runtime.encoders import MISSING_CATEGORY, OneHot
from mlgate.schema import Column
from mlgate.training.catalogue import Algorithm, FeatureLayout


def layout_of(columns: Sequence[Column], X: pd.DataFrame) -> FeatureLayout:
    numeric = [c.name for c in columns if c.type in ("number", "boolean")]
    values = X[numeric].to_numpy(dtype="float64", na_value=np.nan) if numeric else np.empty((0, 0))
    present = values[~np.isnan(values)] if values.size else values
    return FeatureLayout(
        n_numeric=len(numeric),
        n_categorical=sum(c.type == "string" for c in columns),
        has_text=any(c.type == "text" for c in columns),
        all_non_negative=bool(present.size == 0 or present.min() >= 0),
        all_binary=bool(
            numeric
            and all(c.type in ("number", "boolean") for c in columns)
            and np.isin(present, (0.0, 1.0)).all()
        ),
    )


def build_preprocessor(columns: Sequence[Column], algorithm: Algorithm) -> ColumnTransformer:
    """Numbers: median imputation (unless the model takes missing values itself), then scaling if
    the algorithm needs it. Categories: one-hot with missing as its own category (linear and
    kernel models), ordinal codes with missing left to the model (trees; boosters split on them
    natively) or the strings themselves (CatBoost). Text: TF-IDF of words and pairs. Categories
    unseen in training are encoded as "none of the known ones", never refused."""
    numeric = [c.name for c in columns if c.type in ("number", "boolean")]
    categorical = [c.name for c in columns if c.type == "string"]
    text = [c.name for c in columns if c.type == "text"]
    if text and not algorithm.accepts_text:
        raise InvalidInput(
            f"{algorithm.name} does not take free-text columns ({', '.join(text)}); use "
            "logistic_regression, naive_bayes, svm or linear_svm, or drop them from the inputs"
        )
    transformers: list[tuple[str, Any, Any]] = []
    if numeric:
        steps: list[tuple[str, Any]] = []
        if not algorithm.native_missing:
            # np.median on each column's present values equals strategy="median", 7x faster
            # (scikit-learn's own median goes through masked arrays).
            median = SimpleImputer(strategy=np.median, keep_empty_features=True)
            steps.append(("impute", median))
        if algorithm.needs_scaling:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        encode: list[tuple[str, Any]] = []
        if algorithm.encoding == "onehot":
            # Missing is a category of its own. Dense unless text makes the matrix wide (or the
            # model wants dense anyway): building sparse and then densifying costs more.
            encode.append(("encode", OneHot(sparse_output=bool(text) and not algorithm.dense)))
        elif algorithm.encoding == "strings" or not algorithm.native_missing:
            impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
            encode.append(("impute", impute))
        if algorithm.encoding == "ordinal":
            # Missing stays NaN (the model's own "missing"); unseen categories become NaN too.
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
            encode.append(("encode", encoder))
        transformers.append(("categorical", Pipeline(encode), categorical))
    for name in text:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), max_features=20_000, sublinear_tf=True)
        transformers.append((f"text_{name}", vectorizer, name))
    return ColumnTransformer(transformers, sparse_threshold=0.0 if algorithm.dense else 0.3)


def build_pipeline(columns: Sequence[Column], estimator: Any, algorithm: Algorithm) -> Pipeline:
    return Pipeline([("preprocess", build_preprocessor(columns, algorithm)), ("model", estimator)])
