"""Following alias moves in a serving process: every `interval` seconds, read where each alias
points; load a new target (and check it) first, then switch to it. Requests resolve an alias
once, so those in flight finish on the version they started with."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mlgate.errors import MlgateError
from mlgate.registry.model import PRODUCTION
from mlgate.registry.service import resolve_version
from mlgate.runtime.predictors import PredictorCache
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.serving")


class AliasWatcher:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        predictors: PredictorCache,
        *,
        interval: float = 0.5,
    ) -> None:
        self._uow = uow_factory
        self._predictors = predictors
        self._interval = interval
        self._targets: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def target(self, model: str, alias: str) -> int | None:
        """The version this process serves for model@alias, or None if it has not seen it."""
        return self._targets.get((model, alias))

    def refresh(self) -> None:
        """One look at the aliases: load what moved, then switch to it."""
        uow = self._uow()
        with uow:
            current = uow.models.all_aliases()
        targets = dict(self._targets)
        for key, number in current.items():
            if targets.get(key) == number:
                continue
            try:
                self._predictors.get(resolve_version(self._uow(), key[0], number))
            except MlgateError as exc:  # keep serving the old target; the log says why
                log.error("not switching %s@%s to v%s: %s", key[0], key[1], number, exc)
                continue
            targets[key] = number
        for key in set(targets) - set(current):
            del targets[key]
        self._targets = targets  # one assignment: readers see the old map or the new one

    def start(self) -> None:
        self.refresh()
        self._load_unaliased()
        self._thread = threading.Thread(target=self._run, name="mlgate-aliases", daemon=True)
        self._thread.start()

    def _load_unaliased(self) -> None:
        """A model without a production alias answers with its latest version: load those too
        (as many as the cache holds), so that no first request waits for a model to load."""
        uow = self._uow()
        with uow:
            names = [m.name for m in uow.models.all() if m.latest_version > 0]
        room = self._predictors.capacity - self._predictors.size()
        for name in [n for n in names if (n, PRODUCTION) not in self._targets][: max(room, 0)]:
            try:
                self._predictors.get(resolve_version(self._uow(), name, None))
            except MlgateError as exc:  # e.g. every version archived: nothing to serve
                log.info("not preloading %s: %s", name, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except Exception:  # the database may be away for a moment; try again next tick
                log.exception("alias refresh failed")
