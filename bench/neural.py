"""Neural networks benchmark: mlgate's networks against the same models hand-written in plain
PyTorch, in the same run.

    .venv/bin/python bench/neural.py [--device cpu|cuda] [--repeat 3]

For each network (mlp on breast cancer, cnn on the 8x8 digits, lstm on seeded seasonal sales
series, gan on a seeded customer table)
both sides train the same architecture on the same rows with the same optimiser, batch size and
number of epochs (early stopping off, so the epochs match); the baseline is the loop anyone would
write by hand (with a validation pass per epoch where mlgate has one). Prints epochs per second,
the final metric of each, and mlgate's time as a ratio of the baseline's (target: at most
1.15x). The best of --repeat runs counts. Never part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_gan import customers

from mlgate.neural import networks
from mlgate.neural.estimators import ConvNetClassifier, NeuralNetClassifier
from mlgate.neural.gan import Layout, TabularGAN, _critic, _gradient_penalty, _slices
from mlgate.schema import conform, infer_columns


def best_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def plain_classifier(
    net: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, batch: int, device: str
) -> nn.Module:
    """The loop written by hand: Adam, cross-entropy, shuffled batches, a validation pass."""
    torch.manual_seed(0)
    net = net.to(device)
    cut = int(len(x) * 0.85)
    xt = torch.tensor(x, dtype=torch.float32, device=device)
    yt = torch.tensor(y, dtype=torch.int64, device=device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(cut, device=device)
        for start in range(0, cut, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            loss_fn(net(xt[cut:]), yt[cut:])
    return net.to("cpu").eval()


def accuracy(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(x) == y))


def classifier_case(
    label: str, ours: Any, x: np.ndarray, y: np.ndarray, epochs: int, args: argparse.Namespace
) -> None:
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=42, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    ours.set_params(max_epochs=epochs, patience=10**3, device=args.device)
    ours_time, fitted = best_time(lambda: ours.fit(x_train, y_train), args.repeat)
    spec = fitted.spec_

    def baseline() -> nn.Module:
        net = networks.build(spec)
        return plain_classifier(net, x_train, y_train, epochs, int(ours.batch_size), args.device)

    plain_time, net = best_time(baseline, args.repeat)

    def plain_predict(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.tensor(rows, dtype=torch.float32)).argmax(1).numpy()

    _report(
        label,
        epochs,
        ours_time,
        plain_time,
        f"accuracy {accuracy(fitted.predict, x_test, y_test):.3f}",
        f"accuracy {accuracy(plain_predict, x_test, y_test):.3f}",
    )


def gan_case(epochs: int, args: argparse.Namespace) -> None:
    from scipy.stats import ks_2samp

    table = customers(2_000).drop(columns=["customer_id"])
    columns = list(infer_columns(table))
    rows = conform(table, columns)
    gan = TabularGAN(epochs=epochs, patience=10**4)  # every epoch runs, as in the baseline
    ours_time, fitted = best_time(lambda: gan.fit(rows, columns), args.repeat)

    def baseline() -> nn.Module:
        """The same generator and critic, WGAN-GP on the already-encoded matrix."""
        layout = Layout.fit(rows, columns)
        data = torch.from_numpy(layout.encode(rows))
        torch.manual_seed(0)
        generator = type(fitted.generator_)(64, [128, 128], _slices(layout))
        critic = _critic(layout.width, [128, 128])
        g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.9))
        c_opt = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.9))
        rng = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            order = torch.randperm(len(data))
            for start in range(0, len(order) - 256 + 1, 256):
                real = data[order[start : start + 256]]
                fake = generator(torch.randn(256, 64), tau=0.2)
                c_loss = (
                    critic(fake.detach()).mean()
                    - critic(real).mean()
                    + 10 * _gradient_penalty(critic, real, fake.detach(), rng)
                )
                c_opt.zero_grad()
                c_loss.backward()
                c_opt.step()
                g_loss = -critic(generator(torch.randn(256, 64), tau=0.2)).mean()
                g_opt.zero_grad()
                g_loss.backward()
                g_opt.step()
        return generator

    plain_time, _ = best_time(baseline, args.repeat)
    synthetic = fitted.sample(2_000, seed=1)
    worst = max(
        ks_2samp(rows[c.name].dropna(), synthetic[c.name].dropna()).statistic
        for c in columns
        if c.type == "number"
    )
    _report("gan", epochs, ours_time, plain_time, f"max KS {worst:.3f}", "(same loop)")


def lstm_case(epochs: int, args: argparse.Namespace) -> None:
    from tests.integration.test_forecast import sales

    from mlgate.neural.networks import ReadInOrder
    from mlgate.neural.sequences import SequenceForecaster, windows

    table = sales(240)
    series = [g.sort_values("t")["sales"].to_numpy() for _, g in table.groupby("store")]
    train = [s[:-36] for s in series]
    ours = SequenceForecaster(cell="lstm", window=24, horizon=3, max_epochs=epochs, patience=10**3)
    ours_time, fitted = best_time(lambda: ours.fit(train), args.repeat)

    def baseline() -> nn.Module:
        mean, scale = np.concatenate(train).mean(), np.concatenate(train).std()
        x, y = windows([(s - mean) / scale for s in train], 24, 3)
        cut = int(len(x) * 0.85)
        xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        torch.manual_seed(0)
        net = ReadInOrder("lstm", 64, 1, 0.0, 3)
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(epochs):
            net.train()
            order = torch.randperm(cut)
            for start in range(0, cut, 64):
                idx = order[start : start + 64]
                optimizer.zero_grad()
                nn.functional.mse_loss(net(xt[idx]), yt[idx]).backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                nn.functional.mse_loss(net(xt[cut:]), yt[cut:])
        return net

    plain_time, _ = best_time(baseline, args.repeat)
    test_x, test_y = windows(series, 24, 3)
    mae = float(np.mean(np.abs(fitted.predict(test_x[-30:]) - test_y[-30:])))
    _report("lstm", epochs, ours_time, plain_time, f"MAE {mae:.2f}", "(same loop)")


def _report(label: str, epochs: int, ours: float, plain: float, metric: str, theirs: str) -> None:
    print(
        f"  {label:<4} {epochs:>4} epochs  mlgate {epochs / ours:7.1f} epochs/s ({metric})  "
        f"plain PyTorch {epochs / plain:7.1f} epochs/s ({theirs})  ratio {ours / plain:4.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: PyTorch sees no CUDA GPU on this machine")
    print(
        f"mlgate neural benchmark: torch {torch.__version__}, {args.device}, "
        f"{torch.get_num_threads()} threads, best of {args.repeat}"
    )
    cancer = datasets.load_breast_cancer()
    classifier_case("mlp", NeuralNetClassifier(), cancer.data, cancer.target, 60, args)
    digits = datasets.load_digits()
    cnn = ConvNetClassifier(input_shape="8x8")
    classifier_case("cnn", cnn, digits.data, digits.target, 20, args)
    lstm_case(30, args)  # forecasters and the gan train on the CPU
    if args.device == "cpu":
        gan_case(60, args)
    else:
        print("  gan  trains on the CPU only (its training loop takes no device yet)")


if __name__ == "__main__":
    main()
