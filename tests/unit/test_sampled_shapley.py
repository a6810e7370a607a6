"""Sampled Shapley values (explainers/sampling.py) ask the model only for the rows a switch
changed, and come out exactly as when every step of every walk is scored."""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.explainers import sampling
from mlgate.schema import Table


def _rows(n: int, seed: int) -> Table:
    rng = np.random.default_rng(seed)
    pixel = rng.choice([0.0, 0.0, 0.0, 16.0, np.nan], size=n)  # mostly blank, some missing
    signed = rng.choice([0.0, -0.0, 1.0], size=n)
    level = rng.normal(size=n)
    plan = rng.choice(["basic", "gold", None], size=n).astype(object)
    return Table({"pixel": pixel, "signed": signed, "level": level, "plan": plan}, n)


def _model(seen: list[int]) -> object:
    def output(table: Table, row_of: np.ndarray) -> np.ndarray:
        seen.append(table.n_rows)
        assert len(row_of) == table.n_rows
        d = table.data
        gold = np.array([p == "gold" for p in d["plan"]])
        pixel = np.nan_to_num(d["pixel"], nan=-3.0)
        # -0.0 and 0.0 told apart (1/x), as a model may; and the explained row's own index.
        sign = np.copysign(1.0, d["signed"])
        return np.sin(pixel) * d["level"] + gold * d["level"] ** 2 + sign + 0.01 * row_of

    return output


def test_skipped_steps_give_exactly_what_scoring_every_step_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows, background = _rows(12, 1), _rows(16, 2)
    groups = [["pixel"], ["signed"], ["level"], ["plan"]]
    skipping: list[int] = []
    found = sampling.shapley(rows, background, groups, _model(skipping))  # type: ignore[arg-type]
    monkeypatch.setattr(sampling, "_same", lambda here, there: np.zeros(
        np.broadcast_shapes(here.shape, there.shape), dtype=bool))  # fmt: skip
    every: list[int] = []
    full = sampling.shapley(rows, background, groups, _model(every))  # type: ignore[arg-type]
    assert every == [12 * sampling.WALKS * 5]
    assert len(skipping) == 1 and skipping[0] < 0.85 * every[0]  # the model asked less
    assert np.array_equal(found.base, full.base)
    assert np.array_equal(found.values, full.values)
    assert np.array_equal(found.errors, full.errors)


def test_values_are_the_same_value_bit_for_bit() -> None:
    same = sampling._same(np.array([0.0, -0.0, np.nan, 1.0]), np.array([0.0, 0.0, np.nan, 2.0]))
    assert same.tolist() == [True, False, True, False]
    words = np.array(["a", None, None, "b"], dtype=object)
    assert sampling._same(words, np.array(["a", None, "a", "c"], dtype=object)).tolist() == [
        True, True, False, False]  # fmt: skip
