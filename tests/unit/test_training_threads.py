"""A network trains with one thread unless MLGATE_TRAINING_THREADS says more, and the process's
own setting (a server's, for serving) is back once the fit ends (neural/threads.py)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from mlgate.errors import ConfigError
from mlgate.neural import fitting, threads
from mlgate.neural.gan import TabularGAN
from mlgate.schema import Column


def _fit_seeing_threads() -> list[int]:
    seen: list[int] = []

    def loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return nn.functional.mse_loss(prediction, target)

    schedule = fitting.Schedule(
        max_epochs=2, batch_size=8, learning_rate=0.01, weight_decay=0.0, patience=5,
        validation_fraction=0.2, seed=0,
    )  # fmt: skip
    fitting.fit(nn.Linear(3, 1), torch.randn(40, 3), torch.randn(40, 1), loss, schedule)
    return seen


def test_a_network_trains_on_one_thread_and_the_process_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(threads.VARIABLE, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert set(_fit_seeing_threads()) == {1}
        assert torch.get_num_threads() == 2
        monkeypatch.setenv(threads.VARIABLE, "3")
        assert set(_fit_seeing_threads()) == {3}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_gan_trains_on_the_training_threads_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(threads.VARIABLE, "1")
    seen: list[int] = []
    real = TabularGAN._fit

    def spy(self: TabularGAN, frame: pd.DataFrame, columns: list[Column]) -> TabularGAN:
        seen.append(torch.get_num_threads())
        return real(self, frame, columns)

    monkeypatch.setattr(TabularGAN, "_fit", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        frame = pd.DataFrame({"a": [float(i) for i in range(30)]})
        TabularGAN(epochs=1).fit(frame, [Column("a", "number")])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("raw", ["0", "two", "-1", "5000"])
def test_a_bad_thread_count_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(threads.VARIABLE, raw)
    with pytest.raises(ConfigError, match="MLGATE_TRAINING_THREADS"):
        threads.wanted()
