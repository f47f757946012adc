"""Which addresses the fetcher may connect to: exhaustive cases plus property tests."""

from __future__ import annotations

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fetch.addresses import embedded_ipv4, is_forbidden_address, parse_host_address

FORBIDDEN = [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "255.255.255.255",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9",
    "198.18.0.1", "192.88.99.1",
    "::", "::1", "fe80::1", "fe80::1%eth0", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
    "::127.0.0.1", "::ffff:0:7f00:1", "100::1",
    "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "64:ff9b:1::808:808",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1", "3fff::1", "2001:2::1", "2001:10::1",
]

ALLOWED = [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "151.101.1.69", "100.63.255.255", "100.128.0.1", "172.32.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001:81c::200e", "2620:fe::fe",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_special_purpose_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


PRIVATE_NETWORKS: list[IPv4Network | IPv6Network] = [
    IPv4Network("127.0.0.0/8"), IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"), IPv4Network("169.254.0.0/16"), IPv4Network("100.64.0.0/10"),
    IPv4Network("0.0.0.0/8"), IPv4Network("224.0.0.0/4"), IPv4Network("240.0.0.0/4"),
    IPv6Network("::ffff:127.0.0.0/104"), IPv6Network("::ffff:10.0.0.0/104"), IPv6Network("::ffff:192.168.0.0/112"),
    IPv6Network("64:ff9b::7f00:0/104"), IPv6Network("2002:7f00::/24"), IPv6Network("2002:a00::/24"),
    IPv6Network("fc00::/7"), IPv6Network("fe80::/10"), IPv6Network("fec0::/10"), IPv6Network("ff00::/8"),
    IPv6Network("::/96"), IPv6Network("2001::/32"), IPv6Network("2001:db8::/32"),
]


def addresses_in(networks: list[IPv4Network | IPv6Network]) -> st.SearchStrategy[IPv4Address | IPv6Address]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
            lambda value: ipaddress.ip_address(value) if net.version == 4 else IPv6Address(value)
        )
    )


@given(addresses_in(PRIVATE_NETWORKS))
def test_every_address_of_a_private_range_is_forbidden(ip: IPv4Address | IPv6Address) -> None:
    assert is_forbidden_address(ip)


@given(addresses_in([IPv4Network("8.0.0.0/8"), IPv6Network("2a00::/12")]))
def test_every_address_of_a_public_range_is_allowed(ip: IPv4Address | IPv6Address) -> None:
    assert not is_forbidden_address(ip)


@given(st.integers(0, 2**32 - 1).map(IPv4Address))
def test_ipv6_forms_carrying_an_ipv4_address_are_judged_by_it(ip: IPv4Address) -> None:
    value = int(ip)
    mapped = IPv6Address((0xFFFF << 32) | value)
    nat64 = IPv6Address((0x0064FF9B << 96) | value)
    sixtofour = IPv6Address((0x2002 << 112) | (value << 80) | 1)
    for form in (mapped, nat64, sixtofour):
        assert embedded_ipv4(form) == ip
        assert is_forbidden_address(form) == is_forbidden_address(ip)


@given(st.integers(0, 2**32 - 1).map(IPv4Address))
def test_teredo_is_forbidden_whatever_it_carries(ip: IPv4Address) -> None:
    teredo = IPv6Address((0x20010000 << 96) | (int(ip) << 64) | 0xFFFF_FFFF)
    assert embedded_ipv4(teredo) is None
    assert is_forbidden_address(teredo)


LEGACY_LOOPBACK_SPELLINGS = ["2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "0x7F.0.0.01", "017700000001"]


@pytest.mark.parametrize("host", LEGACY_LOOPBACK_SPELLINGS)
def test_getaddrinfo_turns_legacy_ipv4_spellings_into_loopback(host: str) -> None:
    # AI_NUMERICHOST: no DNS query leaves the machine.
    infos = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    resolved = {ipaddress.ip_address(info[4][0]) for info in infos}
    assert resolved == {IPv4Address("127.0.0.1")}
    assert all(is_forbidden_address(ip) for ip in resolved)


@pytest.mark.parametrize("host", LEGACY_LOOPBACK_SPELLINGS)
def test_parse_host_address_reads_legacy_ipv4_spellings_like_getaddrinfo(host: str) -> None:
    assert parse_host_address(host) == IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[::1]", IPv6Address("::1")),
        ("::ffff:127.0.0.1", IPv6Address("::ffff:127.0.0.1")),
        ("fe80::1%eth0", IPv6Address("fe80::1%eth0")),
        ("10.0.0.1", IPv4Address("10.0.0.1")),
    ],
)
def test_parse_host_address_reads_literals(host: str, expected: IPv4Address | IPv6Address) -> None:
    assert parse_host_address(host) == expected


@pytest.mark.parametrize(
    "host", ["example.com", "localhost", "cafe.example", "deadbeef", "face.b00c", "1.2.3.4.example"]
)
def test_parse_host_address_leaves_names_to_the_resolver(host: str) -> None:
    assert parse_host_address(host) is None
