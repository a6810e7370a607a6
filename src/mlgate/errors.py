"""Every error mlgate raises on purpose.

* MlgateError
  + ConfigError        - settings missing or malformed; raised at startup
  + InvalidInput       - values that make no sense (bad params, bad rows); may list field errors
    + PayloadTooLarge  - a request body or row count over the configured maximum
    + MalformedRequest - a body that cannot be read at all (not JSON, say)
    + UnsupportedFormat - a body in a format we do not read
    + AddressRefused   - an outbound URL that resolves inside (loopback, private, link-local...)
    + ArchiveTooLarge  - a zip over one of the archive limits (size, entries, ratio): 413
  + NotFound           - no such model, version, algorithm, source, key
    + Gone             - it was there and was removed (a batch's result, after a cancel)
  + Conflict           - the request clashes with the current state (an archived version, ...)
    + AlreadyExists    - a name that must be unique is taken
    + ConcurrentWrite  - another writer changed the same record first; try again
  + Unauthenticated    - no credentials, or ones we do not recognise
  + PermissionDenied   - the caller is known but may not do this
  + TooManyRequests    - slow down: retry after `retry_after` seconds (login throttling, limits)
  + SourceError        - a data source could not be reached or read
  + DeliveryFailed     - an outbound call (webhook, usage sink) did not get through
  + ArtifactError      - a stored model is missing, tampered with or of an untrusted type
    + SignatureError   - a version's signature is missing (where required), untrusted or
                         does not match its files: it is not loaded
  + NotReady           - the service cannot answer yet (database down, schema not at head)

Errors know nothing of HTTP or exit codes. outcomes.py says which are the caller's (a call
refused) and which the server's (a call failed), and gives each outcome its one status, which
the API, the pages and the usage ledger all use; the CLI turns them into exit codes in one place.
Messages say what was wrong and what to do; they never echo secrets or request bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class MlgateError(Exception):
    """Base class: catch this at the edges (HTTP, CLI), nowhere else."""


class ConfigError(MlgateError):
    pass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of the input, e.g. field="rows[3].tenure_months"."""

    field: str
    message: str


class InvalidInput(MlgateError):
    def __init__(self, message: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class PayloadTooLarge(InvalidInput):
    """`max_rows`, where rows are what is too many: how many one request may carry (clients
    split by it)."""

    def __init__(
        self, message: str, *, errors: list[FieldError] | None = None, max_rows: int | None = None
    ) -> None:
        super().__init__(message, errors=errors)
        self.max_rows = max_rows


class MalformedRequest(InvalidInput):
    pass


class UnknownColumns(InvalidInput):
    """Rows name columns the model does not take (schema.py); the use case that knows which
    model was asked for adds where its columns are listed."""


class UnsupportedFormat(InvalidInput):
    pass


class AddressRefused(InvalidInput):
    """A webhook or sink URL whose host resolves to an address mlgate does not call."""

    code = "address_refused"


class ArchiveTooLarge(PayloadTooLarge):
    """A zip whose entries pass a limit (total or entry size, entry count, compression ratio);
    the message names the limit and its setting."""

    code = "archive_limit"


class NotFound(MlgateError):
    pass


class Gone(NotFound):
    """Something that existed and was removed on purpose; the message says when and why."""


class Conflict(MlgateError):
    pass


class AlreadyExists(Conflict):
    pass


class ConcurrentWrite(Conflict):
    """The storage refused a write that clashed with another one committed first (a unique
    key taken between a read and a write); the database layer raises it, nothing else."""


class Unauthenticated(MlgateError):
    """`code` says why, for clients to act on: missing_credentials, malformed_credentials,
    bad_checksum (a mistyped or cut-short key, refused without a database read),
    invalid_credentials, key_revoked, key_expired, session_expired, account_disabled."""

    def __init__(self, message: str, *, code: str = "invalid_credentials") -> None:
        super().__init__(message)
        self.code = code


class PermissionDenied(MlgateError):
    """`code`: missing_scope, no_grant, key_restricted, admin_only, or forbidden."""

    def __init__(self, message: str, *, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code


class TooManyRequests(MlgateError):
    """`limit` names what was hit (e.g. "requests per month"), `resets_at` when it resets;
    `headers` are the rate-limit headers the answer carries."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        headers: dict[str, str] | None = None,
        limit: str | None = None,
        resets_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.headers = headers or {}
        self.limit = limit
        self.resets_at = resets_at


class PaymentRequired(MlgateError):
    """A consumer's monthly spend cap is reached: `cap` and `spent` (decimal strings in the
    plan's prices' currency), `resets_at` the month's end."""

    code = "spend_cap_reached"

    def __init__(self, message: str, *, cap: str, spent: str, resets_at: datetime) -> None:
        super().__init__(message)
        self.cap = cap
        self.spent = spent
        self.resets_at = resets_at


class SourceError(MlgateError):
    pass


class DeliveryFailed(MlgateError):
    pass


class ArtifactError(MlgateError):
    pass


class SignatureError(ArtifactError):
    pass


class NotReady(MlgateError):
    pass
