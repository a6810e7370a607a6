"""The one-second cache of the prediction path."""

from __future__ import annotations

import contextlib
import threading

from mlgate.caching import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_kept_for_its_ttl_then_loaded_again() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=1.0, clock=clock)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("k", load) == 1
    clock.now += 0.99
    assert cache.get("k", load) == 1
    clock.now += 0.02
    assert cache.get("k", load) == 2
    assert len(loads) == 2


def test_failures_are_not_kept() -> None:
    cache: TtlCache[str, int] = TtlCache(clock=Clock())
    calls = 0

    def failing() -> int:
        nonlocal calls
        calls += 1
        raise LookupError("no such key")

    for _ in range(2):
        with contextlib.suppress(LookupError):
            cache.get("k", failing)
    assert calls == 2


def test_clear_forgets_and_a_load_begun_before_it_is_not_kept() -> None:
    cache: TtlCache[str, str] = TtlCache(clock=Clock())
    assert cache.get("k", lambda: "old") == "old"
    cache.clear()
    assert cache.get("k", lambda: "new") == "new"

    started, release = threading.Event(), threading.Event()

    def slow_load() -> str:  # reads the state from before the change...
        started.set()
        release.wait(5)
        return "stale"

    result: list[str] = []
    loader = threading.Thread(target=lambda: result.append(cache.get("j", slow_load)))
    loader.start()
    started.wait(5)
    cache.clear()  # ...which lands while it reads
    release.set()
    loader.join(5)
    assert result == ["stale"]  # that caller gets what it read
    assert cache.get("j", lambda: "fresh") == "fresh"  # but nobody after it


def test_it_never_grows_past_its_bound() -> None:
    cache: TtlCache[int, int] = TtlCache(max_entries=3, clock=Clock())
    for i in range(10):
        cache.get(i, lambda i=i: i)  # type: ignore[misc]
    assert len(cache._items) <= 3


def test_a_budget_admits_its_asks_a_window_per_key_then_refuses_until_the_window_turns() -> None:
    from mlgate.caching import Budget

    clock = Clock()
    budget = Budget(3, window=60, clock=clock)
    assert [budget.spend("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert budget.spend("10.0.0.2")  # another address has its own
    clock.now += 20
    assert not budget.spend("10.0.0.1") and budget.retry_after("10.0.0.1") == 41
    clock.now += 40
    assert budget.spend("10.0.0.1")  # the window turned


def test_a_budget_keeps_a_bounded_number_of_keys() -> None:
    from mlgate.caching import Budget

    clock = Clock()
    budget = Budget(1, window=60, max_keys=10, clock=clock)
    for i in range(10):
        assert budget.spend(i)
    clock.now += 61
    for i in range(10, 15):  # the old windows are over: dropped to make room
        assert budget.spend(i)
    assert len(budget._counts) <= 10
