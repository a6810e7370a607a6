"""Our own one-hot encoder for categorical columns: missing values as a category, in one pass.

scikit-learn's route (a constant `SimpleImputer` then `OneHotEncoder`) sorts and compares Python
strings over object arrays: about 1.5 s for three columns of a million rows here. Hashing through
pandas' categoricals does the same work in under 0.1 s, which is most of the difference between
mlgate's fit and the library's own on the same data (bench/train.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

MISSING_CATEGORY = "__missing__"


class OneHot(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """One column of 0/1 per category seen in training, sorted, with `MISSING_CATEGORY` last
    when training had missing values (so the first level, the reference in coefficient tables,
    is always a real one). A category unseen in training, or a missing value when training had
    none, is encoded as all zeros: "none of the known ones", never refused."""

    def __init__(self, sparse_output: bool = False) -> None:
        self.sparse_output = sparse_output

    def fit(self, X: Any, y: Any = None) -> OneHot:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **_: Any) -> Any:
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.categories_: list[np.ndarray] = []
        factorized = []
        for _name, column in frame.items():
            found, distinct = pd.factorize(column, use_na_sentinel=True)
            present = sorted(distinct.tolist(), key=str)
            if (found < 0).any():
                present.append(MISSING_CATEGORY)
            self.categories_.append(np.asarray(present, dtype=object))
            factorized.append((found, distinct))
        return self._encode(len(frame), factorized)

    def transform(self, X: Any) -> Any:
        frame = _as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} columns, got {frame.shape[1]}")
        factorized = [pd.factorize(column, use_na_sentinel=True) for _, column in frame.items()]
        return self._encode(len(frame), factorized)

    def _encode(self, n: int, factorized: list[tuple[np.ndarray, Any]]) -> Any:
        """Codes from each column's factorization (hashing, one pass each), mapped through the
        few distinct values to the fitted categories; -1 (unknown) writes no 1 at all."""
        blocks = []
        for (found, distinct), categories in zip(factorized, self.categories_, strict=True):
            has_missing = len(categories) > 0 and categories[-1] == MISSING_CATEGORY
            known = categories[:-1] if has_missing else categories
            lookup = np.append(pd.Index(known, dtype=object).get_indexer(distinct), -1)
            if has_missing:
                lookup[-1] = len(known)
            codes = lookup[found]  # factorize's -1 (missing) picks the last entry
            blocks.append((codes, len(categories)))
        if self.sparse_output:
            rows, cols, offset = [], [], 0
            for codes, width in blocks:
                hit = np.flatnonzero(codes >= 0)
                rows.append(hit)
                cols.append(codes[hit] + offset)
                offset += width
            r, c = np.concatenate(rows), np.concatenate(cols)
            data = np.ones(len(r), dtype=np.float64)
            return sparse.csr_matrix((data, (r, c)), shape=(n, offset))
        out = np.empty((n, sum(width for _, width in blocks)), dtype=np.float64)
        offset = 0
        for codes, width in blocks:
            np.equal(codes[:, None], np.arange(width), out=out[:, offset : offset + width])
            offset += width
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [
            f"{column}_{category}"
            for column, categories in zip(self.feature_names_in_, self.categories_, strict=True)
            for category in categories
        ]
        return np.asarray(names, dtype=object)


def _as_frame(X: Any) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
