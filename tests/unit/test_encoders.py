"""The one-hot encoder that replaced scikit-learn's imputer + OneHotEncoder pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlgate.registry import formats
from mlgate.runtime.encoders import MISSING_CATEGORY, OneHot

TRAIN = pd.DataFrame(
    {"plan": ["pro", None, "basic", "pro", "team"], "region": ["eu", "us", "eu", "us", "eu"]},
    dtype=object,
)


def test_categories_are_sorted_with_missing_last_only_where_training_had_it() -> None:
    encoder = OneHot().fit(TRAIN)
    assert [c.tolist() for c in encoder.categories_] == [
        ["basic", "pro", "team", MISSING_CATEGORY],
        ["eu", "us"],
    ]
    assert encoder.get_feature_names_out().tolist() == [
        "plan_basic", "plan_pro", "plan_team", f"plan_{MISSING_CATEGORY}", "region_eu", "region_us",
    ]  # fmt: skip


def test_unknown_values_and_unseen_missing_encode_as_all_zeros() -> None:
    encoder = OneHot().fit(TRAIN)
    rows = pd.DataFrame({"plan": ["enterprise", None], "region": [None, "apac"]}, dtype=object)
    assert encoder.transform(rows).tolist() == [
        [0, 0, 0, 0, 0, 0],  # unknown plan; region had no missing values in training
        [0, 0, 0, 1, 0, 0],  # missing plan is a category of its own; unknown region
    ]


def test_agrees_with_scikit_learns_imputer_and_encoder_on_random_data() -> None:
    rng = np.random.default_rng(3)
    values = rng.choice(np.array(["a", "b", "c", None], dtype=object), size=(500, 3))
    frame = pd.DataFrame(values, columns=["x", "y", "z"], dtype=object)
    test = pd.DataFrame(
        rng.choice(np.array(["a", "c", "d", None], dtype=object), size=(200, 3)),
        columns=frame.columns,
        dtype=object,
    )
    ours = OneHot().fit(frame)
    theirs = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    ).fit(frame)
    # Same columns, maybe in another order ("__missing__" sorts before lowercase letters there).
    # (It keeps None as a category of its own rather than imputing it: the same thing.)
    names = [
        str(n).replace("None", MISSING_CATEGORY)
        for n in theirs[-1].get_feature_names_out(frame.columns)
    ]
    order = [names.index(name) for name in ours.get_feature_names_out()]
    np.testing.assert_array_equal(ours.transform(test), theirs.transform(test)[:, order])
    np.testing.assert_array_equal(ours.fit_transform(frame), ours.transform(frame))


def test_sparse_output_equals_dense_and_the_encoder_round_trips_through_skops() -> None:
    dense = OneHot().fit(TRAIN)
    sparse = OneHot(sparse_output=True).fit(TRAIN)
    np.testing.assert_array_equal(sparse.transform(TRAIN).toarray(), dense.transform(TRAIN))
    data = formats.dump(dense)
    loaded = formats.load(data, expected_sha256=formats.sha256_of(data), ref="t@1")
    np.testing.assert_array_equal(loaded.transform(TRAIN), dense.transform(TRAIN))
