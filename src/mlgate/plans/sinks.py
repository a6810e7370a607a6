"""Where usage events go (plans/exporter.py): a CloudEvents endpoint, or Stripe's meter events.

Both raise `Delivery`: permanent for a 4xx other than 408 and 429 (sending it again would be
refused again), passing for the rest (the network, 408, 429, 5xx).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson

from mlgate.errors import InvalidInput
from mlgate.plans.exporter import Delivery, MeterEvent

TIMEOUT = 10.0
STRIPE_URL = "https://api.stripe.com/v1/billing/meter_events"
# Stripe refuses meter events whose timestamp is more than 35 days old; two days' margin for a
# pass that starts near the edge, or a clock that is off.
STRIPE_MAX_AGE = timedelta(days=33)


def check_url(url: str, *, own: set[str] | None = None) -> str:
    """An http(s) URL that is not this server's own address."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"a usage sink is an http(s) URL, not {url[:80]!r}")
    if own and f"{parsed.host}:{parsed.port or ''}" in own:
        raise InvalidInput(f"{url[:80]!r} is this server itself; give the billing endpoint")
    return url


class CloudEventsSink:
    """POSTs each batch as `application/cloudevents-batch+json` (a JSON array of events); the
    receiver takes or refuses a batch whole (the exporter splits a refused one)."""

    batch_size = 100
    max_age: timedelta | None = None  # a CloudEvents receiver takes events of any age

    def __init__(
        self, url: str, *, token: str | None = None, source: str = "mlgate", name: str = ""
    ) -> None:
        self.url = check_url(url)
        self.name = name or f"cloudevents:{url}"[:64]
        self.source = source
        headers = {"Content-Type": "application/cloudevents-batch+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(headers=headers, timeout=TIMEOUT)

    def send(self, events: list[MeterEvent]) -> None:
        body = orjson.dumps([e.cloudevent(self.source) for e in events])
        _deliver(lambda: self._client.post(self.url, content=body), self.url)

    def close(self) -> None:
        self._client.close()


class StripeSink:
    """Stripe's billing meter events: one form-encoded POST per event, `event_name` the
    meter's (mlgate_rows, ...), the consumer as `stripe_customer_id` (or its mapping), the event
    id as both the `identifier` and the Idempotency-Key. Events older than 35 days are refused
    by Stripe, so a first pass reaches back STRIPE_MAX_AGE at most."""

    batch_size = 1  # one event per request: a refusal names its event
    max_age: timedelta | None = STRIPE_MAX_AGE

    def __init__(
        self,
        token: str,
        *,
        url: str = STRIPE_URL,
        customers: dict[str, str] | None = None,
        prefix: str = "mlgate_",
        name: str = "stripe",
    ) -> None:
        self.url = check_url(url)
        self.name = name
        self.customers = customers or {}
        self.prefix = prefix
        self._client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)

    def form(self, event: MeterEvent) -> dict[str, Any]:
        return {
            "event_name": f"{self.prefix}{event.meter}",
            "identifier": event.id,
            "timestamp": str(int(event.hour.timestamp())),  # the hour's start: inside the hour
            "payload[stripe_customer_id]": self.customers.get(event.consumer, event.consumer),
            "payload[value]": str(event.value),
        }

    def send(self, events: list[MeterEvent]) -> None:
        for event in events:
            form = self.form(event)
            _deliver(
                lambda form=form, key=event.id: self._client.post(
                    self.url, data=form, headers={"Idempotency-Key": key}
                ),
                self.url,
            )

    def close(self) -> None:
        self._client.close()


def _deliver(post: Any, url: str) -> None:
    try:
        answer = post()
    except httpx.HTTPError as exc:
        raise Delivery(f"{url}: {type(exc).__name__}", permanent=False) from None
    if answer.status_code < 300:
        return
    permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
    raise Delivery(f"{url} answered {answer.status_code}: {answer.text[:300]}", permanent=permanent)
