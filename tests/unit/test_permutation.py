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
    stacked = permutation._stacked(X, [(3, np.array([4, 3, 2, 1, 0])), (0, np.arange(5))])
    assert len(stacked) == 10 and list(stacked.columns) == list(X.columns)
    assert isinstance(stacked["plan"].dtype, pd.CategoricalDtype)
    assert stacked["plan"].tolist()[:5] == X["plan"].tolist()[::-1]
    assert stacked["plan"].tolist()[5:] == X["plan"].tolist()
    assert stacked["strong"].tolist() == X["strong"].tolist() * 2
