"""What the outbound client checks and answers: plain records."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Destination:
    """A URL whose host was resolved and whose every address passed the rule: the call goes to
    `addresses[0]`, named `host` in the Host header and in TLS (SNI, certificate check)."""

    url: str
    scheme: str
    host: str  # as resolved: IDNA-encoded, an IPv6 literal without brackets
    port: int
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: its status and at most the client's `max_answer_bytes` of body."""

    status: int
    body: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")
