"""The rate limiter on real stores (SQLite, Redis): limits, Retry-After, IPv6 /64 keys, counting before deciding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.errors import RateLimited, StoreUnavailable
from gateway.state.ratelimit import RateLimiter, client_key, estimate, retry_after
from gateway.store import SQLiteStore, Store
from gateway.store.redis import RedisStore


class Clock:
    """Wall-clock time moved by hand: 20 s into a 60 s window starting at ``base``.

    A window still to come, not a date in 1970: Redis expires the counts at real times.
    """

    def __init__(self) -> None:
        self.base = (time.time() // 60 + 1) * 60
        self.now = self.base + 20

    def __call__(self) -> float:
        return self.now


OpenInstance = Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
def open_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenInstance]:
    """Opens the store as one more gateway instance would: the same SQLite file, or the same Redis."""
    opened: list[Store] = []

    def open_instance() -> Store:
        if request.param == "redis":
            opened.append(RedisStore(request.getfixturevalue("redis_url")))
        else:
            opened.append(SQLiteStore(tmp_path / "g.sqlite3"))
        return opened[-1]

    yield open_instance
    for store in opened:
        store.close()


@pytest.fixture
def store(open_instance: OpenInstance) -> Store:
    return open_instance()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "g.sqlite3")
    yield store
    store.close()


def limiter(store: Store, limit: int, clock: Clock | None = None, name: str = "test") -> RateLimiter:
    return RateLimiter(store, name, limit, 60, clock or Clock())


def test_limit_then_retry_after_then_recovery(store: Store) -> None:
    clock = Clock()
    limited = limiter(store, 3, clock)
    for _ in range(3):
        limited.hit("1.2.3.4")
    with pytest.raises(RateLimited) as info:
        limited.hit("1.2.3.4")
    # Four counted (the refused one too): the next window, once its share of these four is under 3.
    assert info.value.retry_after == 40 + 15 + 1  # at 40 + 15 the estimate is 3: still refused
    limited.hit("5.6.7.8")  # other clients are not affected
    clock.now += 120
    limited.hit("1.2.3.4")


def test_check_does_not_count(store: Store) -> None:
    limited = limiter(store, 1)
    for _ in range(5):
        limited.check("a")
    limited.hit("a")
    with pytest.raises(RateLimited):
        limited.check("a")


def test_limiters_of_different_names_count_apart(store: Store) -> None:
    login, failure = limiter(store, 1, name="login"), limiter(store, 1, name="failure")
    login.hit("192.0.2.1")
    failure.hit("192.0.2.1")
    with pytest.raises(RateLimited):
        login.hit("192.0.2.1")


def test_the_previous_window_still_counts_for_its_overlapping_share(store: Store) -> None:
    clock = Clock()
    clock.now = clock.base + 59  # the last second of a window
    limited = limiter(store, 4, clock)
    for _ in range(4):
        limited.hit("c")
    clock.now = clock.base + 60 + 30  # half-way through the next window: 4 x 0.5 = 2 still count
    limited.hit("c")
    limited.hit("c")
    with pytest.raises(RateLimited) as info:
        limited.hit("c")  # 2 + 2 already: the limit; the refused one counts too (3 in this window)
    # 4 x (1 - e) + 3 < 4 once e > 3/4: after 45 s into the window, 15 s from now.
    assert info.value.retry_after == 16


@pytest.mark.parametrize(("limit", "current", "previous", "now", "expected"), [
    (3, 0, 6, 1040.0, 11),  # 6 x (1 - e) < 3 once e > 1/2: after 30 s into the window, 10 s from now
    (3, 4, 0, 1040.0, 56),  # over in this window: 40 s to its end, then 4 x (1 - e) < 3 after 15 s more
    (3, 2, 3, 1050.0, 11),  # 3 x (1 - e) + 2 < 3 once e > 2/3: after 40 s into the window
    (3, 1, 2, 1079.5, 1),  # at least a second
])
def test_retry_after_is_when_the_estimate_falls_below_the_limit(limit: int, current: int, previous: int,
                                                                 now: float, expected: int) -> None:
    wait = retry_after(limit, current, previous, 60, now)
    assert wait == expected
    later = now + wait
    if int(later // 60) == int(now // 60):
        assert estimate(current, previous, 60, later) < limit
    else:
        assert estimate(0, current, 60, later) < limit


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


def test_an_ipv6_host_cannot_escape_the_limit_by_changing_address_within_its_64(store: Store) -> None:
    limited = limiter(store, 3)
    for interface_id in range(3):
        limited.hit(f"2001:db8:aaaa:bbbb::{interface_id + 1:x}")
    with pytest.raises(RateLimited):
        limited.hit("2001:db8:aaaa:bbbb:dead:beef:1:2")
    with pytest.raises(RateLimited):
        limited.check("2001:db8:aaaa:bbbb::ffff")
    limited.hit("2001:db8:aaaa:bbbc::1")  # the next /64 is another client


def test_ipv4_clients_are_limited_per_address(store: Store) -> None:
    limited = limiter(store, 1)
    limited.hit("192.0.2.1")
    limited.hit("192.0.2.2")
    with pytest.raises(RateLimited):
        limited.hit("192.0.2.1")


def test_concurrent_hits_from_two_instances_let_exactly_the_limit_through(open_instance: OpenInstance) -> None:
    """Counting first, atomically, then deciding: checking then counting let racers pass on one old count."""
    stores = [open_instance() for _ in range(2)]  # two instances, one store
    clock = Clock()  # one window for the whole race
    limiters = [RateLimiter(store, "login", 2, 60, clock) for store in stores]
    racers = 8
    for round_no in range(30):  # a fresh client each round, all racers released at once
        start = threading.Barrier(racers)
        allowed: list[bool] = []

        def attempt(index: int, client: str = f"198.51.100.{round_no}", start: threading.Barrier = start,
                    allowed: list[bool] = allowed) -> None:
            start.wait()
            try:
                limiters[index % 2].hit(client)
            except RateLimited:
                allowed.append(False)
            else:
                allowed.append(True)

        threads = [threading.Thread(target=attempt, args=(index,)) for index in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(allowed) == racers and allowed.count(True) == 2, f"round {round_no}: {allowed}"


def test_a_limit_that_cannot_be_checked_refuses(sqlite_store: SQLiteStore, tmp_path: Path) -> None:
    """Store down: StoreUnavailable (the pages answer 503), never an uncounted pass (Redis: test_shared_ratelimit)."""
    limited = limiter(sqlite_store, 100)
    limited.hit("192.0.2.1")
    sqlite_store.path.rename(tmp_path / "away")
    with pytest.raises(StoreUnavailable):
        limited.hit("192.0.2.1")
    with pytest.raises(StoreUnavailable):
        limited.check("192.0.2.1")
    (tmp_path / "away").rename(sqlite_store.path)
    limited.hit("192.0.2.1")
