"""The server's problem details as typed exceptions: catch what you can act on."""

from __future__ import annotations

from typing import Any


class MlgateError(Exception):
    """Any error the server answered (`status`, its problem-details body as `problem`), or a
    connection that failed (`status` 0)."""

    def __init__(self, message: str, *, status: int = 0, problem: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}
        self.code: str | None = self.problem.get("code")


class ConnectionFailed(MlgateError):
    """No answer: the server is down or unreachable (retried with backoff first)."""


class InvalidInput(MlgateError):
    """422 or 400: the request was wrong. `errors` lists each field and what was wrong with it;
    `field` is the first of them."""

    @property
    def errors(self) -> list[dict[str, str]]:
        return list(self.problem.get("errors") or [])

    @property
    def field(self) -> str | None:
        return self.errors[0]["field"] if self.errors else None


class PayloadTooLarge(InvalidInput):
    """413: too many rows or bytes in one request; `max_rows` says how many fit."""

    @property
    def max_rows(self) -> int | None:
        value = self.problem.get("max_rows")
        return int(value) if value is not None else None


class Unauthenticated(MlgateError):
    """401: no key, or the key is unknown, revoked or expired."""


class PermissionDenied(MlgateError):
    """403: the key's owner may not do this (a grant, a scope or the plan says no)."""


class NotFound(MlgateError):
    """404: no such model, version, alias, job or account."""


class Gone(NotFound):
    """410: it was there and was removed (a batch's result, after a cancel or its retention);
    the message says when."""


class Conflict(MlgateError):
    """409: the request clashes with the current state (an alias already there, and so on)."""


class QuotaExceeded(MlgateError):
    """429: a rate limit or quota of the plan. `retry_after` is the seconds until it resets,
    `limit` what was hit."""

    def __init__(
        self, message: str, *, status: int, problem: dict[str, Any], retry_after: float | None
    ) -> None:
        super().__init__(message, status=status, problem=problem)
        self.retry_after = retry_after
        self.limit: str | None = problem.get("limit")


class ServerError(MlgateError):
    """5xx: the server (or a source it read) failed."""


BY_STATUS: dict[int, type[MlgateError]] = {
    400: InvalidInput, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
    409: Conflict, 410: Gone, 413: PayloadTooLarge, 415: InvalidInput, 422: InvalidInput,
}  # fmt: skip
