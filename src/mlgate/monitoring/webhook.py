"""Alert webhooks with a signed body.

Headers: `X-Mlgate-Timestamp` (Unix seconds) and `X-Mlgate-Signature: sha256=<hex>`, the
HMAC-SHA256 under the model's webhook secret of `<timestamp>.<body>`. A receiver recomputes it
over the raw body, compares in constant time, and refuses timestamps older than a few minutes
(a replayed delivery).

Deliveries go through the outbound client (mlgate/outbound): public addresses, or those the
operator allowed, checked again at each send; no redirects; a short timeout."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson

from mlgate.errors import AddressRefused, DeliveryFailed
from mlgate.outbound.client import Outbound


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, given: str, *, max_age: float = 300) -> bool:
    """What a receiver does (also used by the tests)."""
    fresh = abs(time.time() - float(timestamp)) <= max_age
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


def deliver(
    url: str, secret: str, payload: dict[str, Any], *, outbound: Outbound | None = None
) -> dict[str, Any]:
    """POST the payload; the outcome (status or error) is kept with the check. Without an
    `outbound` client, one that allows public addresses only."""
    body = orjson.dumps(payload)
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "user-agent": "mlgate-monitor",
        "x-mlgate-timestamp": timestamp,
        "x-mlgate-signature": signature(secret, timestamp, body),
    }
    client = outbound or Outbound()
    try:
        answer = client.post(url, content=body, headers=headers)
    except (AddressRefused, DeliveryFailed) as exc:
        return {"url": url, "error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        if outbound is None:
            client.close()
    return {"url": url, "status": answer.status}
