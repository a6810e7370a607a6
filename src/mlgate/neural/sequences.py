"""`rnn`, `lstm`, `gru`: recurrent networks that forecast a series from its recent past.

The table is ordered by a time or order column (and cut into series by an optional group
column); each training example is a window of `window` past values and the `horizon` values
that followed. One network learns from the windows of every series, on values standardised with
the training part's mean and spread. A forecast takes the last `window` values of a series and
gives the next `horizon`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mlgate.errors import ArtifactError, InvalidInput
from mlgate.neural import fitting
from mlgate.neural.networks import ReadInOrder

CELLS: dict[str, type[nn.Module]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def windows(series: list[np.ndarray], window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of every full window of every series, in order."""
    inputs, targets = [], []
    for values in series:
        for end in range(window, len(values) - horizon + 1):
            inputs.append(values[end - window : end])
            targets.append(values[end : end + horizon])
    if not inputs:
        return np.empty((0, window)), np.empty((0, horizon))
    return np.asarray(inputs, dtype="float64"), np.asarray(targets, dtype="float64")


class SequenceForecaster:
    """Fitted on a list of series (each a 1-D array, oldest first)."""

    def __init__(
        self,
        cell: str = "lstm",
        window: int = 24,
        horizon: int = 1,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        learning_rate: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 15,
        validation_fraction: float = 0.15,
        random_state: int = 0,
    ) -> None:
        self.cell = cell
        self.window = window
        self.horizon = horizon
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    _PARAMS = (
        "cell", "window", "horizon", "hidden_size", "num_layers", "dropout", "learning_rate",
        "batch_size", "max_epochs", "patience", "validation_fraction", "random_state",
    )  # fmt: skip

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> SequenceForecaster:
        for key, value in params.items():
            if key not in self._PARAMS:
                raise ValueError(f"{self.cell} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def checked(self) -> fitting.Schedule:
        problems = []
        if self.cell not in CELLS:
            problems.append(f"cell must be one of {', '.join(CELLS)}")
        if not 2 <= int(self.window) <= 10_000:
            problems.append("window must lie in [2, 10000]")
        if not 1 <= int(self.horizon) <= 1_000:
            problems.append("horizon must lie in [1, 1000]")
        if not 1 <= int(self.hidden_size) <= 2_048:
            problems.append("hidden_size must lie in [1, 2048]")
        if not 1 <= int(self.num_layers) <= 8:
            problems.append("num_layers must lie in [1, 8]")
        if not 0 <= float(self.dropout) < 1:
            problems.append("dropout must lie in [0, 1)")
        if not 0 < float(self.learning_rate) <= 1:
            problems.append("learning_rate must lie in (0, 1]")
        if problems:
            raise InvalidInput(f"{self.cell}: " + "; ".join(problems))
        return fitting.Schedule(
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            weight_decay=0.0,
            patience=int(self.patience),
            validation_fraction=float(self.validation_fraction),
            seed=int(self.random_state),
        )

    def fit(self, series: list[np.ndarray]) -> SequenceForecaster:
        schedule = self.checked()
        joined = np.concatenate(series) if series else np.empty(0)
        if len(joined) == 0 or np.isnan(joined).any():
            raise InvalidInput(f"{self.cell}: the series must have values, none of them missing")
        self.mean_, self.scale_ = float(joined.mean()), float(joined.std()) or 1.0
        scaled = [(s - self.mean_) / self.scale_ for s in series]
        x, y = windows(scaled, int(self.window), int(self.horizon))
        if len(x) < 10:
            raise InvalidInput(
                f"{self.cell}: only {len(x)} windows of {self.window} values plus {self.horizon} "
                "to forecast fit in these series; give longer series or a shorter window"
            )
        torch.manual_seed(int(self.random_state))
        self.net_ = self._network()
        self.history_ = fitting.fit(
            self.net_,
            torch.from_numpy(x.astype("float32")),
            torch.from_numpy(y.astype("float32")),
            nn.MSELoss(),
            schedule,
        )
        return self

    def _network(self) -> ReadInOrder:
        return ReadInOrder(
            self.cell, int(self.hidden_size), int(self.num_layers), float(self.dropout),
            int(self.horizon),
        )  # fmt: skip

    def predict(self, recent: np.ndarray) -> np.ndarray:
        """Forecasts for each row of `recent` (rows of the last `window` values)."""
        x = (np.asarray(recent, dtype="float64") - self.mean_) / self.scale_
        self.net_.eval()
        with torch.inference_mode():
            out = self.net_(torch.from_numpy(x.astype("float32"))).numpy()
        return np.asarray(out, dtype="float64") * self.scale_ + self.mean_

    def to_artifact(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        spec = {
            "architecture": {"kind": self.cell},
            "estimator": "SequenceForecaster",
            "params": self.get_params(),
            "fitted": {"mean": self.mean_, "scale": self.scale_},
            "history": self.history_,
        }
        return spec, {k: v.detach().contiguous() for k, v in self.net_.state_dict().items()}

    @classmethod
    def from_artifact(
        cls, spec: dict[str, Any], tensors: dict[str, torch.Tensor], ref: str
    ) -> SequenceForecaster:
        try:
            model = cls(**spec["params"])
            model.mean_ = float(spec["fitted"]["mean"])
            model.scale_ = float(spec["fitted"]["scale"])
            model.history_ = list(spec.get("history") or [])
            model.net_ = model._network()
            model.net_.load_state_dict(tensors, strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"the network of {ref} does not match its spec: {exc}") from None
        model.net_.eval()
        return model
