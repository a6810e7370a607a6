"""Plans on every predict (and generate) call: which plan, may it call this model, how many rows
at most, is a limit already reached (refused before scoring), then counted atomically once
answered. Consumers need an active subscription; team members' calls are metered, not limited.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime

from mlgate.access.model import Principal, Target
from mlgate.access.policy import covers
from mlgate.errors import (
    NotReady,
    PayloadTooLarge,
    PaymentRequired,
    PermissionDenied,
    TooManyRequests,
)
from mlgate.outcomes import ANSWERED, Answered, Outcome, Refused, status_of
from mlgate.plans import service
from mlgate.plans.limiter import Charge, Counters, LimitState, charges, decide, spend_charge
from mlgate.plans.metering import UsageEvent, UsageTraces
from mlgate.plans.model import NANOS, Crossing, Limit, Plan, Subscription
from mlgate.plans.thresholds import crossings
from mlgate.registry.model import ModelVersion
from mlgate.tracing import current
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.plans")


@dataclass
class Admission:
    """What the gate decided before scoring, carried to `settle` after it."""

    principal: Principal
    started: float
    plan: Plan | None = None
    subscription: Subscription | None = None
    spend_cap: Decimal | None = None  # the consumer's monthly cap, where its plan has prices
    charged: list[Charge] = field(default_factory=list)
    rows: int = 0
    explained: int = 0  # rows to be explained as well (metered apart, priced apart)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.principal.actor

    def pinned(self, model: str) -> int | None:
        return None if self.subscription is None else self.subscription.pins.get(model)


class Gate:
    def __init__(
        self,
        counters: Counters,
        uow: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        fail_open: bool = False,
        cache_seconds: float = 1.0,
        on_crossings: Callable[[list[Crossing]], None] | None = None,
        traces: UsageTraces | None = None,
    ) -> None:
        self.counters = counters
        self.traces = traces  # traced calls' ids, filed beside the ledger
        self._on_crossings = on_crossings
        self._uow = uow
        self._clock = clock
        self._fail_open = fail_open
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, tuple[Subscription, Plan, Decimal | None] | None]] = {}
        self._spent: dict[tuple[str, int], int] = {}  # (window key, limit) -> count seen
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> Admission:
        """Find the caller's plan. A consumer without an active subscription is refused."""
        admission = Admission(principal, time.perf_counter())
        if principal.kind != "consumer":
            return admission
        found = self._subscription(principal.name)
        if found is None:
            raise PermissionDenied(
                f"consumer {principal.name!r} has no active subscription; ask for a plan",
                code="no_subscription",
            )
        admission.subscription, admission.plan, admission.spend_cap = found
        return admission

    def standing(self, consumer: str, plan: Plan) -> list[LimitState]:
        """How much of each of the plan's limits the consumer has used in the current windows,
        read from the same counters that decide (Redis or this process)."""
        charged = charges(f"consumer:{consumer}", plan.limits(), 0, self._clock())
        used = self.counters.peek([c.key for c in charged])
        return [LimitState(c.limit, u, c.reset_in) for c, u in zip(charged, used, strict=True)]

    def admit(
        self,
        admission: Admission,
        asked: Target,
        rows: int,
        version: ModelVersion | None = None,
        *,
        explain: bool = False,
    ) -> None:
        """Before scoring: the plan allows this model, this many rows and explanations if
        asked for, and no hard limit is already reached."""
        admission.rows = rows
        admission.explained = rows if explain else 0
        plan = admission.plan
        if plan is None:
            return
        if plan.models and not any(covers(t, asked, "predict") for t in plan.models):
            raise PermissionDenied(
                f"the plan {plan.name!r} does not include {asked}", code="plan_excludes_model"
            )
        if explain and not plan.explain:
            raise PermissionDenied(
                f"the plan {plan.name!r} does not include explanations; ask without "
                '"explain", or for a plan that includes them',
                code="plan_excludes_explanations",
            )
        if plan.max_rows_per_request is not None and rows > plan.max_rows_per_request:
            raise PayloadTooLarge(
                f"{rows} rows in one request; the plan {plan.name!r} allows at most "
                f"{plan.max_rows_per_request}: split the rows into several requests",
                max_rows=plan.max_rows_per_request,
            )
        admission.charged = charges(admission.account, plan.limits(), rows, self._clock())
        if admission.spend_cap is not None and plan.priced:  # last: it prices the overage
            cap = int(admission.spend_cap * NANOS)
            admission.charged.append(spend_charge(
                admission.account, cap, plan.rates(), rows, admission.explained, self._clock()
            ))  # fmt: skip
        # No round trip to the counters here: a window known to be spent (from an earlier
        # refusal in this process; counts only grow within a window) is refused at once, the
        # rest is decided atomically by `settle`. One round trip per call in all.
        known = [self._spent.get((c.key, c.limit.limit), 0) for c in admission.charged]
        allowed, blocked, _ = decide(admission.charged, known, rows)
        if not allowed and blocked is not None:
            # Only the spent window is known here; the others' counts were not read, so they
            # are left out of the headers rather than shown as untouched.
            refusal = self._refusal(blocked, admission.charged, [blocked])
            self.meter(admission, asked.model, version.number if version else 0, Refused(refusal))
            raise refusal

    def subscription_of(self, consumer: str) -> tuple[Subscription, Plan, Decimal | None] | None:
        """The consumer's subscription, plan and spend cap (cached a second, as for calls)."""
        return self._subscription(consumer)

    def reserve_rows(
        self, consumer: str, rows: int, model: str, version: int
    ) -> tuple[int, TooManyRequests | PaymentRequired | None]:
        """For a batch job's chunk: count `rows` against the consumer's row quotas (per day and
        month) and spend cap, atomically; the chunk's overage rows, or why it may not run. The
        caller meters the chunk in the ledger itself (exactly once)."""
        found = self._subscription(consumer)
        if found is None:
            return 0, None
        _, plan, cap = found
        account, now = f"consumer:{consumer}", self._clock()
        limits = [
            lim for lim in plan.limits() if lim.unit == "rows" and lim.window in ("day", "month")
        ]
        charged = charges(account, limits, rows, now)
        if cap is not None and plan.priced:
            charged.append(spend_charge(account, int(cap * NANOS), plan.rates(), rows, 0, now))
        if not charged:
            return 0, None
        ok, blocked, overage, _ = self.counters.reserve(charged, rows)
        if not ok and blocked is not None:
            return 0, self._refusal(blocked, charged, [blocked])
        return overage, None

    def settle(self, admission: Admission, version: ModelVersion) -> dict[str, str]:
        """After scoring: count and meter the call atomically; the response headers. Raises
        TooManyRequests if other calls took the last of a limit meanwhile."""
        event = self._event(admission, version.model_name, version.number, ANSWERED)
        if not admission.charged:
            self._meter(event)
            return _sunset(admission, version)
        try:
            outcome = self.counters.commit(admission.charged, admission.rows, event)
        except NotReady as exc:
            return self._unreachable(admission, version, exc)
        return self._settled(admission, version, outcome)

    async def settle_async(self, admission: Admission, version: ModelVersion) -> dict[str, str]:
        """`settle`, from an event loop: where the counters take a round trip (Redis), the
        loop serves other calls meanwhile."""
        commit = getattr(self.counters, "commit_async", None)
        if commit is None or not admission.charged:
            return self.settle(admission, version)
        event = self._event(admission, version.model_name, version.number, ANSWERED)
        try:
            outcome = await commit(admission.charged, admission.rows, event)
        except NotReady as exc:
            return self._unreachable(admission, version, exc)
        return self._settled(admission, version, outcome)

    def _unreachable(
        self, admission: Admission, version: ModelVersion, exc: NotReady
    ) -> dict[str, str]:
        if self._fail_open:
            log.warning("limits backend unreachable; serving without counting (fail open)")
            return _sunset(admission, version)
        raise exc

    def _settled(
        self,
        admission: Admission,
        version: ModelVersion,
        outcome: tuple[bool, LimitState | None, int, list[int]],
    ) -> dict[str, str]:
        ok, blocked, overage, after = outcome
        if not ok and blocked is not None:
            with self._lock:
                if len(self._spent) > 10_000:  # windows end; forget the old ones wholesale
                    self._spent.clear()
                self._spent[(self._key_of(admission, blocked), blocked.limit.limit)] = blocked.used
            refusal = self._refusal(blocked, admission.charged, [blocked])
            self._meter(
                self._event(admission, version.model_name, version.number, Refused(refusal))
            )
            raise refusal
        plan = admission.plan
        if self._on_crossings is not None and plan is not None and plan.thresholds:
            found = crossings(
                admission.principal.name, admission.charged, after, plan.thresholds,
                overage, self._clock(),
            )  # fmt: skip
            if found:
                self._on_crossings(found)
        states = [
            LimitState(c.limit, n, c.reset_in)
            for c, n in zip(admission.charged, after, strict=True)
        ]
        return _sunset(admission, version) | rate_headers(admission.charged, states)

    @staticmethod
    def _key_of(admission: Admission, state: LimitState) -> str:
        return next(c.key for c in admission.charged if c.limit == state.limit)

    def meter(self, admission: Admission, model: str, version: int, outcome: Outcome) -> None:
        """Meter a call that was not counted: refused or failed."""
        self._meter(self._event(admission, model, version, outcome))

    def _meter(self, event: UsageEvent) -> None:
        try:
            self.counters.meter(event)
        except NotReady:
            log.warning("limits backend unreachable; a %d call was not metered", event.status)

    def _event(
        self, admission: Admission, model: str, version: int, outcome: Outcome
    ) -> UsageEvent:
        """The ledger's line for the call: its status is the one the call is answered with
        (outcomes.status_of), and only an answered call's explained rows are metered."""
        status = status_of(outcome)
        event = UsageEvent(
            at=self._clock(),
            consumer=admission.account,
            key_prefix=admission.principal.key_prefix or "",
            model=model,
            version=version,
            status=status,
            rows=admission.rows,
            latency_ms=(time.perf_counter() - admission.started) * 1000,
            explained_rows=admission.explained if isinstance(outcome, Answered) else 0,
        )
        if self.traces is not None:
            call = current()
            if call is not None and call.sampled:
                self.traces.offer(event, call.trace_hex)
        return event

    def _refusal(
        self, blocked: LimitState, charged: list[Charge], states: list[LimitState]
    ) -> TooManyRequests | PaymentRequired:
        retry = max(1, blocked.reset_in)
        resets = datetime.fromtimestamp(self._clock().timestamp() + retry, UTC)
        if blocked.limit.unit == "spend":
            cap = Decimal(blocked.limit.limit) / NANOS
            spent = Decimal(blocked.used) / NANOS
            return PaymentRequired(
                f"the monthly spend cap of {cap:.2f} is reached ({spent:.6f} spent this month; "
                f"this call would pass it); raise the cap, or wait for the month to end at "
                f"{resets:%Y-%m-%dT%H:%M:%SZ}",
                cap=f"{cap:.2f}",
                spent=f"{spent:.6f}",
                resets_at=resets,
            )
        headers = rate_headers(charged, states) | {"Retry-After": str(retry)}
        return TooManyRequests(
            f"the plan's limit of {blocked.limit.limit} {blocked.limit.name} is reached; it "
            f"resets in {retry} s, at {resets:%Y-%m-%dT%H:%M:%SZ}",
            retry_after=retry,
            headers=headers,
            limit=blocked.limit.name,
            resets_at=resets,
        )

    def forget_subscriptions(self) -> None:
        """Look every subscription up again (this process just changed one)."""
        with self._lock:
            self._cache.clear()

    def _subscription(self, consumer: str) -> tuple[Subscription, Plan, Decimal | None] | None:
        """Looked up at most once a second per consumer and process: a plan change reaches every
        worker within that second."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(consumer)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        active = service.active_subscription(self._uow(), consumer, self._clock())
        found = None
        if active is not None:
            with self._uow() as uow:
                found = (*active, uow.plans.spend_cap(consumer))
        with self._lock:
            self._cache[consumer] = (now, found)
        return found


def rate_headers(charged: list[Charge], states: list[LimitState]) -> dict[str, str]:
    """RateLimit-Policy and RateLimit (IETF httpapi draft) for every limit, and the older
    X-RateLimit-* for the tightest one. A spend cap is not a rate: its refusal says so."""
    states = [s for s in states if s.limit.unit != "spend"]
    if not states:
        return {}
    by_limit = {c.limit: c.ttl - 60 for c in charged}
    policy = _policy(tuple((s.limit, by_limit[s.limit]) for s in states))
    current = ", ".join(f'"{_name(s)}";r={s.remaining};t={s.reset_in}' for s in states)
    tightest = min(states, key=lambda s: (s.remaining / s.limit.limit, s.reset_in))
    return {
        "RateLimit-Policy": policy,
        "RateLimit": current,
        "X-RateLimit-Limit": str(tightest.limit.limit),
        "X-RateLimit-Remaining": str(tightest.remaining),
        "X-RateLimit-Reset": str(tightest.reset_in),
    }


@functools.lru_cache(maxsize=256)
def _policy(limits: tuple[tuple[Limit, int], ...]) -> str:
    """RateLimit-Policy for these limits and window lengths: the same on every call of a plan."""
    return ", ".join(
        f'"{limit.unit}-per-{limit.window}";q={limit.limit};w={w}' for limit, w in limits
    )


def _name(state: LimitState) -> str:
    return f"{state.limit.unit}-per-{state.limit.window}"


def _sunset(admission: Admission, version: ModelVersion) -> dict[str, str]:
    """RFC 9745 Deprecation and RFC 8594 Sunset, for consumers pinned to a retiring version."""
    if version.retire_at is None or admission.pinned(version.model_name) != version.number:
        return {}
    return {
        "Deprecation": f"@{int(version.retire_at.timestamp())}",
        "Sunset": format_datetime(version.retire_at.astimezone(UTC), usegmt=True),
    }
