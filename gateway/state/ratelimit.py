"""Per-client rate limits on starting sign-ins and on failed callbacks, shared by every worker and instance.

The counts live in the store (:meth:`~gateway.store.Store.add_hit`), so a
client gets ``limit`` events per window in total, however many worker
processes and gateway instances answer it: counting per process gave it
``workers x instances x limit``. A sliding-window approximation: two fixed
windows per key, the previous one weighted by how much of it still overlaps
the sliding window. O(1) per client, and the store forgets a window after two
(nothing grows without bound).

Keys are client addresses, grouped by :func:`client_key`: an IPv6 client
counts as its /64, the smallest network a site is usually given (RFC 6177), so
one host cannot pick a fresh address from its 2^64 for every attempt.

Every method blocks on the store: callers on the event loop run it in a
worker thread. A store that cannot be reached raises
:class:`~gateway.errors.StoreUnavailable`, answered with 503: a limit that
cannot be checked refuses, it never lets the attempt through uncounted.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from gateway.errors import RateLimited
from gateway.store import Store

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


def estimate(current: int, previous: int, window: int, now: float) -> float:
    """Events in the sliding window ending at ``now``: the current window's plus the overlapping share of the last."""
    elapsed = (now % window) / window
    return previous * (1 - elapsed) + current


def retry_after(limit: int, current: int, previous: int, window: int, now: float) -> int:
    """Whole seconds until :func:`estimate` is below ``limit`` if nothing more is counted (at least 1).

    Refused attempts count too, so a client that went far over its limit waits
    into the next window, not merely until this one ends.
    """
    into = now % window
    if current < limit:  # the previous window's share has to fade: est < limit once elapsed > 1 - (limit - c) / p
        wait = window * (1 - (limit - current) / previous) - into if previous else 0.0
    else:  # only the next window helps, where this one's count is the fading previous
        wait = (window - into) + window * (1 - limit / max(current, 1))
    return max(1, math.floor(wait) + 1)  # strictly after: at ``wait`` itself it is still the limit


class RateLimiter:
    """``limit`` events per ``window`` seconds per client (see :func:`client_key`), counted in the store.

    ``name`` keeps limiters apart in the store (bucket ``name:client key``).
    ``clock`` is wall-clock time: every instance numbers the windows alike.
    """

    def __init__(self, store: Store, name: str, limit: int, window: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.name = name
        self.limit = limit
        self.window = window
        self.clock = clock

    def bucket(self, client: str) -> str:
        return f"{self.name}:{client_key(client)}"

    def check(self, client: str) -> None:
        """Raise RateLimited if ``client`` is at its limit, without counting an event (blocks on the store)."""
        now = self.clock()
        current, previous = self.store.peek_hits(self.bucket(client), self.window, now)
        if estimate(current, previous, self.window, now) >= self.limit:
            raise RateLimited(retry_after(self.limit, current, previous, self.window, now))

    def hit(self, client: str) -> None:
        """Count an event, then raise RateLimited if the events before it already reached the limit.

        Counting first, atomically in the store, then deciding on the count
        that came back is what makes the limit hold across instances: of
        concurrent attempts each sees a different count, so no more than
        ``limit`` can slip under it together (checking, then counting, would
        let all of them pass on the same old count). The refused attempt stays
        counted: a client that keeps trying while refused stays refused.
        Blocks on the store.
        """
        now = self.clock()
        current, previous = self.store.add_hit(self.bucket(client), self.window, now)
        if estimate(current - 1, previous, self.window, now) >= self.limit:
            raise RateLimited(retry_after(self.limit, current, previous, self.window, now))
