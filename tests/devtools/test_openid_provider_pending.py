"""Pending consent requests expire after ten minutes and are answered once."""

from __future__ import annotations

from typing import Any, cast

from devtools.openid_provider.pending import CAPACITY, LIFETIME, PendingRequests
from devtools.openid_provider.profiles import PROFILES

REQUEST = cast(Any, object())  # the store never looks inside the CheckIDRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pending_request_expires_after_ten_minutes() -> None:
    clock = Clock()
    pending = PendingRequests(clock)
    token, item = pending.add(REQUEST, PROFILES[0], "http://op.test", None)
    clock.now += LIFETIME - 1
    assert pending.get(token) is item
    clock.now += 1
    assert LIFETIME == 600 and pending.get(token) is None and pending.take(token) is None


def test_a_pending_request_is_taken_once() -> None:
    pending = PendingRequests()
    token, item = pending.add(REQUEST, PROFILES[0], "http://op.test", "alice")
    assert pending.take(token) is item
    assert pending.take(token) is None and pending.get(token) is None


def test_tokens_are_unguessable_and_unknown_ones_find_nothing() -> None:
    pending = PendingRequests()
    tokens = {pending.add(REQUEST, PROFILES[0], "http://op.test", None)[0] for _ in range(100)}
    assert len(tokens) == 100 and all(len(token) >= 43 for token in tokens)
    assert pending.get("guess") is None


def test_the_oldest_request_is_forgotten_when_full() -> None:
    pending = PendingRequests()
    first, _ = pending.add(REQUEST, PROFILES[0], "http://op.test", None)
    last = [pending.add(REQUEST, PROFILES[0], "http://op.test", None)[0] for _ in range(CAPACITY)]
    assert pending.get(first) is None
    assert all(pending.get(token) is not None for token in last)
