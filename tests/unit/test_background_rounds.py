"""The server's background rounds (periodic.Loops) and the rows explanations are measured
against (explainers.explain.training_background), in process."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from mlgate.errors import Conflict, NotFound
from mlgate.explainers.explain import BACKGROUND_ROWS, training_background
from mlgate.periodic import Loops
from tests.unit.registry_records import a_version

pytestmark = pytest.mark.fast


def test_a_round_with_no_interval_is_not_started_and_each_name_runs_once() -> None:
    loops, ran = Loops(), threading.Event()
    loops.start("off", ran.set, 0)
    loops.start("unset", ran.set, None)
    loops.start("on", ran.set, 3600)
    loops.start("on", ran.set, 3600)  # a second start of the same round is a no-op
    assert loops.names() == ["on"]
    alive = [t for t in threading.enumerate() if t.name == "on"]
    assert len(alive) == 1
    loops.stop()
    assert loops.names() == []
    assert not alive[0].is_alive()
    assert not ran.is_set()  # stopped before its first interval, and no final round


def test_the_background_is_a_seeded_sample_of_the_training_rows() -> None:
    version = a_version(1)
    n = BACKGROUND_ROWS * 3
    rows = pd.DataFrame({"tenure": range(n), "plan": [f"p{i % 5}" for i in range(n)]})
    first = training_background(lambda: rows, version)
    again = training_background(lambda: rows, version)
    assert first.n_rows == BACKGROUND_ROWS
    assert list(first.data["tenure"]) == list(again.data["tenure"])
    assert len(set(first.data["tenure"])) == BACKGROUND_ROWS  # distinct rows, not one repeated


def test_a_version_without_stored_rows_is_a_conflict_that_says_what_to_do() -> None:
    def missing() -> pd.DataFrame:
        raise NotFound("no snapshot")

    with pytest.raises(Conflict, match="no stored training rows.*retrain it"):
        training_background(missing, a_version(1))
