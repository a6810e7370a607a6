"""Our numpy metrics equal scikit-learn's, and the bootstrap intervals behave."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlgate.training import metrics as m
from mlgate.training.evaluate import Outputs, evaluate

rng = np.random.default_rng(0)


@pytest.mark.parametrize("k", [2, 3])
def test_classification_metrics_equal_sklearn(k: int) -> None:
    y = rng.integers(0, k, 300)
    proba = rng.dirichlet(np.ones(k), 300)
    pred = np.argmax(proba, axis=1)
    assert m.accuracy(y, pred, proba, k) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert m.balanced_accuracy(y, pred, proba, k) == pytest.approx(
        skm.balanced_accuracy_score(y, pred), abs=1e-9
    )
    average = "binary" if k == 2 else "macro"
    assert m.f1(y, pred, proba, k) == pytest.approx(
        skm.f1_score(y, pred, average=average), abs=1e-9
    )
    assert m.log_loss(y, pred, proba, k) == pytest.approx(skm.log_loss(y, proba), abs=1e-9)
    if k == 2:
        expected_auc = skm.roc_auc_score(y, proba[:, 1])
        expected_brier = skm.brier_score_loss(y, proba[:, 1])
    else:
        expected_auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        expected_brier = np.mean(np.sum((proba - np.eye(k)[y]) ** 2, axis=1))
    assert m.roc_auc(y, pred, proba, k) == pytest.approx(expected_auc, abs=1e-9)
    assert m.brier(y, pred, proba, k) == pytest.approx(expected_brier, abs=1e-9)


def test_roc_auc_shares_ranks_among_tied_scores_as_sklearn_does() -> None:
    """Trees and naive Bayes give many rows the same probability: ties count one half."""
    local = np.random.default_rng(5)
    y = local.integers(0, 3, 400)
    proba = np.round(local.random((400, 3)), 1) / 2  # steps of 0.05: many ties
    proba[:, 2] = 1 - proba[:, 0] - proba[:, 1]
    expected = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert m.roc_auc(y, np.argmax(proba, axis=1), proba, 3) == pytest.approx(expected, abs=1e-9)
    binary = (y == 1).astype(int)
    two = np.column_stack([1 - proba[:, 1], proba[:, 1]])
    assert m.roc_auc(binary, binary, two, 2) == pytest.approx(
        skm.roc_auc_score(binary, proba[:, 1]), abs=1e-9
    )


def test_regression_metrics_equal_sklearn() -> None:
    y = rng.normal(10, 3, 200)
    pred = y + rng.normal(0, 1, 200)
    assert m.rmse(y, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-9)
    assert m.mae(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-9)
    assert m.r2(y, pred) == pytest.approx(skm.r2_score(y, pred), abs=1e-9)
    assert m.mape(y, pred) == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-9)
    assert np.isnan(m.mape(np.array([0.0, 1.0]), np.array([1.0, 1.0])))


def test_intervals_hold_the_point_estimate_and_narrow_with_more_rows() -> None:
    def width(n: int) -> float:
        y = rng.integers(0, 2, n)
        p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, n), 0.01, 0.99)  # right ~75% of the time
        proba = np.column_stack([1 - p, p])
        out = evaluate("classification", y, Outputs(np.argmax(proba, 1), proba), y, n_classes=2)
        low, high = out.intervals["accuracy"]
        assert low <= out.metrics["accuracy"] <= high
        return high - low

    assert width(2000) < width(100)


def test_a_large_holdouts_interval_has_the_width_the_sampling_error_says() -> None:
    """Past RESAMPLE_ROWS the bootstrap resamples fewer rows and rescales; the interval must
    still be the whole holdout's: ~3.92 standard errors wide for an accuracy."""
    n = 400_000
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.75
    predictions = np.where(right, y, 1 - y)
    proba = np.column_stack([1 - predictions, predictions]).astype("float64") * 0.8 + 0.1
    out = evaluate("classification", y, Outputs(predictions, proba), y, n_classes=2)
    accuracy = out.metrics["accuracy"]
    low, high = out.intervals["accuracy"]
    expected = 2 * 1.96 * np.sqrt(accuracy * (1 - accuracy) / n)
    assert low < accuracy < high
    assert abs((high - low) - expected) < 0.2 * expected, (high - low, expected)


def test_the_baseline_is_the_majority_class_or_the_mean() -> None:
    y_train = np.array([0, 0, 0, 1])
    y_test = np.array([0, 1, 0, 0])
    proba = np.tile([0.9, 0.1], (4, 1))
    out = evaluate("classification", y_test, Outputs(np.zeros(4, int), proba), y_train, n_classes=2)
    assert out.baseline["accuracy"] == 0.75
    reg = evaluate(
        "regression", np.array([1.0, 3.0]), Outputs(np.array([1.0, 3.0])), np.array([2.0, 2.0])
    )
    assert reg.metrics["rmse"] == 0.0 and reg.baseline["rmse"] == 1.0
