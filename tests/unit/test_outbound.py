"""The rule of outbound calls (mlgate/outbound): which addresses are inside, the operator's
allow-list, and `Outbound.check` over a resolver that answers what each test says (no DNS)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from mlgate.errors import AddressRefused, ConfigError, InvalidInput
from mlgate.outbound.addresses import AllowList, refusal
from mlgate.outbound.client import Outbound, Resolver
from mlgate.settings import Settings

INSIDE = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.0.0.5": "private",
    "172.16.3.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # the cloud metadata service
    "0.0.0.0": "unspecified",
    "224.0.0.251": "multicast",
    "100.64.0.1": "not globally routable",  # carrier-grade NAT
    "192.0.0.8": "",  # IETF protocol assignments (the dummy address): private on newer Pythons
    "192.0.2.1": "private",  # documentation
    "240.0.0.1": "private",  # reserved for future use
    "255.255.255.255": "private",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fd00:ec2::254": "private",  # unique local (AWS's IPv6 metadata address)
    "ff02::1": "multicast",
    "ff0e::1": "multicast",  # global scope, still not a receiver
    "2001:db8::1": "private",  # documentation
    # IPv6 carrying an inside IPv4 address
    "::ffff:127.0.0.1": "loopback",  # mapped
    "::ffff:169.254.169.254": "link-local",
    "::127.0.0.1": "loopback",  # compatible
    "64:ff9b::a00:5": "private",  # NAT64 of 10.0.0.5
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1": "link-local",  # 6to4 of 169.254.169.254
}


@pytest.mark.parametrize(("address", "rule"), sorted(INSIDE.items()))
def test_every_inside_address_is_refused_with_its_rule(address: str, rule: str) -> None:
    found = refusal(ip_address(address))
    assert found is not None and found.startswith(rule), found


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "192.0.0.9"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


def resolver(answers: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://10.0.0.5:8080/admin", "private"),
        ("http://[::1]:8000/", "loopback"),
        ("http://[::ffff:7f00:1]:8000/", "loopback"),
        ("http://localhost:8000/hook", "loopback"),
        ("http://both.example/hook", "private"),  # one public and one private answer
    ],
)
def test_a_url_is_refused_when_any_address_is_inside(url: str, rule: str) -> None:
    outbound = Outbound(
        resolver=resolver(
            {
                "localhost": ["127.0.0.1", "::1"],
                "both.example": ["93.184.215.14", "10.1.2.3"],
                "169.254.169.254": ["169.254.169.254"],
                "127.0.0.1": ["127.0.0.1"],
                "10.0.0.5": ["10.0.0.5"],
                "::1": ["::1"],
                "::ffff:7f00:1": ["::ffff:127.0.0.1"],
            }
        )
    )
    with pytest.raises(AddressRefused, match=rule) as refused:
        outbound.check(url)
    assert isinstance(refused.value, InvalidInput)  # 422
    assert "MLGATE_OUTBOUND_ALLOW" in str(refused.value)


def test_names_that_do_not_resolve_and_other_schemes_are_refused() -> None:
    outbound = Outbound(resolver=resolver({}))
    with pytest.raises(AddressRefused, match="does not resolve"):
        outbound.check("https://nowhere.example/hook")
    for url in ("ftp://example.com/x", "file:///etc/passwd", "not a url", "http:///x"):
        with pytest.raises(AddressRefused, match=r"http\(s\) URL"):
            outbound.check(url)


def test_the_allow_list_lets_the_operators_own_receivers_through() -> None:
    answers = {"hooks.internal": ["10.0.8.7"], "other.internal": ["10.0.9.1"],
               "10.0.8.9": ["10.0.8.9"], "127.0.0.1": ["127.0.0.1"]}  # fmt: skip
    allow = AllowList.parse(" hooks.internal , 10.0.8.0/24,127.0.0.1 ")
    outbound = Outbound(allow, resolver=resolver(answers))
    assert outbound.check("https://hooks.internal/x").addresses == (ip_address("10.0.8.7"),)
    assert outbound.check("http://10.0.8.9:9000/").port == 9000
    assert outbound.check("http://127.0.0.1:8000/").host == "127.0.0.1"
    with pytest.raises(AddressRefused, match="10.0.9.1, a private"):
        outbound.check("https://other.internal/x")


def test_an_allow_list_entry_with_a_port_lets_that_receiver_through_and_nothing_beside_it() -> None:
    answers = {"127.0.0.1": ["127.0.0.1"], "hooks.internal": ["10.0.8.7"], "::1": ["::1"]}
    allow = AllowList.parse("127.0.0.1:9000, hooks.internal:8443, [::1]:9001")
    outbound = Outbound(allow, resolver=resolver(answers))
    assert outbound.check("http://127.0.0.1:9000/hook").port == 9000
    assert outbound.check("https://hooks.internal:8443/x").port == 8443
    assert outbound.check("http://[::1]:9001/").port == 9001
    for url in ("http://127.0.0.1:6379/", "http://127.0.0.1/", "https://hooks.internal/x",
                "http://[::1]:9000/"):  # fmt: skip
        with pytest.raises(AddressRefused, match="MLGATE_OUTBOUND_ALLOW"):
            outbound.check(url)
    with pytest.raises(ConfigError, match="port"):
        AllowList.parse("127.0.0.1:99999")


@pytest.mark.parametrize("text", ["10.0.0.0/33", "hooks internal", "http://x.example", "::g"])
def test_a_malformed_allow_list_is_a_config_error_naming_the_entry(text: str) -> None:
    with pytest.raises(ConfigError, match="MLGATE_OUTBOUND_ALLOW"):
        AllowList.parse(text)


def test_the_allow_list_is_a_setting() -> None:
    settings = Settings.from_env({"MLGATE_HOME": "/tmp/x", "MLGATE_OUTBOUND_ALLOW": "10.0.8.0/24"})
    assert settings.outbound_allow == "10.0.8.0/24"
    assert not AllowList.parse(Settings.from_env({"MLGATE_HOME": "/tmp/x"}).outbound_allow)


def test_a_refusal_reads_as_a_sentence() -> None:
    """The address class with its article, a carried address after it, and a URL that cannot
    be parsed said so rather than 'is an http(s) URL, not ...' of an http URL."""
    answers = {"0.0.0.0": ["0.0.0.0"], "::ffff:7f00:1": ["::ffff:7f00:1"]}
    outbound = Outbound(resolver=resolver(answers))
    with pytest.raises(AddressRefused) as refused:
        outbound.check("http://0.0.0.0/")
    assert "resolves to 0.0.0.0, an unspecified address;" in str(refused.value)
    with pytest.raises(AddressRefused) as refused:
        outbound.check("http://[::ffff:7f00:1]/")
    assert "a loopback address (carried in ::ffff:7f00:1);" in str(refused.value)
    with pytest.raises(AddressRefused) as refused:
        outbound.check("http://0177.0.0.1/")
    assert "cannot be read as one" in str(refused.value) and "0177.0.0.1" in str(refused.value)
