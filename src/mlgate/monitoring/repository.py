"""What monitoring needs from storage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mlgate.monitoring.model import CheckResult, Label, LoggedPrediction, MonitorSettings


class MonitoringRepository(Protocol):
    def settings(self, model: str) -> MonitorSettings | None: ...

    def save_settings(self, model: str, settings: MonitorSettings, at: datetime) -> None: ...

    def all_settings(self) -> dict[str, MonitorSettings]: ...

    def log(self, entries: Sequence[LoggedPrediction]) -> None: ...

    def logged(
        self,
        model: str,
        since: datetime,
        until: datetime,
        *,
        version: int | None = None,
        account: str | None = None,
    ) -> list[LoggedPrediction]: ...

    def count_logged(self, model: str) -> int: ...

    def logged_requests(self, request_ids: Sequence[str]) -> dict[str, LoggedPrediction]: ...

    def add_labels(self, model: str, labels: Sequence[Label], at: datetime) -> None: ...

    def labels(self, request_ids: Sequence[str]) -> list[Label]: ...

    def labels_since(self, model: str, since: datetime) -> list[Label]: ...

    def last_check(self, model: str) -> CheckResult | None: ...

    def all_checks(self) -> list[CheckResult]: ...

    def save_check(self, result: CheckResult, *, was: str | None) -> bool: ...
