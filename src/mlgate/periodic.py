"""Work done every few seconds on a daemon thread: the usage flusher, the prediction log's
writer, the monitoring checks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("mlgate")


class Periodic:
    """Calls `work` every `interval` seconds once started; `stop()` joins the thread and (with
    `final`) calls `work` once more, so nothing queued is left behind. A failing round is
    logged and the next one tries again."""

    def __init__(
        self, name: str, work: Callable[[], object], interval: float, *, final: bool = True
    ) -> None:
        self._name = name
        self._work = work
        self._interval = interval
        self._final = final
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._final:
            self._work()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._work()
            except Exception:
                log.exception("%s failed; trying again in %.1f s", self._name, self._interval)


class Loops:
    """The server's background rounds, each named once, started and stopped together. A round
    whose interval is 0 (or unset) is not started: that is how a setting turns one off."""

    def __init__(self) -> None:
        self._running: dict[str, Periodic] = {}

    def start(self, name: str, work: Callable[[], object], interval: float | None) -> None:
        if interval and name not in self._running:
            loop = Periodic(name, work, interval, final=False)
            self._running[name] = loop
            loop.start()

    def names(self) -> list[str]:
        return sorted(self._running)

    def stop(self) -> None:
        for loop in self._running.values():
            loop.stop()
        self._running.clear()
