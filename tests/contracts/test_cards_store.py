"""The card repository under contract: on the fake and on every database."""

from __future__ import annotations

from mlgate.cards.model import CardRecord, Slice, SliceSet
from tests.contracts.conftest import UowFactory
from tests.contracts.test_registry_store import T0, with_model


def test_a_card_round_trips_replaces_and_goes_with_its_version(uow_factory: UowFactory) -> None:
    with_model(uow_factory, 1, 2)
    north = Slice("region", "north", 12, {"accuracy": 0.75}, {"accuracy": (0.5, 1.0)},
                  {"accuracy": -0.05}, small=True, notes=("few rows",))  # fmt: skip
    sliced = (SliceSet("region", False, (north,)),)
    record = CardRecord("churn", 1, "retention offers", "crm-team", sliced, {"accuracy": 0.8},
                        T0, "cli:ana")  # fmt: skip
    with uow_factory() as uow:
        assert uow.cards.get("churn", 1) is None
        uow.cards.put(record)
        uow.cards.put(CardRecord("churn", 9, owner="nobody"))  # no such version: nothing kept
        uow.commit()
    with uow_factory() as uow:
        assert uow.cards.get("churn", 1) == record
        assert uow.cards.get("churn", 9) is None
        uow.cards.put(CardRecord("churn", 1, owner="risk"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.cards.get("churn", 1) == CardRecord("churn", 1, owner="risk")
        uow.models.delete_version("churn", 1)
        uow.commit()
    with uow_factory() as uow:
        assert uow.cards.get("churn", 1) is None
