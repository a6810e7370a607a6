"""The composition root over the fakes, as CONTRIBUTING.md documents it:
`bootstrap(settings, unit_of_work=..., artifacts=..., clock=...)` builds Services with no engine,
and the adapters it wires (the gate and its counters, the usage flusher, the threshold notifier,
the rollouts' tally and cache) work on the in-memory unit of work and the test's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mlgate.access import accounts
from mlgate.access.model import AuditQuery, Principal, Target
from mlgate.bootstrap import Services, bootstrap
from mlgate.errors import PaymentRequired
from mlgate.plans import service as plans
from mlgate.registry.aliases import promote
from mlgate.rollouts import service as rollouts
from mlgate.settings import Settings
from tests.fakes import FixedClock, InMemoryArtifactStore, in_memory_uow_factory
from tests.unit.registry_records import a_version, register

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACME = Principal("consumer", "acme", False, frozenset({"predict"}), key_prefix="k1")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = bootstrap(
        Settings.from_env({"MLGATE_HOME": str(tmp_path / "home")}),
        unit_of_work=in_memory_uow_factory(),
        artifacts=InMemoryArtifactStore(),
        clock=FixedClock(NOW),
    )
    register(made.uow, a_version(1), a_version(2))
    promote(made.uow(), "churn", 1, "production", actor="test", now=made.clock())
    yield made
    made.notifier.stop()
    made.close()


def test_services_over_the_fakes_have_no_database(services: Services) -> None:
    assert services.engine is None
    assert services.readiness()["database"] == "memory"
    assert services.clock() == NOW
    assert not (services.settings.home / "mlgate.db").exists()


def test_the_gate_flusher_and_notifier_enforce_a_spend_cap(services: Services) -> None:
    accounts.create_consumer(services.uow(), by=None, name="acme", description="", now=NOW)
    plan = plans.make_plan("metered", NOW, price_per_1k_rows="1.00")  # thresholds 80 and 100
    plans.create_plan(services.uow(), plan, by=None)
    plans.subscribe(services.uow(), by=None, consumer="acme", plan="metered", now=NOW)
    plans.set_spend_cap(services.uow(), by=ACME, consumer="acme", cap="0.10", now=NOW)
    version = services.resolve_version("churn", None, "production")

    def call(rows: int) -> None:
        admission = services.gate.open(ACME)
        services.gate.admit(admission, Target("churn"), rows, version)
        services.gate.settle(admission, version)

    for _ in range(10):  # 0.01 a call: the cap exactly
        call(10)
    with pytest.raises(PaymentRequired):
        call(1)
    services.flusher.flush()
    spend = plans.spend_of(services.uow(), "acme", services.clock())
    assert (spend.spent, spend.cap) == (Decimal("0.1"), Decimal("0.10"))
    services.notifier.drain()  # the crossings of 80% and 100% of the cap, on its thread
    announced = plans.crossings_of(services.uow(), "acme", services.clock())
    assert [(c["limit"], c["threshold"]) for c in announced] == [
        ("spend per month", 100),
        ("spend per month", 80),
    ]
    with services.uow() as uow:
        assert len(uow.audit.query(AuditQuery(action="quota.threshold"))) == 2


def test_the_tally_and_the_rollout_cache_follow_a_decision(services: Services) -> None:
    rollout = rollouts.start_rollout(services.uow(), "churn", 2, mode="canary", share=0.3,
                                     actor="test", now=services.clock())  # fmt: skip
    assert services.rollouts_of("churn") == (rollout,)
    for _ in range(20):  # the candidate's calls, as serving counts them
        services.tally.count(rollout.id or 0, "candidate", 3.0, failed=True)
    assert services.tally.flush() == 1
    (decided,) = rollouts.decide_all(services.uow, services.clock)
    assert decided.state == "rolled_back" and "failed 20 of 20 calls" in (decided.reason or "")
    services.forget_cached()  # what the referee does when a rollout ended
    assert services.rollouts_of("churn") == ()
