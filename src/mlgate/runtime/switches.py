"""Where a fast path takes over from the library, and how it steps back.

Every compiled or table-driven path (the compiled preprocessor, the fast scorers and compiled
trees, the TreeSHAP tables and their compiled loop) is a second implementation of something a
library already computes. Each is switched in only after it gave the library's answer on probe
rows, at the moment it is switched in (a path that becomes available later, such as a loop
compiled in the background, is probed when it arrives, not when the model loaded). After that,
`Guarded` keeps the library one call away: a fast path that raises is dropped for good and the
library answers that call and every later one, logged once per path, so a defect in a fast path
costs speed, never an answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("mlgate.serving")

T = TypeVar("T")


class Guarded(Generic[T]):
    """`fast` while it works, else `slow`: the first exception from `fast` retires it (logged
    once, with what it was) and `slow` answers that call and every later one.

        transform = Guarded("compiled preprocessor of churn v3", compiled, pipeline.transform)
        X = transform(rows)
    """

    def __init__(self, what: str, fast: Callable[..., T] | None, slow: Callable[..., T]) -> None:
        self.what = what
        self._fast = fast
        self._slow = slow
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """The fast path still answers."""
        return self._fast is not None

    def __call__(self, *args: object) -> T:
        fast = self._fast
        if fast is not None:
            try:
                return fast(*args)
            except Exception as exc:  # any failure of a second implementation: the library's
                retire(self, exc)
        return self._slow(*args)

    def retire(self, why: str) -> None:
        """Stop using the fast path (it disagreed with the library, say); logged once."""
        with self._lock:
            if self._fast is None:
                return
            self._fast = None
        log.warning("%s retired, the library answers from now on: %s", self.what, why)


def retire(guarded: Guarded[T], exc: BaseException) -> None:
    guarded.retire(f"it raised {type(exc).__name__}: {exc}")


def probed(what: str, check: Callable[[], bool]) -> bool:
    """Run a switch-in check; a check that raises counts as a disagreement. Logs the refusal."""
    try:
        same = check()
    except Exception as exc:
        log.warning("%s not used: its check against the library raised %s: %s", what,
                    type(exc).__name__, exc)  # fmt: skip
        return False
    if not same:
        log.warning("%s not used: it disagreed with the library on probe rows", what)
    return same
