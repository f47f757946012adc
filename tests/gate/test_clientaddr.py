from __future__ import annotations

from gateway.gate.clientaddr import ClientAddress

resolver = ClientAddress(["127.0.0.1/32", "10.0.0.0/8"])


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert resolver.resolve("203.0.113.9", "1.1.1.1") == "203.0.113.9"


def test_trusted_proxy_chain_is_walked_from_the_right() -> None:
    assert resolver.resolve("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.1.1.1") == "203.0.113.9"


def test_spoofed_left_entries_are_ignored() -> None:
    assert resolver.resolve("127.0.0.1", "6.6.6.6, 198.51.100.7") == "198.51.100.7"


def test_garbage_header() -> None:
    assert resolver.resolve("127.0.0.1", "not-an-ip") == "127.0.0.1"
    assert resolver.resolve("127.0.0.1", "6.6.6.6, junk") == "127.0.0.1"
    assert resolver.resolve("127.0.0.1", "") == "127.0.0.1"
