"""Undefined statistics are stated on every surface, never a crash:
neural networks (tiny epochs) and the GAN, each
trained on generated awkward tables (see tests/integration/awkward.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.awkward import World, cases, check_every_surface, open_world

pytestmark = pytest.mark.filterwarnings("ignore")  # libraries' words on such tables: notes
CASES = cases("networks")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory) as opened:
        yield opened


@pytest.mark.parametrize(("algorithm", "task"), CASES, ids=[f"{a}-{t}" for a, t in CASES])
def test_undefined_statistics_are_stated_on_every_surface(
    world: World, algorithm: str, task: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_every_surface(world, algorithm, task, tmp_path_factory)
