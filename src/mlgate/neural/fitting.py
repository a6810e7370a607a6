"""The one training loop every network uses: mini-batches with Adam, a validation split for
early stopping (the best epoch's weights are kept), the learning rate halved when validation
loss stalls, seeded for repeatable results on the CPU, and a report after every epoch."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mlgate.neural import progress, threads


@dataclass(frozen=True)
class Schedule:
    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    validation_fraction: float
    seed: int


def fit(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Schedule,
    *,
    stratify: np.ndarray | None = None,
    device: torch.device | None = None,
) -> list[dict[str, Any]]:
    """Train `net` in place (on `device`, then back on the CPU), with the training threads
    (neural/threads.py); the history, one entry per epoch."""
    with threads.training():
        return _fit(net, x, y, loss_fn, schedule, stratify=stratify, device=device)


def _fit(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Schedule,
    *,
    stratify: np.ndarray | None,
    device: torch.device | None,
) -> list[dict[str, Any]]:
    device = device or torch.device("cpu")
    net.to(device)
    x, y = x.to(device), y.to(device)
    generator = torch.Generator().manual_seed(schedule.seed)
    train_idx, val_idx = _split(len(x), schedule.validation_fraction, schedule.seed, stratify)
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    optimizer = torch.optim.Adam(
        net.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=max(1, schedule.patience // 3)
    )
    best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
    history: list[dict[str, Any]] = []
    x_train, y_train = x[train_idx], y[train_idx]
    for number in range(1, schedule.max_epochs + 1):
        net.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), schedule.batch_size):
            batch = order[start : start + schedule.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_train[batch]), y_train[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        train_loss = total / max(len(order), 1)
        val_loss = _loss(net, x[val_idx], y[val_idx], loss_fn) if len(val_idx) else None
        lr = float(optimizer.param_groups[0]["lr"])
        history.append({"epoch": number, "loss": train_loss, "val_loss": val_loss, "lr": lr})
        progress.epoch(number, schedule.max_epochs, train_loss, val_loss, lr)
        watched = val_loss if val_loss is not None else train_loss
        plateau.step(watched)
        if watched < best_loss - 1e-6:
            best_loss, best_epoch, waited = watched, number, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited >= schedule.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.to("cpu")
    for entry in history:
        entry["best"] = entry["epoch"] == best_epoch
    net.eval()
    return history


def _loss(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    net.eval()
    with torch.inference_mode():
        return float(loss_fn(net(x), y))


def _split(
    n: int, fraction: float, seed: int, stratify: np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices; stratified by class where given."""
    rng = np.random.default_rng(seed)
    if fraction <= 0 or n < 10:
        return torch.arange(n), torch.arange(0)
    if stratify is None:
        order = rng.permutation(n)
        cut = max(1, int(round(n * fraction)))
        return torch.from_numpy(np.sort(order[cut:])), torch.from_numpy(np.sort(order[:cut]))
    val: list[np.ndarray] = []
    for label in np.unique(stratify):
        members = rng.permutation(np.flatnonzero(stratify == label))
        val.append(members[: int(round(len(members) * fraction))])
    chosen = np.sort(np.concatenate(val))
    rest = np.setdiff1d(np.arange(n), chosen)
    return torch.from_numpy(rest), torch.from_numpy(chosen)
