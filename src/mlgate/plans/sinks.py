"""Where usage events go (plans/exporter.py): a CloudEvents endpoint, or Stripe's meter events.

Both raise `Delivery`: permanent for a 4xx other than 408 and 429 (sending it again would be
refused again), passing for the rest (the network, 408, 429, 5xx, a redirect, an address
refused at the send). They send through the outbound client (mlgate/outbound): the URL's host is
checked when the sink is made and again at every send.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from mlgate.errors import AddressRefused, DeliveryFailed
from mlgate.outbound.client import Outbound
from mlgate.outbound.model import Answer
from mlgate.plans.exporter import Delivery, MeterEvent

STRIPE_URL = "https://api.stripe.com/v1/billing/meter_events"
# Stripe refuses meter events whose timestamp is more than 35 days old; two days' margin for a
# pass that starts near the edge, or a clock that is off.
STRIPE_MAX_AGE = timedelta(days=33)


def check_url(url: str, *, outbound: Outbound | None = None) -> str:
    """An http(s) URL whose host resolves to addresses `outbound` may call (AddressRefused)."""
    (outbound or Outbound()).check(url, what="a usage sink")
    return url


class CloudEventsSink:
    """POSTs each batch as `application/cloudevents-batch+json` (a JSON array of events); the
    receiver takes or refuses a batch whole (the exporter splits a refused one)."""

    batch_size = 100
    max_age: timedelta | None = None  # a CloudEvents receiver takes events of any age

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        source: str = "mlgate",
        name: str = "",
        outbound: Outbound | None = None,
    ) -> None:
        self._outbound = outbound or Outbound()
        self.url = check_url(url, outbound=self._outbound)
        self.name = name or f"cloudevents:{url}"[:64]
        self.source = source
        headers = {"Content-Type": "application/cloudevents-batch+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers

    def send(self, events: list[MeterEvent]) -> None:
        body = orjson.dumps([e.cloudevent(self.source) for e in events])
        _deliver(lambda: self._outbound.post(self.url, content=body, headers=self._headers,
                                             what="a usage sink"), self.url)  # fmt: skip

    def close(self) -> None:
        pass  # the outbound client is the server's, closed with it


class StripeSink:
    """Stripe's billing meter events: one form-encoded POST per event, `event_name` the
    meter's (mlgate_rows, ...), the consumer's billing id (`customers`: name -> `cus_…`, set
    with `mlgate consumers update NAME --billing-id`) as `stripe_customer_id`, the event id as
    both the `identifier` and the Idempotency-Key. A consumer without a billing id is never
    sent (its name would be refused, or bill someone else): its events are dead letters saying
    so, sent by a replay once the id is set. Events older than 35 days are refused by Stripe,
    so a first pass reaches back STRIPE_MAX_AGE at most."""

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
        outbound: Outbound | None = None,
    ) -> None:
        self._outbound = outbound or Outbound()
        self.url = check_url(url, outbound=self._outbound)
        self.name = name
        self.customers = customers or {}
        self.prefix = prefix
        self._token = token

    def form(self, event: MeterEvent) -> dict[str, Any]:
        customer = self.customers.get(event.consumer)
        if customer is None:
            raise Delivery(
                f"consumer {event.consumer} has no billing id, so nothing was sent: "
                f"`mlgate consumers update {event.consumer} --billing-id cus_…`, then "
                "`mlgate usage export --replay`",
                permanent=True,
            )
        return {
            "event_name": f"{self.prefix}{event.meter}",
            "identifier": event.id,
            "timestamp": str(int(event.hour.timestamp())),  # the hour's start: inside the hour
            "payload[stripe_customer_id]": customer,
            "payload[value]": str(event.value),
        }

    def send(self, events: list[MeterEvent]) -> None:
        for event in events:
            form = self.form(event)
            _deliver(
                lambda form=form, key=event.id: self._outbound.post(
                    self.url,
                    data=form,
                    what="a usage sink",
                    headers={"Authorization": f"Bearer {self._token}", "Idempotency-Key": key},
                ),
                self.url,
            )

    def close(self) -> None:
        pass  # the outbound client is the server's, closed with it


def _deliver(post: Any, url: str) -> None:
    try:
        answer: Answer = post()
    except (AddressRefused, DeliveryFailed) as exc:
        raise Delivery(f"{url}: {exc}", permanent=False) from None
    if answer.status < 300:
        return
    permanent = 400 <= answer.status < 500 and answer.status not in (408, 429)
    raise Delivery(f"{url} answered {answer.status}: {answer.text[:300]}", permanent=permanent)
