"""What became of a call (mlgate/outcomes.py): refused for the caller's errors, failed for the
server's, and the one status each is answered and metered with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate import errors
from mlgate.outcomes import (
    ANSWERED,
    FAILURES,
    REFUSALS,
    Failed,
    Refused,
    outcome_of,
    status_of,
)

# The statuses the API answered and the usage ledger recorded before outcomes existed: a
# change here changes what operators' usage reports and bills show.
RECORDED = [
    (errors.MalformedRequest("not JSON"), 400),
    (errors.UnsupportedFormat("text/csv"), 415),
    (errors.PayloadTooLarge("too many rows"), 413),
    (errors.ArchiveTooLarge("too many entries"), 413),
    (errors.InvalidInput("bad"), 422),
    (errors.UnknownColumns("no such column"), 422),
    (errors.AddressRefused("loopback"), 422),
    (errors.NotFound("no model"), 404),
    (errors.Gone("removed"), 410),
    (errors.Conflict("archived"), 409),
    (errors.AlreadyExists("taken"), 409),
    (errors.ConcurrentWrite("again"), 409),
    (errors.Unauthenticated("who?", code="missing_credentials"), 401),
    (errors.PermissionDenied("no"), 403),
    (errors.TooManyRequests("slow down", retry_after=1), 429),
    (errors.PaymentRequired("cap", cap="1.00", spent="1.01", resets_at=datetime.now(UTC)), 402),
    (errors.SourceError("unreachable"), 502),
    (errors.DeliveryFailed("no answer"), 502),
    (errors.NotReady("database down"), 503),
    (errors.ArtifactError("tampered"), 500),
    (errors.SignatureError("signed by a key nobody trusts"), 500),
    (errors.ConfigError("missing"), 500),
    (errors.MlgateError("unclassified"), 500),
    (ValueError("a bug"), 500),
]


def test_an_answered_call_is_200() -> None:
    assert status_of(ANSWERED) == 200


@pytest.mark.parametrize(("error", "status"), RECORDED, ids=lambda v: type(v).__name__)
def test_each_error_keeps_the_status_it_was_answered_and_metered_with(
    error: BaseException, status: int
) -> None:
    assert status_of(outcome_of(error)) == status


@pytest.mark.parametrize(("error", "status"), RECORDED, ids=lambda v: type(v).__name__)
def test_the_callers_errors_are_refusals_and_the_servers_are_failures(
    error: BaseException, status: int
) -> None:
    outcome = outcome_of(error)
    assert isinstance(outcome, Refused if status < 500 else Failed)
    assert (outcome.reason if isinstance(outcome, Refused) else outcome.error) is error


def test_no_error_class_is_both_a_refusal_and_a_failure() -> None:
    assert not set(REFUSALS) & set(FAILURES)


def test_every_error_class_has_its_status_stated_here() -> None:
    """A new error class joins RECORDED (and REFUSALS or FAILURES) with the status it gets."""
    classes = {
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MlgateError)
    }
    assert classes <= {type(error) for error, _ in RECORDED}
