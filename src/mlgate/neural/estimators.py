"""Networks as scikit-learn estimators, so preprocessing pipelines, tuning, evaluation, reports,
the registry and serving take them like any other model.

`mlp`: a feed-forward network for tables (the catalogue's preprocessing in front: scaled
numbers, one-hot categories). Classifiers learn with cross-entropy on class codes; regressors
with squared error on a standardised target, scaled back at prediction.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from torch import nn

from mlgate.errors import ArtifactError, InvalidInput
from mlgate.neural import fitting, networks


def parse_layers(value: Any) -> list[int]:
    """Hidden layer widths from "64,32", [64, 32] or 64."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int):
        items = [items]
    try:
        widths = [int(str(w).strip()) for w in items]
    except (TypeError, ValueError):
        widths = []
    if not widths or any(not 1 <= w <= 4096 for w in widths) or len(widths) > 8:
        raise InvalidInput(
            f"hidden_layers must list 1 to 8 layer widths from 1 to 4096, like '64,32'; "
            f"got {value!r}"
        )
    return widths


class _Network(BaseEstimator, metaclass=ABCMeta):  # type: ignore[misc]
    kind = "mlp"

    def __init__(
        self,
        hidden_layers: str = "64,32",
        activation: str = "relu",
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 15,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _layers(self) -> Any:
        return self.hidden_layers

    def _checked(self) -> tuple[list[int], fitting.Schedule]:
        layers = parse_layers(self._layers())
        problems = []
        if self.activation not in networks.ACTIVATIONS:
            problems.append(f"activation must be one of {', '.join(networks.ACTIVATIONS)}")
        if not 0 <= float(self.dropout) < 1:
            problems.append("dropout must lie in [0, 1)")
        if not 0 < float(self.learning_rate) <= 1:
            problems.append("learning_rate must lie in (0, 1]")
        if float(self.weight_decay) < 0:
            problems.append("weight_decay must not be negative")
        if not 1 <= int(self.batch_size) <= 65_536:
            problems.append("batch_size must lie in [1, 65536]")
        if not 1 <= int(self.max_epochs) <= 10_000:
            problems.append("max_epochs must lie in [1, 10000]")
        if not 1 <= int(self.patience) <= 1_000:
            problems.append("patience must lie in [1, 1000]")
        if not 0 <= float(self.validation_fraction) <= 0.5:
            problems.append("validation_fraction must lie in [0, 0.5]")
        if self.device not in ("cpu", "cuda", "auto"):
            problems.append("device must be cpu, cuda or auto")
        elif self.device == "cuda" and not torch.cuda.is_available():
            problems.append("device cuda was asked for, but PyTorch sees no CUDA GPU here")
        if problems:
            raise InvalidInput(f"{self.kind}: " + "; ".join(problems))
        schedule = fitting.Schedule(
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            patience=int(self.patience),
            validation_fraction=float(self.validation_fraction),
            seed=int(self.random_state),
        )
        return layers, schedule

    def _extra_architecture(self, n_inputs: int) -> dict[str, Any]:
        """What a kind of network adds to the spec (checked against the input width)."""
        return {}

    def _new_net(self, n_inputs: int, n_outputs: int, layers: list[int]) -> nn.Module:
        self.spec_ = {
            "kind": self.kind,
            "n_inputs": n_inputs,
            "n_outputs": n_outputs,
            "hidden": layers,
            "dropout": float(self.dropout),
            "activation": self.activation,
            **self._extra_architecture(n_inputs),
        }
        torch.manual_seed(int(self.random_state))  # the initial weights, and dropout's masks
        return networks.build(self.spec_)

    def _device(self) -> torch.device:
        """Where training runs; predictions (and every saved model) run on the CPU."""
        wanted = "cuda" if self.device == "auto" and torch.cuda.is_available() else self.device
        return torch.device("cpu" if wanted == "auto" else wanted)

    def _forward(self, X: Any) -> np.ndarray:
        self.net_.eval()
        with torch.inference_mode():
            out = self.net_(networks.as_tensor(X))
        return np.asarray(out.numpy(), dtype="float64")

    # Saving: a JSON-able spec and the weights (see registry/formats.py).
    def to_artifact(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        spec = {
            "architecture": self.spec_,
            "estimator": type(self).__name__,
            "params": self.get_params(deep=False),
            "n_features_in": int(self.n_features_in_),
            "fitted": self._fitted_state(),
            "history": self.history_,
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        return spec, tensors

    @abstractmethod
    def _fitted_state(self) -> dict[str, Any]:
        """What besides the weights a prediction needs (classes; the target's scale)."""

    @abstractmethod
    def _restore(self, fitted: dict[str, Any]) -> None:
        """Set what `_fitted_state` gave."""


class NeuralNetClassifier(ClassifierMixin, _Network):  # type: ignore[misc]
    def fit(self, X: Any, y: Any) -> NeuralNetClassifier:
        layers, schedule = self._checked()
        x = np.asarray(X, dtype="float32")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = x.shape[1]
        self.net_ = self._new_net(x.shape[1], len(self.classes_), layers)
        self.history_ = fitting.fit(
            self.net_,
            networks.as_tensor(x),
            torch.from_numpy(codes.astype("int64")),
            nn.CrossEntropyLoss(),
            schedule,
            stratify=codes,
            device=self._device(),
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return np.asarray(odds / odds.sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])

    def _fitted_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist()}

    def _restore(self, fitted: dict[str, Any]) -> None:
        self.classes_ = np.asarray(fitted["classes"])


class NeuralNetRegressor(RegressorMixin, _Network):  # type: ignore[misc]
    def fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        layers, schedule = self._checked()
        x = np.asarray(X, dtype="float32")
        target = np.asarray(y, dtype="float64")
        self.y_mean_ = float(target.mean())
        self.y_scale_ = float(target.std()) or 1.0
        self.n_features_in_ = x.shape[1]
        self.net_ = self._new_net(x.shape[1], 1, layers)
        scaled = ((target - self.y_mean_) / self.y_scale_).astype("float32").reshape(-1, 1)
        self.history_ = fitting.fit(
            self.net_,
            networks.as_tensor(x),
            torch.from_numpy(scaled),
            nn.MSELoss(),
            schedule,
            device=self._device(),
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._forward(X).reshape(-1) * self.y_scale_ + self.y_mean_

    def _fitted_state(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean_, "y_scale": self.y_scale_}

    def _restore(self, fitted: dict[str, Any]) -> None:
        self.y_mean_ = float(fitted["y_mean"])
        self.y_scale_ = float(fitted["y_scale"])


def parse_shape(value: Any) -> list[int]:
    """An input shape from "8x8", "64", [8, 8] or 64: one or two positive sizes."""
    items = value.lower().split("x") if isinstance(value, str) else value
    if isinstance(items, int):
        items = [items]
    try:
        sizes = [int(str(v).strip()) for v in items]
    except (TypeError, ValueError):
        sizes = []
    if not 1 <= len(sizes) <= 2 or any(size < 1 for size in sizes):
        raise InvalidInput(
            f"input_shape must be a length (1-D convolutions, like '64') or height x width "
            f"(2-D, like '8x8'); got {value!r}"
        )
    return sizes


class _Convolutional(_Network):
    """`cnn`: convolutions over the input columns read as a sequence (input_shape "64") or an
    image (input_shape "8x8", row by row): e.g. the pixels of scikit-learn's digits. Two
    convolution layers (`channels`), pooling, then the dense `hidden_layers`."""

    kind = "cnn"

    def __init__(
        self,
        input_shape: str = "",
        channels: str = "16,32",
        kernel_size: int = 3,
        hidden_layers: str = "64",
        activation: str = "relu",
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 15,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            hidden_layers=hidden_layers,
            activation=activation,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            random_state=random_state,
            device=device,
        )
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size

    def _extra_architecture(self, n_inputs: int) -> dict[str, Any]:
        shape = parse_shape(self.input_shape) if self.input_shape else [n_inputs]
        if int(np.prod(shape)) != n_inputs:
            raise InvalidInput(
                f"cnn: input_shape {'x'.join(map(str, shape))} holds {int(np.prod(shape))} "
                f"values, but the rows give {n_inputs} features after preprocessing; give a "
                "shape whose sizes multiply to that (categories count one feature per value)"
            )
        channels = parse_layers(self.channels)[:4]
        kernel = int(self.kernel_size)
        if not 1 <= kernel <= min(shape):
            raise InvalidInput(f"cnn: kernel_size must lie in [1, {min(shape)}] for this shape")
        return {"input_shape": shape, "channels": channels, "kernel_size": kernel}


class ConvNetClassifier(_Convolutional, NeuralNetClassifier):
    pass


class ConvNetRegressor(_Convolutional, NeuralNetRegressor):
    pass


class _ReadsInOrder(_Network):
    """`rnn`, `lstm`, `gru` for classification and regression: each row's inputs, in column
    order, read as a sequence (e.g. a window of readings laid out as columns t1..t24); the
    last hidden state (`hidden_size` wide) feeds the output layer."""

    kind = "lstm"

    def __init__(
        self,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 15,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        # The same names as the forecasters' (neural/sequences.py): one tuning space for both.
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.activation = "relu"  # unused by recurrent cells; checked like the others'
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _layers(self) -> Any:
        return [self.hidden_size]

    def _extra_architecture(self, n_inputs: int) -> dict[str, Any]:
        if self.cell not in ("rnn", "lstm", "gru"):
            raise InvalidInput("cell must be one of rnn, lstm, gru")
        if not 1 <= int(self.num_layers) <= 8:
            raise InvalidInput(f"{self.cell}: num_layers must lie in [1, 8]")
        return {"kind": self.cell, "num_layers": int(self.num_layers)}


class RecurrentClassifier(_ReadsInOrder, NeuralNetClassifier):
    pass


class RecurrentRegressor(_ReadsInOrder, NeuralNetRegressor):
    pass


ESTIMATORS: dict[str, type[_Network]] = {
    "NeuralNetClassifier": NeuralNetClassifier,
    "NeuralNetRegressor": NeuralNetRegressor,
    "ConvNetClassifier": ConvNetClassifier,
    "ConvNetRegressor": ConvNetRegressor,
    "RecurrentClassifier": RecurrentClassifier,
    "RecurrentRegressor": RecurrentRegressor,
}


def from_artifact(spec: dict[str, Any], tensors: dict[str, torch.Tensor], ref: str) -> _Network:
    """The fitted estimator saved by `to_artifact`, rebuilt from its spec and weights."""
    cls = ESTIMATORS.get(str(spec.get("estimator")))
    if cls is None:
        raise ArtifactError(
            f"the artifact of {ref} names an unknown network {spec.get('estimator')!r}"
        )
    try:
        estimator = cls(**spec["params"])
        net = networks.build(spec["architecture"])
        net.load_state_dict(tensors, strict=True)
        estimator._restore(spec["fitted"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ArtifactError(f"the network of {ref} does not match its spec: {exc}") from None
    net.eval()
    estimator.net_ = net
    estimator.spec_ = dict(spec["architecture"])
    estimator.n_features_in_ = int(spec["n_features_in"])
    estimator.history_ = list(spec.get("history") or [])
    return estimator
