"""SQLAlchemy implementation of the monitoring repository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mlgate.db.repositories import _aware
from mlgate.db.tables import feedback, monitor_checks, monitor_settings, prediction_log
from mlgate.monitoring.model import CheckResult, Label, LoggedPrediction, MonitorSettings

_CHUNK = 500  # request ids per IN (...)


class SqlMonitoringRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def settings(self, model: str) -> MonitorSettings | None:
        row = self._conn.execute(
            sa.select(monitor_settings.c.settings).where(monitor_settings.c.model == model)
        ).first()
        return None if row is None else MonitorSettings.from_json(row[0])

    def save_settings(self, model: str, settings: MonitorSettings, at: datetime) -> None:
        table = monitor_settings
        done = self._conn.execute(
            table.update()
            .where(table.c.model == model)
            .values(settings=settings.to_json(), updated_at=at)
        )
        if done.rowcount == 0:
            self._conn.execute(
                table.insert().values(model=model, settings=settings.to_json(), updated_at=at)
            )

    def all_settings(self) -> dict[str, MonitorSettings]:
        rows = self._conn.execute(sa.select(monitor_settings.c.model, monitor_settings.c.settings))
        return {r.model: MonitorSettings.from_json(r.settings) for r in rows}

    def log(self, entries: Sequence[LoggedPrediction]) -> None:
        if entries:
            self._conn.execute(
                prediction_log.insert(),
                [
                    {
                        "request_id": e.request_id, "model": e.model, "version": e.version,
                        "account": e.account, "at": e.at, "n_rows": len(e.predictions),
                        "inputs": e.inputs, "predictions": e.predictions,
                        "trace_id": e.trace_id,
                    }
                    for e in entries
                ],
            )  # fmt: skip

    def logged(
        self,
        model: str,
        since: datetime,
        until: datetime,
        *,
        version: int | None = None,
        account: str | None = None,
    ) -> list[LoggedPrediction]:
        t = prediction_log
        query = t.select().where(t.c.model == model, t.c.at >= since, t.c.at < until)
        if version is not None:
            query = query.where(t.c.version == version)
        if account is not None:
            query = query.where(t.c.account == account)
        return [_logged(r) for r in self._conn.execute(query.order_by(t.c.id))]

    def count_logged(self, model: str) -> int:
        t = prediction_log
        query = sa.select(sa.func.count()).select_from(t).where(t.c.model == model)
        return int(self._conn.execute(query).scalar_one())

    def logged_requests(self, request_ids: Sequence[str]) -> dict[str, LoggedPrediction]:
        out: dict[str, LoggedPrediction] = {}
        for chunk in _chunks(request_ids):
            query = prediction_log.select().where(prediction_log.c.request_id.in_(chunk))
            out.update({r.request_id: _logged(r) for r in self._conn.execute(query)})
        return out

    def add_labels(self, model: str, labels: Sequence[Label], at: datetime) -> None:
        """Store labels; a label sent again for the same row replaces the earlier one."""
        for chunk in _chunks(sorted({label.request_id for label in labels})):
            self._conn.execute(
                feedback.delete().where(
                    feedback.c.request_id.in_(chunk),
                    sa.tuple_(feedback.c.request_id, feedback.c.row).in_(
                        [(lb.request_id, lb.row) for lb in labels if lb.request_id in chunk]
                    ),
                )
            )
        if labels:
            self._conn.execute(
                feedback.insert(),
                [
                    {"request_id": lb.request_id, "row": lb.row, "model": model,
                     "label": lb.label, "at": at}
                    for lb in labels
                ],
            )  # fmt: skip

    def labels(self, request_ids: Sequence[str]) -> list[Label]:
        out: list[Label] = []
        for chunk in _chunks(request_ids):
            query = sa.select(feedback.c.request_id, feedback.c.row, feedback.c.label).where(
                feedback.c.request_id.in_(chunk)
            )
            out.extend(Label(r.request_id, r.row, r.label) for r in self._conn.execute(query))
        return out

    def labels_since(self, model: str, since: datetime) -> list[Label]:
        """The labels fed back for the model's calls at or after `since`."""
        query = sa.select(feedback.c.request_id, feedback.c.row, feedback.c.label).where(
            feedback.c.model == model, feedback.c.at >= since
        )
        return [Label(r.request_id, r.row, r.label) for r in self._conn.execute(query)]

    def last_check(self, model: str) -> CheckResult | None:
        row = self._conn.execute(
            monitor_checks.select().where(monitor_checks.c.model == model)
        ).first()
        return None if row is None else _check(row)

    def all_checks(self) -> list[CheckResult]:
        query = monitor_checks.select().order_by(monitor_checks.c.model)
        return [_check(r) for r in self._conn.execute(query)]

    def save_check(self, result: CheckResult, *, was: str | None) -> bool:
        """Store the check if the stored state is still `was` (None: no check stored yet);
        False when another process changed it first (nothing is written then)."""
        table = monitor_checks
        values = {"state": result.state, "checked_at": result.checked_at}
        values["details"] = result.details
        if was is None:
            try:
                with self._conn.begin_nested():
                    self._conn.execute(table.insert().values(model=result.model, **values))
            except sa.exc.IntegrityError:
                return False
            return True
        query = table.update().where(table.c.model == result.model, table.c.state == was)
        return bool(self._conn.execute(query.values(values)).rowcount == 1)


def _chunks(values: Sequence[str]) -> list[list[str]]:
    items = list(values)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _logged(row: Any) -> LoggedPrediction:
    return LoggedPrediction(
        row.request_id, row.model, row.version, row.account, _aware(row.at), row.inputs,
        row.predictions, row.trace_id,
    )  # fmt: skip


def _check(row: Any) -> CheckResult:
    return CheckResult(row.model, row.state, _aware(row.checked_at), row.details)
