"""Plans and subscriptions, as stored, and the limits a plan sets on each call."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from mlgate.access.model import Target

Window = Literal["second", "minute", "hour", "day", "month"]
Unit = Literal["requests", "rows", "spend"]  # spend: in NANOS (1e-9 of the price's currency)
NANOS = 1_000_000_000
MAX_SPEND_CAP = 9_000_000  # nanos stay exact in the Redis script's numbers (below 2**53)

# Metered usage, summed per key (hour, consumer, key prefix, model, version, status) into the
# values FIELDS names: what plans/metering.py and the Redis counters gather and the repository
# writes to the ledger in one batch.
Aggregates = dict[tuple[str, ...], list[int]]
FIELDS = ("requests", "rows", "overage_rows", "latency_ms", "explained_rows")


@dataclass(frozen=True)
class LimitField:
    """One limit a plan may set, declared once: the API's plan schemas, the CLI's options and
    the dashboard's plan form are all made from LIMITS."""

    name: str  # the Plan attribute, the API's and the form's field
    label: str  # what people read
    option: str  # the CLI's option


LIMITS: tuple[LimitField, ...] = (
    LimitField("per_second", "Calls per second", "--per-second"),
    LimitField("per_minute", "Calls per minute", "--per-minute"),
    LimitField("per_hour", "Calls per hour", "--per-hour"),
    LimitField("requests_per_day", "Requests per day (quota)", "--requests-per-day"),
    LimitField("requests_per_month", "Requests per month (quota)", "--requests-per-month"),
    LimitField("rows_per_day", "Rows per day (quota)", "--rows-per-day"),
    LimitField("rows_per_month", "Rows per month (quota)", "--rows-per-month"),
    LimitField("max_rows_per_request", "Rows per request at most", "--max-rows"),
)
LIMIT_FIELDS = tuple(f.name for f in LIMITS)
MONEY_PLACES = 6  # the finest a price is shown: a millionth of the currency


def money(amount: Decimal | int | str, currency: str, *, price: bool = False) -> str:
    """An amount as people read it, with its currency: a spend or cap to the cent ("USD 12.50",
    "USD 1,200.00"); a `price` as set, which may be finer ("USD 0.0035", to a millionth)."""
    value = Decimal(amount)
    places = 2
    if price:
        value = value.quantize(Decimal(1).scaleb(-MONEY_PLACES)).normalize()
        exponent = value.as_tuple().exponent
        places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{currency} {value:,.{places}f}"


@dataclass(frozen=True)
class Plan:
    name: str
    created_at: datetime
    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    requests_per_day: int | None = None
    requests_per_month: int | None = None
    rows_per_day: int | None = None
    rows_per_month: int | None = None
    max_rows_per_request: int | None = None
    models: tuple[Target, ...] = ()  # empty: any model the consumer is granted
    overage: bool = False  # False: quotas are hard; True: calls past them are served and metered
    price_per_1k_rows: Decimal | None = None
    price_per_1k_overage_rows: Decimal | None = None
    price_per_1k_explained_rows: Decimal | None = None  # on top of the rows' own price
    description: str = ""
    explain: bool = False  # may its consumers ask for per-row explanations
    thresholds: tuple[int, ...] = (80, 100)  # percents of a quota (or spend cap) announced
    max_batch_bytes: int | None = None  # the largest batch file (None: the server's limit)

    @property
    def priced(self) -> bool:
        return any(
            p for p in (self.price_per_1k_rows, self.price_per_1k_overage_rows,
                        self.price_per_1k_explained_rows)
        )  # fmt: skip

    def rates(self) -> tuple[int, int, int]:
        """What a row costs in nanos: (a row, what an overage row costs on top, an explained
        row on top), as the bill prices them (an overage row at the overage price, which
        defaults to the row price). A price finer than a nano a row is rounded up."""
        row = self.price_per_1k_rows or Decimal(0)
        over = self.price_per_1k_overage_rows
        explained = self.price_per_1k_explained_rows or Decimal(0)

        def nanos(per_1k: Decimal) -> int:
            return int((per_1k * NANOS / 1000).to_integral_value(rounding="ROUND_CEILING"))

        extra = 0 if over is None else nanos(over) - nanos(row)
        return nanos(row), extra, nanos(explained)

    def limits(self) -> list[Limit]:
        """Every limit the plan sets, rate limits first (always hard), then quotas."""
        return list(self._limits)

    @functools.cached_property
    def _limits(self) -> tuple[Limit, ...]:  # asked on every call; a plan never changes
        out = []
        for window, value in (
            ("second", self.per_second),
            ("minute", self.per_minute),
            ("hour", self.per_hour),
        ):
            if value is not None:
                out.append(Limit("requests", window, value, hard=True))  # type: ignore[arg-type]
        for unit, window, value in (
            ("requests", "day", self.requests_per_day),
            ("requests", "month", self.requests_per_month),
            ("rows", "day", self.rows_per_day),
            ("rows", "month", self.rows_per_month),
        ):
            if value is not None:
                out.append(Limit(unit, window, value, hard=not self.overage))  # type: ignore[arg-type]
        return tuple(out)


@dataclass(frozen=True)
class Limit:
    unit: Unit
    window: Window
    limit: int
    hard: bool

    @property
    def name(self) -> str:
        return "spend per month" if self.unit == "spend" else f"{self.unit} per {self.window}"


@dataclass(frozen=True)
class Subscription:
    id: int
    consumer: str
    plan: str
    starts_at: datetime
    created_at: datetime
    ends_at: datetime | None = None
    pins: dict[str, int] = field(default_factory=dict)  # model -> pinned version

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


@dataclass(frozen=True)
class UsageRow:
    """One line of a usage report: the calls of one period, account, key, model version and
    status, summed."""

    period: str  # the hour, day or month, as text
    account: str
    key_prefix: str
    model: str
    version: int
    status: int
    requests: int
    rows: int
    overage_rows: int
    latency_ms: int
    explained_rows: int = 0
    # traced calls among them (tracing/): up to TRACES_PER_ROW trace ids, an exemplar of each
    # line of a bill that leads to what happened in it
    trace_ids: tuple[str, ...] = ()


TRACES_PER_ROW = 3


@dataclass(frozen=True)
class UsageTrace:
    """A traced call's trace id, filed under its usage aggregate's key (the hour, account,
    key, model, version and status of plans/metering.py)."""

    hour: datetime
    account: str
    key_prefix: str
    model: str
    version: int
    status: int
    trace_id: str


@dataclass(frozen=True)
class Crossing:
    """A consumer's use of a quota (or spend cap) reached `threshold` percent in a window."""

    consumer: str
    limit: str  # "rows per month", "spend per month", ...
    window: str  # the window's bucket, e.g. "2026-11"
    threshold: int
    used: int
    limit_value: int
    at: datetime


@dataclass(frozen=True)
class ExportCursor:
    """How far usage has reached a billing sink: every hour before `through` was delivered (or
    dead-lettered); after `failures` failed passes in a row, the next waits until `retry_at`."""

    sink: str
    through: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An event a sink refused for good, kept to be replayed (with the same id)."""

    id: int
    sink: str
    event_id: str
    event: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    failed_at: datetime | None = None
    replayed_at: datetime | None = None
