"""Per-epoch progress from inside a fit, without passing a callback through scikit-learn.

The training use case wraps the final fit in `reporting(progress)`; a network calls `epoch(...)`
after each epoch. The reporter may raise (a cancelled job raises JobCancelled), which stops the
fit there. Fits outside `reporting` (cross-validation, learning curves) report nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[str, str], None]
_current: ContextVar[Reporter | None] = ContextVar("mlgate_epoch_reporter", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)


def epoch(
    number: int,
    most: int,
    loss: float,
    val_loss: float | None,
    lr: float,
    *,
    second: str = "validation loss",
) -> None:
    reporter = _current.get()
    if reporter is None:
        return
    validation = f", {second} {val_loss:.4f}" if val_loss is not None else ""
    reporter("fit", f"epoch {number}/{most}: loss {loss:.4f}{validation}, learning rate {lr:.2g}")
