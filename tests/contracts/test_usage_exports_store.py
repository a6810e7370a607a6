"""How far usage has reached each billing sink, and the events a sink refused for good: the
same behaviour from the in-memory fake and from SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlgate.plans.model import DeadLetter, ExportCursor
from tests.contracts.conftest import UowFactory

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_cursor_moves_only_from_where_it_stands(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.usage_exports.cursor("stripe") is None
        assert uow.usage_exports.save_cursor(ExportCursor("stripe", T0), expected=T0) is False
        assert uow.usage_exports.cursor("stripe") is None  # absent: only None finds it
        assert uow.usage_exports.save_cursor(ExportCursor("stripe", T0), expected=None) is True
        uow.commit()
    with uow_factory() as uow:  # another process also saw no cursor: it loses
        assert uow.usage_exports.save_cursor(ExportCursor("stripe", T0 + HOUR),
                                             expected=None) is False  # fmt: skip
        assert uow.usage_exports.save_cursor(ExportCursor("stripe", T0 + HOUR),
                                             expected=T0 - HOUR) is False  # fmt: skip
        uow.commit()
    assert_cursor(uow_factory, ExportCursor("stripe", T0))
    failing = ExportCursor("stripe", T0, failures=2, retry_at=T0 + timedelta(minutes=5))
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(failing, expected=T0) is True  # same hour
        uow.commit()
    assert_cursor(uow_factory, failing)
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(ExportCursor("stripe", T0 + 3 * HOUR),
                                             expected=T0) is True  # fmt: skip
        uow.commit()
    assert_cursor(uow_factory, ExportCursor("stripe", T0 + 3 * HOUR))
    with uow_factory() as uow:
        assert uow.usage_exports.cursor("lago") is None


def test_a_cursor_that_reached_no_hour_yet_is_found_by_none(uow_factory: UowFactory) -> None:
    waiting = ExportCursor("lago", None, failures=1, retry_at=T0)
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(waiting, expected=None) is True
        uow.commit()
    assert_cursor(uow_factory, waiting)
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(ExportCursor("lago", T0), expected=T0) is False
        assert uow.usage_exports.save_cursor(ExportCursor("lago", T0), expected=None) is True
        uow.commit()
    assert_cursor(uow_factory, ExportCursor("lago", T0))


def test_a_cursor_keeps_whole_hours(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(
            ExportCursor("stripe", T0 + timedelta(minutes=30)), expected=None
        ) is True  # fmt: skip
        uow.commit()
    assert_cursor(uow_factory, ExportCursor("stripe", T0))
    with uow_factory() as uow:
        assert uow.usage_exports.save_cursor(
            ExportCursor("stripe", T0 + HOUR), expected=T0 + timedelta(minutes=59)
        ) is True  # fmt: skip
        uow.commit()
    assert_cursor(uow_factory, ExportCursor("stripe", T0 + HOUR))


def assert_cursor(uow_factory: UowFactory, cursor: ExportCursor) -> None:
    with uow_factory() as uow:
        assert uow.usage_exports.cursor(cursor.sink) == cursor


def event(n: int) -> dict[str, Any]:
    return {"id": f"e{n}", "hour": "2026-11-27T12:00:00Z", "account": "consumer:acme", "rows": n}


def test_dead_letters_are_kept_once_per_sink_and_event(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.usage_exports.add_dead_letters(
            "stripe", [("e1", event(1), "400: unknown customer"), ("e2", event(2), "x" * 3000)], T0
        )
        uow.usage_exports.add_dead_letters("stripe", [], T0)
        uow.commit()
    with uow_factory() as uow:  # e1 again, refused again later: the first letter stays
        uow.usage_exports.add_dead_letters(
            "stripe",
            [("e1", event(10), "409: again"), ("e3", event(3), "422"), ("e3", event(30), "422!")],
            T0 + HOUR,
        )
        uow.usage_exports.add_dead_letters("lago", [("e1", event(1), "400")], T0 + HOUR)
        uow.commit()
    with uow_factory() as uow:
        stripe = uow.usage_exports.dead_letters("stripe")
        lago = uow.usage_exports.dead_letters("lago")
        assert uow.usage_exports.dead_letters("nope") == []
    assert [letter.id for letter in stripe] == sorted({letter.id for letter in stripe})
    assert [(d.sink, d.event_id, d.event, d.error, d.failed_at, d.replayed_at)
            for d in stripe] == [
        ("stripe", "e1", event(1), "400: unknown customer", T0, None),
        ("stripe", "e2", event(2), "x" * 2000, T0, None),
        ("stripe", "e3", event(3), "422", T0 + HOUR, None),
    ]  # fmt: skip
    assert lago == [DeadLetter(lago[0].id, "lago", "e1", event(1), "400", T0 + HOUR)]
    assert lago[0].id not in {letter.id for letter in stripe}


def test_replayed_letters_leave_the_pending_list(uow_factory: UowFactory) -> None:
    with uow_factory() as uow:
        uow.usage_exports.add_dead_letters(
            "stripe", [(f"e{n}", event(n), "400") for n in range(1, 4)], T0
        )
        uow.usage_exports.add_dead_letters("lago", [("e1", event(1), "400")], T0)
        uow.commit()
    with uow_factory() as uow:
        e1, e2, e3 = uow.usage_exports.dead_letters("stripe")
        (other,) = uow.usage_exports.dead_letters("lago")
        uow.usage_exports.mark_replayed([e1.id, e3.id], T0 + HOUR)
        uow.usage_exports.mark_replayed([], T0 + HOUR)
        uow.usage_exports.mark_replayed([e1.id + e2.id + e3.id + other.id], T0 + HOUR)  # unknown
        uow.commit()
    with uow_factory() as uow:
        assert uow.usage_exports.dead_letters("stripe") == [e2]
        replayed = uow.usage_exports.dead_letters("stripe", pending=False)
        assert [(d.event_id, d.replayed_at) for d in replayed] == [
            ("e1", T0 + HOUR), ("e2", None), ("e3", T0 + HOUR),
        ]  # fmt: skip
        assert uow.usage_exports.dead_letters("lago") == [other]
    with uow_factory() as uow:  # a replayed event refused again stays replayed: added once
        uow.usage_exports.add_dead_letters("stripe", [("e1", event(1), "400")], T0 + 2 * HOUR)
        uow.commit()
    with uow_factory() as uow:
        assert uow.usage_exports.dead_letters("stripe") == [e2]
