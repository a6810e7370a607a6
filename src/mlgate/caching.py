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


class Budget:
    """At most `per_window` asks per key (a client's address) in each window of `window`
    seconds, counted in this process: for the public routes that make the server do work for
    anyone (call the identity provider, write an audit line), so that one address cannot make
    it do that work without end. `spend` is False once the key's budget is spent; the seconds
    until the window turns are `retry_after`."""

    def __init__(
        self,
        per_window: int,
        window: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_window = per_window
        self._window = window
        self._max = max_keys
        self._clock = clock
        self._counts: dict[Hashable, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def spend(self, key: Hashable) -> bool:
        now = self._clock()
        with self._lock:
            start, count = self._counts.get(key, (now, 0))
            if now - start >= self._window:
                start, count = now, 0
            if count >= self._per_window:
                return False
            if key not in self._counts and len(self._counts) >= self._max:
                self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self._window}
            self._counts[key] = (start, count + 1)
            return True

    def retry_after(self, key: Hashable) -> int:
        with self._lock:
            start, _ = self._counts.get(key, (self._clock(), 0))
        return max(1, int(self._window - (self._clock() - start)) + 1)
