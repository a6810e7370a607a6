"""Batched permutation importance (training/permutation.py) measures what scikit-learn's does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlgate.training import permutation
from mlgate.training.permutation import permutation_drops


def _table(n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({
        "strong": rng.normal(size=n),
        "weak": rng.normal(size=n),
        "noise": rng.normal(size=n),
        "plan": pd.Categorical(rng.choice(["basic", "gold", "silver"], size=n)),
    })  # fmt: skip
    signal = 2.0 * X["strong"] + 0.4 * X["weak"] + (X["plan"] == "gold") * 1.5
    return X, signal.to_numpy()


def _pipeline(model: object) -> Pipeline:
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(), ["plan"])], remainder="passthrough"
    )
    return Pipeline([("encode", encode), ("model", model)])


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_drops_agree_with_scikit_learn(task: str) -> None:
    X, signal = _table()
    y = (
        signal + np.random.default_rng(4).normal(size=len(X))
        if task == "regression"
        else ((signal > 0).astype(int))
    )
    model = LinearRegression() if task == "regression" else LogisticRegression()
    pipeline = _pipeline(model).fit(X, y)
    ours = permutation_drops(task, pipeline, X, pd.Series(y), repeats=30, seed=1)  # type: ignore[arg-type]
    theirs = permutation_importance(
        pipeline, X, y, n_repeats=30, random_state=1,
        scoring="r2" if task == "regression" else "accuracy",
    )  # fmt: skip
    assert ours.shape == (4, 30)
    # Different shuffles, the same statistic: the means agree within their sampling error.
    spread = np.sqrt(ours.var(axis=1) / 30 + theirs.importances.var(axis=1) / 30)
    assert np.all(np.abs(ours.mean(axis=1) - theirs.importances_mean) <= 4 * spread + 1e-3)
    order = list(np.argsort(-ours.mean(axis=1)))
    assert order[0] == 0 and ours.mean(axis=1)[2] == pytest.approx(0.0, abs=0.02)


def test_every_copy_is_scored_on_its_own_slice_across_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of one copy each give the same drops as one batch of all of them."""
    X, signal = _table(200)
    pipeline = _pipeline(LinearRegression()).fit(X, signal)
    y = pd.Series(signal)
    together = permutation_drops("regression", pipeline, X, y, repeats=3, seed=7)
    monkeypatch.setattr(permutation, "BATCH_ROWS", 200)
    apart = permutation_drops("regression", pipeline, X, y, repeats=3, seed=7)
    assert np.allclose(together, apart)
    # The column the model leans on most drops the score most; pure noise hardly at all.
    assert together[0].min() > together[1].max() > np.abs(together[2]).max()
    assert np.abs(together[2]).max() < 0.01


def test_a_shuffled_copy_keeps_the_column_types() -> None:
    X, _ = _table(5)
    every = np.arange(5)
    stacked = permutation._stacked(X, [(3, np.array([4, 3, 2, 1, 0]), every), (0, every, every)])
    assert len(stacked) == 10 and list(stacked.columns) == list(X.columns)
    assert isinstance(stacked["plan"].dtype, pd.CategoricalDtype)
    assert stacked["plan"].tolist()[:5] == X["plan"].tolist()[::-1]
    assert stacked["plan"].tolist()[5:] == X["plan"].tolist()
    assert stacked["strong"].tolist() == X["strong"].tolist() * 2


class _Counting:
    """A fitted pipeline that counts the rows it is asked to predict."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.rows = pipeline, 0

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.rows += len(X)
        return np.asarray(self.pipeline.predict(X))


def test_rows_a_shuffle_leaves_as_they_were_keep_their_prediction_and_the_drops() -> None:
    """Only the rows whose value a shuffle changed are scored again, and the drops are exactly
    those of scoring every row of every shuffled copy (here, the straightforward way)."""
    rng = np.random.default_rng(5)
    n = 300
    X = pd.DataFrame({
        "pixel": rng.choice([0.0, 0.0, 0.0, 16.0, np.nan], size=n),  # mostly blank
        "signed": rng.choice([0.0, -0.0, 1.0], size=n),  # -0.0 is a value of its own
        "count": rng.integers(0, 3, size=n),
        "plan": pd.Categorical(rng.choice(["basic", "gold"], size=n)),
        "note": pd.Series(rng.choice(["a", None], size=n), dtype=object),
        "level": rng.normal(size=n),
    })  # fmt: skip
    y = ((X["pixel"].fillna(8) > 4) ^ (X["plan"] == "gold") ^ (X["level"] > 0)).astype(int)
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), ["plan", "note"]),
         ("numbers", "passthrough", ["pixel", "signed", "count", "level"])],
    )  # fmt: skip
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier

    tree = make_pipeline(SimpleImputer(fill_value=-1.0, strategy="constant"),
                         DecisionTreeClassifier(max_depth=6, random_state=0))  # fmt: skip
    pipeline = Pipeline([("encode", encode), ("model", tree)])
    pipeline.fit(X, y)
    counting = _Counting(pipeline)
    drops = permutation_drops("classification", counting, X, y, repeats=4, seed=11)
    # The same shuffles, every row of every copy scored on its own.
    shuffles = np.random.default_rng(11)
    truth = y.to_numpy()
    baseline = float(np.mean(pipeline.predict(X) == truth))
    expected = np.empty((X.shape[1], 4))
    changed = 0
    for j in range(X.shape[1]):
        for r in range(4):
            order = shuffles.permutation(n)
            copy = X.copy()
            copy.iloc[:, j] = X.iloc[order, j].to_numpy()
            expected[j, r] = baseline - float(np.mean(pipeline.predict(copy) == truth))
            changed += int(permutation._moved(X.iloc[:, j], order).sum())
    assert np.array_equal(drops, expected)
    assert counting.rows == n + changed  # the holdout once, then only the changed rows
    assert counting.rows < n + n * X.shape[1] * 4 * 0.75
    assert drops[0].mean() > 0.05 and drops[5].mean() > 0.05  # what the model leans on


def test_a_moved_value_is_told_apart_bit_for_bit() -> None:
    order = np.array([1, 0, 3, 2])
    numbers = pd.Series([0.0, -0.0, np.nan, np.nan])
    assert permutation._moved(numbers, order).tolist() == [True, True, False, False]
    words = pd.Series(["a", "a", None, "b"], dtype=object)
    assert permutation._moved(words, order).tolist() == [False, False, True, True]
    kinds = pd.Series(pd.Categorical(["x", "y", "x", "x"]))
    assert permutation._moved(kinds, order).tolist() == [True, True, False, False]
