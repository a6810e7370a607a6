"""PyTorch modules built from a JSON architecture spec: what is saved beside the weights, so a
network is rebuilt from data (never unpickled) before its safetensors weights are loaded."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlgate.errors import ArtifactError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def build(spec: dict[str, Any]) -> nn.Module:
    """The untrained network that `spec` describes; ArtifactError for a spec it cannot be."""
    kind = spec.get("kind")
    if kind == "mlp":
        return _mlp(spec)
    if kind == "cnn":
        return _cnn(spec)
    if kind in ("rnn", "lstm", "gru"):
        return _sequence_reader(spec)
    raise ArtifactError(f"unknown network kind {kind!r} in the architecture spec")


def _mlp(spec: dict[str, Any]) -> nn.Module:
    try:
        n_inputs, n_outputs = int(spec["n_inputs"]), int(spec["n_outputs"])
        hidden = [int(h) for h in spec["hidden"]]
        dropout = float(spec["dropout"])
        activation = ACTIVATIONS[str(spec["activation"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"the architecture spec of an mlp is incomplete: {exc}") from None
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden:
        layers += [nn.Linear(width, size), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class _Reshape(nn.Module):
    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = [1, *shape]  # one input channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _cnn(spec: dict[str, Any]) -> nn.Module:
    try:
        shape = [int(v) for v in spec["input_shape"]]
        channels = [int(c) for c in spec["channels"]]
        kernel = int(spec["kernel_size"])
        hidden = [int(h) for h in spec["hidden"]]
        dropout = float(spec["dropout"])
        activation = ACTIVATIONS[str(spec["activation"])]
        n_outputs = int(spec["n_outputs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"the architecture spec of a cnn is incomplete: {exc}") from None
    conv: type[nn.Module] = nn.Conv2d if len(shape) == 2 else nn.Conv1d
    pool: type[nn.Module] = nn.MaxPool2d if len(shape) == 2 else nn.MaxPool1d
    layers: list[nn.Module] = [_Reshape(shape)]
    width = 1
    for size in channels:
        layers += [conv(width, size, kernel, padding=kernel // 2), activation()]
        width = size
    if min(shape) >= 2:  # halve each side once: fewer weights in the dense part
        layers.append(pool(2))
        shape = [s // 2 for s in shape]
    layers.append(nn.Flatten())
    features = width * int(torch.tensor(shape).prod())
    for size in hidden:
        layers += [nn.Linear(features, size), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        features = size
    layers.append(nn.Linear(features, n_outputs))
    return nn.Sequential(*layers)


class ReadInOrder(nn.Module):
    """Values read one after another by a recurrent cell (a row's inputs, or a series'
    window); the last state feeds a linear output layer."""

    def __init__(self, kind: str, hidden: int, layers: int, dropout: float, n_outputs: int) -> None:
        super().__init__()
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.cell = cell(
            input_size=1,
            hidden_size=hidden,
            num_layers=layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.cell(x.unsqueeze(-1))
        result: torch.Tensor = self.head(out[:, -1, :])
        return result


def _sequence_reader(spec: dict[str, Any]) -> nn.Module:
    try:
        return ReadInOrder(
            str(spec["kind"]),
            int(spec["hidden"][0]),
            int(spec.get("num_layers", 1)),
            float(spec["dropout"]),
            int(spec["n_outputs"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ArtifactError(
            f"the architecture spec of an {spec.get('kind')} is incomplete: {exc}"
        ) from None


def parameter_count(net: nn.Module) -> int:
    return sum(int(p.numel()) for p in net.parameters())


def as_tensor(x: Any) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
