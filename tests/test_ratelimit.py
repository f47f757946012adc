from __future__ import annotations

import pytest

from gateway import ratelimit
from gateway.errors import RateLimited
from gateway.ratelimit import RateLimiter, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_then_retry_after_then_recovery() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60, clock)
    for _ in range(3):
        limiter.hit("1.2.3.4")
    with pytest.raises(RateLimited) as info:
        limiter.hit("1.2.3.4")
    assert 1 <= info.value.retry_after <= 60
    limiter.hit("5.6.7.8")  # other clients are not affected
    clock.now += 120
    limiter.hit("1.2.3.4")


def test_check_does_not_count() -> None:
    limiter = RateLimiter(1, 60, Clock())
    for _ in range(5):
        limiter.check("a")
    limiter.hit("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:3:4:5:6%eth0", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("unknown", "unknown"),
])
def test_client_key_is_the_ipv4_address_or_the_ipv6_slash_64(address: str, key: str) -> None:
    assert client_key(address) == key


def test_an_ipv6_host_cannot_escape_the_limit_by_changing_address_within_its_64() -> None:
    limiter = RateLimiter(3, 60, Clock())
    for interface_id in range(3):
        limiter.hit(f"2001:db8:aaaa:bbbb::{interface_id + 1:x}")
    with pytest.raises(RateLimited):
        limiter.hit("2001:db8:aaaa:bbbb:dead:beef:1:2")
    with pytest.raises(RateLimited):
        limiter.check("2001:db8:aaaa:bbbb::ffff")
    limiter.hit("2001:db8:aaaa:bbbc::1")  # the next /64 is another client


def test_ipv4_clients_are_limited_per_address() -> None:
    limiter = RateLimiter(1, 60, Clock())
    limiter.hit("192.0.2.1")
    limiter.hit("192.0.2.2")
    with pytest.raises(RateLimited):
        limiter.hit("192.0.2.1")


def test_the_table_is_bounded_and_drops_the_least_recently_counted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 3)
    limiter = RateLimiter(2, 60, Clock())
    for key in ("a", "a", "b", "c"):
        limiter.hit(key)
    with pytest.raises(RateLimited):
        limiter.hit("a")  # at its limit, still in the table
    limiter.hit("d")  # the table is full: "a", counted longest ago, goes
    assert len(limiter._counts) == 3
    limiter.hit("a")  # forgotten: counts from zero again (the price of a bounded table)
    limiter.hit("c")  # counted again: now the most recent
    limiter.hit("e")  # "d" goes, not "c"
    with pytest.raises(RateLimited):
        limiter.hit("c")
    assert len(limiter._counts) == 3
