"""How many threads a network trains with: one, unless `MLGATE_TRAINING_THREADS` says more.

Measured here (2 cores, the forecasting guide's GRU on 732 months): one training took 38.8 s with
torch's default of a thread per core and 38.8 s with one thread (the batches are too small to
share out); two trainings side by side took 161.6 s with the default, the threads spinning
against each other, and 41.1 s with one thread each. A machine that trains several models, or
trains beside `mlgate serve`, is the common case, so one thread is the default; a large CNN on a
machine of its own may ask for more. The trees and boosters train with n_jobs=1 for the same
reason (training/catalogue.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from mlgate.errors import ConfigError

VARIABLE = "MLGATE_TRAINING_THREADS"


def wanted() -> int:
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return 1
    if not raw.isdecimal() or not 1 <= int(raw) <= 1_024:
        raise ConfigError(f"{VARIABLE} is a whole number of threads in [1, 1024]; got {raw!r}")
    return int(raw)


@contextmanager
def training() -> Iterator[None]:
    """torch's intra-op threads set for a fit and put back after it (the setting is the
    process's: a server that trains and serves keeps its own for serving)."""
    before = torch.get_num_threads()
    torch.set_num_threads(wanted())
    try:
        yield
    finally:
        torch.set_num_threads(before)
