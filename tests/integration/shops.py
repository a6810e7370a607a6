"""A churn model and consumer `acme` on a plan, with its key: what the consumer-side tests
(batches, spend caps) start from."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mlgate.access import accounts, grants
from mlgate.access.service import create_key
from mlgate.bootstrap import Services
from mlgate.plans.model import Plan
from mlgate.plans.service import create_plan, subscribe
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to
from tests.fakes import FixedClock


def open_shop(services: Services, tmp_path: Path, plan: Plan, now: datetime) -> str:
    """Train `churn` on demo rows, stop the clock at `now`, put acme on `plan` with a grant on
    churn; returns acme's key."""
    database = tmp_path / "shop.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=400))
    add_source_to(services, "shop", f"sqlite:///{database}", cwd=tmp_path)
    spec = TrainSpec("churn", "shop", demo.TARGET, "logistic_regression", table="customers",
                     drop=(demo.ID_COLUMN,), report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec,
                now=services.clock)  # fmt: skip
    services.clock = FixedClock(now)
    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=now)
    grants.add_grant(services.uow(), by=None, subject_kind="consumer", subject="acme",
                     target="churn", role="consumer", now=now, actor="test")  # fmt: skip
    create_plan(services.uow(), plan, by=None)
    subscribe(services.uow(), by=None, consumer="acme", plan=plan.name, now=now)
    _, token = create_key(services.uow(), services.server_secret, by=None,
                          owner_kind="consumer", owner="acme", name="k", now=now)  # fmt: skip
    return token
