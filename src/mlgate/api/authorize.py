"""The one authorization hook every /v1 route calls: who is asking, and may they do this.

Today the answer comes from the API key's scopes; grants per model and per alias (issue 5) slot
in here without touching the handlers.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from mlgate.access.model import ApiKey
from mlgate.access.service import authenticate
from mlgate.bootstrap import Services

Action = Literal["predict", "read", "train", "promote", "rollback", "archive"]

SCOPE_FOR: dict[Action, str] = {
    "predict": "predict",
    "read": "predict",
    "train": "train",
    "promote": "train",
    "rollback": "train",
    "archive": "train",
}


def authorize(services: Services, request: Request, action: Action, model: str | None) -> ApiKey:
    """The caller's key if it may do `action` (on `model`); raises Unauthenticated or
    PermissionDenied otherwise. Runs in a worker thread: it reads the database."""
    return authenticate(
        services.uow(),
        services.server_secret,
        request.headers.get("authorization"),
        scope=SCOPE_FOR[action],
    )


def actor(key: ApiKey) -> str:
    return f"key:{key.prefix}"
