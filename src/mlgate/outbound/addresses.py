"""Which addresses an outbound call may reach: public ones, and what the operator allows.

An address is inside when it is loopback, private, link-local (169.254.0.0/16 holds the cloud
metadata service; fe80::/10), multicast, unspecified, reserved or otherwise not globally
routable (`ipaddress`'s `is_global`: shared 100.64.0.0/10, documentation ranges...). An IPv6
address that carries an IPv4 one (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
64:ff9b::/96, 6to4 2002::/16, Teredo) is judged by that IPv4 address too: a NAT64 gateway or a
dual-stack socket would deliver it there.

`MLGATE_OUTBOUND_ALLOW` lists host names and addresses or networks (CIDR), comma-separated, that
the operator runs themselves: `hooks.internal, 10.0.8.0/24, 127.0.0.1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from mlgate.errors import ConfigError
from mlgate.outbound.model import IPAddress

NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))
COMPATIBLE = IPv6Network("::/96")  # deprecated IPv4-compatible form, ::a.b.c.d
# IETF protocol assignments (RFC 6890): not globally reachable but for two anycast addresses.
# Python before 3.11.10/3.12.4 calls only 192.0.0.0/29 and 192.0.0.170/31 of it private.
PROTOCOL_ASSIGNMENTS = IPv4Network("192.0.0.0/24")
GLOBAL_ASSIGNMENTS = (IPv4Address("192.0.0.9"), IPv4Address("192.0.0.10"))


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server's is public by design
    if any(address in net for net in NAT64) or (address in COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is inside (the rule's name), or None for a public address."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and (why := refusal(inner)) is not None:
            return f"{why} (carried in {address})"
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
        (
            "not globally routable",
            isinstance(address, IPv4Address)
            and address in PROTOCOL_ASSIGNMENTS
            and address not in GLOBAL_ASSIGNMENTS,
        ),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class AllowList:
    """The operator's receivers: host names (exact, case-insensitive) and networks, each for
    every port or, written `entry:PORT` (`[v6]:PORT`), for that port alone. A port keeps the
    rest of an allowed machine (its Redis, its admin pages) out of reach of the webhooks that
    consumers register."""

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    networks: tuple[tuple[IPv4Network | IPv6Network, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """`MLGATE_OUTBOUND_ALLOW`'s value; a malformed entry is a ConfigError naming it."""
        hosts: set[tuple[str, int | None]] = set()
        networks: list[tuple[IPv4Network | IPv6Network, int | None]] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            entry, port = _port_of(entry, raw.strip())
            if entry[0].isdigit() or ":" in entry:
                try:
                    networks.append((ip_network(entry.strip("[]"), strict=False), port))
                except ValueError:
                    raise ConfigError(
                        f"MLGATE_OUTBOUND_ALLOW: {raw.strip()!r} is neither an address nor a "
                        "network such as 10.0.8.0/24 (a port may follow: 10.0.8.5:9000); give "
                        "host names, addresses or networks"
                    ) from None
            elif all(part.isalnum() or part.replace("-", "").isalnum() for part in
                     entry.rstrip(".").split(".")):  # fmt: skip
                hosts.add((entry.rstrip("."), port))
            else:
                raise ConfigError(
                    f"MLGATE_OUTBOUND_ALLOW: {raw.strip()!r} is not a host name, address or "
                    "network; separate entries with commas"
                )
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress, port: int | None = None) -> bool:
        """Whether the receiver at `host` (resolved to `address`) on `port` is allowed."""
        name = host.lower().rstrip(".")
        if any(h == name and p in (None, port) for h, p in self.hosts):
            return True
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(
            address.version == net.version and address in net and p in (None, port)
            for net, p in self.networks
        )

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)


def _port_of(entry: str, raw: str) -> tuple[str, int | None]:
    """`entry` less a trailing `:PORT` (`host:9000`, `10.0.0.5:9000`, `[fd00::1]:9000`), and
    the port; a bare IPv6 address or network keeps its colons."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        if not rest:
            return inside, None
        text = rest.removeprefix(":")
    elif entry.count(":") == 1:
        entry, _, text = entry.partition(":")
        inside = entry
    else:
        return entry, None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(
            f"MLGATE_OUTBOUND_ALLOW: {raw!r} has a port that is not a number from 1 to 65535"
        )
    return inside, int(text)


def parse_address(text: str) -> IPAddress:
    """An address as `getaddrinfo` gives it (an IPv6 one may carry a `%scope`)."""
    return ip_address(text.split("%", 1)[0])
