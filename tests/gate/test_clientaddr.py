from __future__ import annotations

from gateway.gate.clientaddr import TRUST_CACHE_SIZE, ClientAddress

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


def test_a_peer_without_address_over_tcp_is_not_a_trusted_proxy() -> None:
    """Only a server on a Unix socket (setting ``uds``) has peers without an address that it may trust."""
    scope = {"type": "http", "client": None, "headers": []}
    assert not resolver.trusts_peer(scope)
    assert resolver.resolve(None, "198.51.100.7") == "unknown"


def test_a_unix_socket_peer_is_a_trusted_proxy_whose_forwarded_for_is_read() -> None:
    """Over ``uds`` the socket's permissions decide who connects (nginx): its X-Forwarded-For is believed,
    walked from the right as from any trusted proxy."""
    unix = ClientAddress(["127.0.0.1/32"], unix_socket=True)
    assert unix.trusts_peer({"type": "http", "client": None, "headers": []})
    assert unix.resolve(None, "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert unix.resolve(None, "6.6.6.6, 127.0.0.1") == "6.6.6.6"


def test_a_unix_socket_server_still_judges_tcp_peers_by_address() -> None:
    unix = ClientAddress(["127.0.0.1/32"], unix_socket=True)
    assert not unix.trusts_peer({"type": "http", "client": ("203.0.113.9", 4000), "headers": []})
    assert unix.resolve("203.0.113.9", "1.1.1.1") == "203.0.113.9"


def test_remembered_answers_stay_right_and_the_cache_stays_bounded() -> None:
    """Answers are remembered per address (the peer is asked about on every request); a flood of made-up
    X-Forwarded-For hops cannot grow the memory, nor make an untrusted address trusted."""
    cached = ClientAddress(["10.0.0.0/8"])
    for _ in range(3):
        assert cached.is_trusted("10.1.2.3") and not cached.is_trusted("203.0.113.9")
        assert not cached.is_trusted("not-an-ip") and not cached.is_trusted("")
    for n in range(3 * TRUST_CACHE_SIZE):
        assert cached.resolve("10.0.0.1", f"198.51.{n // 256 % 256}.{n % 256}, 10.0.{n // 256 % 256}.{n % 256}") \
            == f"198.51.{n // 256 % 256}.{n % 256}"
    assert cached._remembered.cache_info().currsize <= TRUST_CACHE_SIZE
    assert cached.is_trusted("10.1.2.3") and not cached.is_trusted("203.0.113.9")
