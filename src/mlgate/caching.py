"""A small time-bounded cache for what the prediction path would otherwise read from the
database on every call: who a credential belongs to, and which version a request means.

An entry lives at most `ttl` seconds (one by default), so a change made anywhere (another worker,
another replica, the CLI) is seen within that time; a change made through this process's own API
clears the caches at once (see api/middleware.py). Only successful loads are kept: a refused
credential or a missing model is looked up again on the next call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

TTL_SECONDS = 1.0


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a load that began before is not kept

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value of `key`, or `load()`'s (kept for `ttl` seconds)."""
        now = self._clock()
        item = self._items.get(key)
        if item is not None and item[0] > now:
            return item[1]
        generation = self._generation
        value = load()
        with self._lock:
            if generation == self._generation:
                if len(self._items) >= self._max:  # many distinct keys: start over
                    self._items.clear()
                self._items[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._items.clear()
