"""The one HTTP client for calls mlgate makes on its own (webhooks, usage sinks).

A URL given by a consumer or an operator could aim the server at itself, at Redis on
127.0.0.1, at the cloud metadata service or at the private network behind it (server-side
request forgery, OWASP API7:2023). So every call:

* resolves the host once and refuses it when any address is inside (`addresses.refusal`),
  unless the operator allowed it (`MLGATE_OUTBOUND_ALLOW`);
* connects to the very address it checked: the URL is rewritten to that IP and the name goes
  in the Host header and in TLS's SNI (httpcore's `sni_hostname` extension), so the
  certificate is still checked against the name, and no second DNS answer can slip in between
  the check and the connection;
* follows no redirect (a 3xx is the answer), ignores proxy variables, gives up after
  `timeout` seconds in all and reads at most `max_answer_bytes` of the answer.

`check` is the same rule without the call: use cases run it when a URL is registered, so the
person who gives a bad one hears it then (422, `AddressRefused`), not at the first delivery.

    outbound = Outbound(AllowList.parse("hooks.internal, 10.0.8.0/24"))
    outbound.check("https://billing.example.com/events")        # a Destination, or raises
    answer = outbound.post("https://billing.example.com/events", content=b"[]")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mlgate.errors import AddressRefused, DeliveryFailed
from mlgate.outbound.addresses import AllowList, parse_address, refusal
from mlgate.outbound.model import Answer, Destination, IPAddress

Resolver = Callable[[str, int], list[str]]
TIMEOUT = 5.0
MAX_ANSWER_BYTES = 64 * 1024
MAX_POOLS = 32


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (literal addresses as themselves)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class Outbound:
    """Checks and sends outbound HTTP calls; thread-safe, one per process (`Services`)."""

    def __init__(
        self,
        allow: AllowList | None = None,
        *,
        timeout: float = TIMEOUT,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        resolver: Resolver = resolve,
    ) -> None:
        self.allow = allow or AllowList()
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._resolve = resolver
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def check(self, url: str, *, what: str = "a webhook") -> Destination:
        """The URL's destination once its host resolved to addresses we may call; raises
        `AddressRefused` (what was wrong and what to do) otherwise."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as error:
            raise AddressRefused(
                f"{what} is an http(s) URL; {url[:80]!r} cannot be read as one ({error})"
            ) from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise AddressRefused(f"{what} is an http(s) URL, not {url[:80]!r}")
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = [parse_address(a) for a in self._resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            found = []
        if not found:
            raise AddressRefused(
                f"{what}'s host {parsed.host!r} does not resolve; give a name that resolves "
                "to your receiver's public address"
            )
        for address in found:
            why = refusal(address)
            if why is not None and not self.allow.allows(host, address, port):
                rule, _, carried = why.partition(" (")
                article = "an" if rule[0] in "aeiou" else "a"
                kind = f"{article} {rule} address" + (f" ({carried}" if carried else "")
                raise AddressRefused(
                    f"{what}'s host {parsed.host!r} resolves to {address}, {kind}; "
                    "mlgate calls only public addresses. Give your receiver's public URL "
                    "(an operator can allow a receiver of their own with MLGATE_OUTBOUND_ALLOW)"
                )
        return Destination(url, parsed.scheme, host, port, tuple(found))

    def post(
        self,
        url: str,
        *,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "a webhook",
    ) -> Answer:
        """POST to `url` after `check`, to the address checked. Raises `AddressRefused`, or
        `DeliveryFailed` when the call does not get through (network, timeout)."""
        destination = self.check(url, what=what)
        pinned, extensions, host_header = _pin(destination, destination.addresses[0])
        sent = {**(headers or {}), "Host": host_header}
        deadline = time.monotonic() + self.timeout
        try:
            with self._client_for(destination.host).stream(
                "POST", pinned, content=content, data=data, headers=sent, extensions=extensions
            ) as answer:
                body, truncated = bytearray(), False
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > self.max_answer_bytes:
                        body, truncated = body[: self.max_answer_bytes], True
                        break
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer took too long")
                return Answer(answer.status_code, bytes(body), truncated)
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: a pool closed meanwhile
            raise DeliveryFailed(f"{_shown(url)}: {type(exc).__name__}: {exc}"[:300]) from None

    def _client_for(self, host: str) -> httpx.Client:
        """A connection pool per host name: pools are keyed by the pinned address, and two names
        served from one address must not share a TLS connection made for the other's name."""
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                if len(self._clients) >= MAX_POOLS:
                    for old in self._clients.values():
                        old.close()
                    self._clients.clear()
                client = self._clients[host] = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0)),
                    follow_redirects=False,
                    trust_env=False,  # a proxy variable would reroute the call past the check
                )
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def _pin(destination: Destination, address: IPAddress) -> tuple[httpx.URL, dict[str, Any], str]:
    """The URL with the checked address for its host, the TLS name, and the Host header."""
    original = httpx.URL(destination.url)
    pinned = original.copy_with(host=str(address))
    default = 443 if destination.scheme == "https" else 80
    shown = f"[{destination.host}]" if ":" in destination.host else destination.host
    host_header = shown if destination.port == default else f"{shown}:{destination.port}"
    return pinned, {"sni_hostname": destination.host}, host_header


def _shown(url: str) -> str:
    """A URL without its query or credentials, for messages and logs."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url[:80]
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))[:120]
