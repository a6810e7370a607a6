"""registry/model.same_label: the one rule monitoring, rollouts' replay and shadow comparisons
use to say whether a label and a prediction are the same class."""

from __future__ import annotations

import pytest

from mlgate.registry.model import same_label


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1, 1.0, True),  # JSON may carry a class as either
        ("1", 1, True),  # a label fed back as text
        ("yes", "yes", True),
        (True, True, True),
        (True, 1, False),  # a boolean class is not the number 1
        (False, 0, False),
        (0, 1, False),
        ("a", "b", False),
    ],
)
def test_same_label(a: object, b: object, same: bool) -> None:
    assert same_label(a, b) is same
    assert same_label(b, a) is same
