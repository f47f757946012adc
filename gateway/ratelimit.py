"""Per-client rate limits on starting sign-ins and on failed callbacks.

A sliding-window approximation (two fixed windows, weighted) per key: O(1)
memory per client and no timestamps lists. The table is bounded; when full the
oldest entries go first. Limits are per gateway process: with several workers
a client gets up to ``workers x limit`` (said in the README).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.errors import RateLimited

MAX_KEYS = 100_000


class RateLimiter:
    """``limit`` events per ``window`` seconds per key."""

    def __init__(self, limit: int, window: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._counts: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # key -> (window no, current, previous)

    def _estimate(self, key: str, now: float) -> tuple[int, int, int, float]:
        number = int(now // self.window)
        window_no, current, previous = self._counts.get(key, (number, 0, 0))
        if window_no == number - 1:
            current, previous = 0, current
        elif window_no != number:
            current, previous = 0, 0
        elapsed = (now % self.window) / self.window
        return number, current, previous, previous * (1 - elapsed) + current

    def check(self, key: str) -> None:
        """Raise RateLimited if ``key`` is over its limit, without counting an event."""
        now = self.clock()
        _, _, previous, estimate = self._estimate(key, now)
        if estimate >= self.limit:
            raise RateLimited(self._retry_after(previous, now))

    def hit(self, key: str) -> None:
        """Count an event; raise RateLimited if that puts ``key`` over its limit."""
        now = self.clock()
        number, current, previous, estimate = self._estimate(key, now)
        if estimate >= self.limit:
            raise RateLimited(self._retry_after(previous, now))
        self._counts[key] = (number, current + 1, previous)
        self._counts.move_to_end(key)
        while len(self._counts) > MAX_KEYS:
            self._counts.popitem(last=False)

    def _retry_after(self, previous: int, now: float) -> int:
        return max(1, math.ceil(self.window - (now % self.window)))
