"""The retention's storage seam; db/retention.py implements it over SQLAlchemy."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mlgate.retention.model import Purged


class RetentionRepository(Protocol):
    def purge(self, model: str, cutoff: datetime, *, days: int, at: datetime) -> Purged:
        """Delete the model's prediction log, feedback, usage rows and audit events about it
        from before `cutoff` (a usage hour only when all of it is), in the caller's
        transaction; the audit events through the purge path the audit log's trigger opens."""
        ...
