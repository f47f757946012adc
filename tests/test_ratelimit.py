from __future__ import annotations

import pytest

from gateway.errors import RateLimited
from gateway.ratelimit import RateLimiter


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
