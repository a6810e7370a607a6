"""What became of a call, in the domain's words, and the one mapping from that to a status.

A call is answered; refused, when what the caller asked for cannot be given (a malformed body,
no grant, a plan's limit, a model that is not there); or failed, when the server could not
answer (a broken artifact, an unreachable database or Redis, a bug). The use cases decide on
outcomes (a rollout's guard rail counts failures, not refusals). The status an outcome is
answered with over HTTP and on the pages, the one the prediction metrics label it with, and the
one the usage ledger records for it all come from `status_of`, here and nowhere else.

    status_of(ANSWERED) == 200
    status_of(outcome_of(errors.NotFound("no model named 'x'"))) == 404
    isinstance(outcome_of(errors.NotReady("redis is down")), Failed)
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgate import errors


@dataclass(frozen=True)
class Answered:
    """The call was answered."""


@dataclass(frozen=True)
class Refused:
    """The call was refused: `reason` says what the caller would have to change."""

    reason: errors.MlgateError


@dataclass(frozen=True)
class Failed:
    """The server failed to answer; `error` is what went wrong on our side."""

    error: BaseException


Outcome = Answered | Refused | Failed
ANSWERED = Answered()

# The caller's errors, each with the status its refusal is answered (and metered) with; looked
# up along the error's MRO, so a subclass answers as its parent unless it is listed itself.
REFUSALS: dict[type[errors.MlgateError], int] = {
    errors.MalformedRequest: 400,
    errors.UnsupportedFormat: 415,
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 422,
    errors.Gone: 410,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.TooManyRequests: 429,
    errors.PaymentRequired: 402,
}
# The server's own failures; any other exception fails with 500.
FAILURES: dict[type[errors.MlgateError], int] = {
    errors.SourceError: 502,
    errors.DeliveryFailed: 502,
    errors.NotReady: 503,
    errors.ArtifactError: 500,
    errors.ConfigError: 500,
}
_STATUS: dict[type, int] = {**REFUSALS, **FAILURES}


def outcome_of(exc: BaseException) -> Refused | Failed:
    """The outcome of a call that raised `exc`."""
    if isinstance(exc, errors.MlgateError) and _listed(exc) in REFUSALS:
        return Refused(exc)
    return Failed(exc)


def status_of(outcome: Outcome) -> int:
    """The HTTP status that answers `outcome`, and that the usage ledger records for it."""
    if isinstance(outcome, Answered):
        return 200
    listed = _listed(outcome.reason if isinstance(outcome, Refused) else outcome.error)
    return 500 if listed is None else _STATUS[listed]


def _listed(error: BaseException) -> type | None:
    """The nearest of the error's classes that REFUSALS or FAILURES names."""
    return next((c for c in type(error).__mro__ if c in _STATUS), None)
