"""Per-client rate limits on starting sign-ins and on failed callbacks.

A sliding-window approximation (two fixed windows, weighted) per key: O(1)
memory per client and no timestamps lists. The table is bounded; when full the
oldest entries go first. Limits are per gateway process: with several workers
a client gets up to ``workers x limit`` (said in the README).

Keys are client addresses, grouped by :func:`client_key`: an IPv6 client
counts as its /64, the smallest network a site is usually given (RFC 6177), so
one host cannot pick a fresh address from its 2^64 for every attempt.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.errors import RateLimited

MAX_KEYS = 100_000
IPV6_PREFIX = 64


def client_key(address: str) -> str:
    """The rate-limit key of a client address: IPv4 as is, IPv6 as its /64 (pure).

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, a dual-stack socket) is
    the IPv4 client; anything that is not an address is its own key.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class RateLimiter:
    """``limit`` events per ``window`` seconds per client (see :func:`client_key`)."""

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

    def check(self, client: str) -> None:
        """Raise RateLimited if ``client`` is over its limit, without counting an event."""
        now = self.clock()
        _, _, previous, estimate = self._estimate(client_key(client), now)
        if estimate >= self.limit:
            raise RateLimited(self._retry_after(previous, now))

    def hit(self, client: str) -> None:
        """Count an event; raise RateLimited if that puts ``client`` over its limit."""
        now = self.clock()
        key = client_key(client)
        number, current, previous, estimate = self._estimate(key, now)
        if estimate >= self.limit:
            raise RateLimited(self._retry_after(previous, now))
        self._counts[key] = (number, current + 1, previous)
        self._counts.move_to_end(key)
        while len(self._counts) > MAX_KEYS:
            self._counts.popitem(last=False)

    def _retry_after(self, previous: int, now: float) -> int:
        return max(1, math.ceil(self.window - (now % self.window)))
