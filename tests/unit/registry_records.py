"""A registry written straight into the in-memory fakes: a model, its versions as records and
an alias, with no training and no artifact. The rollout and schedule rules read versions
(task, columns, lineage, archived or not), never their fitted estimators, so a record is all
they need; training through the fakes is tests/unit/test_serving.py's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mlgate.columns import Column
from mlgate.registry.model import Artifact, Lineage, ModelVersion, RegisteredModel, Task
from mlgate.uow import UnitOfWork

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
COLUMNS = (Column("tenure", "number"), Column("plan", "string"))


def a_version(
    number: int,
    *,
    model: str = "churn",
    task: Task = "classification",
    columns: tuple[Column, ...] = COLUMNS,
    n_rows: int = 600,
) -> ModelVersion:
    return ModelVersion(
        model_name=model,
        number=number,
        task=task,
        algorithm="logistic_regression",
        target="churned",
        params={"C": 1.0},
        metrics={"accuracy": 0.8},
        columns=columns,
        classes=(0, 1) if task == "classification" else None,
        lineage=Lineage("crm", "sqlite:///crm.db", "customers", None, n_rows, "ab" * 32),
        artifact=Artifact(f"{model}/{number}.skops", "skops", "cd" * 32, 1234),
        library_versions={"scikit-learn": "1.9"},
        created_at=T0 + timedelta(minutes=number),
    )


def register(
    uow: Callable[[], UnitOfWork],
    *versions: ModelVersion,
    model: str = "churn",
    task: Task = "classification",
    archived: tuple[int, ...] = (),
) -> None:
    """The model and its versions, committed; `archived` versions out of service. A version is
    read with its model's task, as the database joins them."""
    with uow() as work:
        work.models.add(RegisteredModel(model, task, "churned", T0))
        for version in versions:
            archived_at = T0 if version.number in archived else None
            work.models.add_version(replace(version, model_name=model, archived_at=archived_at))
        work.commit()
