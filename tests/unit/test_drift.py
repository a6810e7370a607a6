"""Drift statistics on seeded samples: a shifted distribution is found, an unshifted one is not,
and the recorder samples at its rate (0% stores nothing)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlgate.monitoring import drift
from mlgate.monitoring.model import MonitorSettings
from mlgate.monitoring.recorder import PredictionRecorder
from mlgate.schema import Table

rng = np.random.default_rng(5)


def test_a_shifted_numeric_feature_drifts_and_a_resample_does_not() -> None:
    reference = rng.normal(50, 10, 5000)
    same = drift.numeric(reference, rng.normal(50, 10, 1000))
    shifted = drift.numeric(reference, rng.normal(58, 10, 1000))
    assert same.psi < 0.05 and not same.drifted(0.2, 0.01)
    assert shifted.psi > 0.2 and shifted.p_value < 1e-6 and shifted.drifted(0.2, 0.01)


def test_missing_values_count_as_their_own_bin() -> None:
    reference = rng.normal(0, 1, 4000)
    current = rng.normal(0, 1, 1000)
    current[:400] = np.nan  # 40% missing, where training had none
    assert drift.numeric(reference, current).psi > 0.2


def test_psi_is_the_textbook_sum() -> None:
    # Two bins: 50/50 against 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    expected = 0.3 * np.log(1.6) - 0.3 * np.log(0.4)
    result = drift.categorical(
        pd.Series(["a"] * 50 + ["b"] * 50), pd.Series(["a"] * 80 + ["b"] * 20)
    )
    assert result.psi == pytest.approx(expected, abs=1e-9)


def test_a_changed_mix_of_categories_drifts_and_a_new_category_counts() -> None:
    reference = pd.Series(rng.choice(["a", "b", "c"], 5000, p=[0.6, 0.3, 0.1]))
    same = drift.categorical(
        reference, pd.Series(rng.choice(["a", "b", "c"], 1000, p=[0.6, 0.3, 0.1]))
    )
    mixed = drift.categorical(
        reference, pd.Series(rng.choice(["a", "b", "c"], 1000, p=[0.2, 0.3, 0.5]))
    )
    unseen = drift.categorical(reference, pd.Series(["z"] * 300 + ["a"] * 700))
    assert not same.drifted(0.2, 0.01)
    assert mixed.drifted(0.2, 0.01) and unseen.drifted(0.2, 0.01)


class _Draws:
    def __init__(self, values: list[float]) -> None:
        self.values = iter(values)

    def __call__(self) -> float:
        return next(self.values)


def _recorder(rate: float, draws: list[float]) -> PredictionRecorder:
    recorder = PredictionRecorder(lambda: None, lambda: datetime.now(UTC), draw=_Draws(draws))  # type: ignore[arg-type, return-value]
    recorder._settings.get(
        "m", lambda: MonitorSettings(sample_rate=rate, exclude_columns=("email",))
    )
    return recorder


def test_the_recorder_samples_at_its_rate_and_never_at_zero() -> None:
    rows = Table({"x": np.array([1.0, np.nan]), "email": np.array(["a@b", "c@d"], dtype=object)}, 2)
    off = _recorder(0.0, [])
    assert not any(off.offer("m", 1, "user:a", f"r{i}", rows, [0, 1]) for i in range(1000))
    assert len(off._queue) == 0  # no draw taken either: the iterator above is empty
    some = _recorder(0.25, [0.1, 0.3, 0.24, 0.9])
    taken = [some.offer("m", 1, "user:a", f"r{i}", rows, [0, 1]) for i in range(4)]
    assert taken == [True, False, True, False]
    _, model, version, account, _, queued, predictions, excluded = some._queue[0][:8]
    assert (model, version, account, excluded) == ("m", 1, "user:a", ("email",))
    from mlgate.monitoring.recorder import _columns

    assert _columns(queued, excluded) == {"x": [1.0, None]}  # the excluded column never stored


def test_a_webhook_without_a_secret_is_refused_in_a_sentence() -> None:
    from mlgate.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        MonitorSettings(webhook_url="https://hooks.example.com/drift")
    assert str(refused.value) == (
        "monitoring settings: webhook_secret must be given with a webhook: it signs each call, "
        "so the receiver can tell it came from mlgate"
    )
