"""The algorithm catalogue: algorithm name -> task, description and a fresh estimator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.linear_model import LinearRegression, LogisticRegression

from mlgate.errors import InvalidInput, NotFound
from mlgate.registry.model import Task


@dataclass(frozen=True)
class Algorithm:
    name: str
    task: Task
    description: str
    make: Callable[[], Any]  # no arguments needed: every hyperparameter has a default
    needs_scaling: bool = True

    def build(self, params: Mapping[str, Any] | None = None) -> Any:
        """A fresh, unfitted estimator with `params` applied."""
        estimator = self.make()
        try:
            return estimator.set_params(**(params or {}))
        except ValueError as exc:  # scikit-learn names the offending parameter
            raise InvalidInput(f"{self.name}: {exc}") from None


CATALOGUE: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "linear_regression",
            "regression",
            "Ordinary least squares: predicts a number as a weighted sum of the inputs. "
            "Fast and easy to read; a first baseline for any regression.",
            LinearRegression,
        ),
        Algorithm(
            "logistic_regression",
            "classification",
            "A linear model of the log-odds of each class, fitted with L2 regularisation. "
            "Gives calibrated-looking probabilities and readable coefficients.",
            lambda: LogisticRegression(max_iter=1000),
        ),
    ]
}


def get_algorithm(name: str) -> Algorithm:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise NotFound(
            f"no algorithm named {name!r}; choose one of {', '.join(sorted(CATALOGUE))}"
        ) from None
