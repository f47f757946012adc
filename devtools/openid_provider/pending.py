"""Authentication requests waiting for the person's decision on the consent page.

The request itself stays on the server; the page only carries a random token. That
keeps the consent form small and means a forged form cannot invent a request.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from openid.server.server import CheckIDRequest

from devtools.openid_provider.extensions import Requested
from devtools.openid_provider.profiles import Profile

LIFETIME = 600.0  # seconds: a consent page left open longer must be started again
CAPACITY = 1000  # a development tool: forget the oldest rather than grow without bound


@dataclass(frozen=True)
class Pending:
    """One checkid_setup request. ``username`` is set when the claimed identifier names the user.

    ``requested``: its extension requests, when the endpoint has read them already.
    """

    request: CheckIDRequest
    profile: Profile
    base: str
    username: str | None
    expires: float
    requested: Requested | None = None


class PendingRequests:
    """Thread-safe, expiring, single-use storage of pending requests keyed by a random token."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, Pending] = {}

    def add(self, request: CheckIDRequest, profile: Profile, base: str, username: str | None,
            requested: Requested | None = None) -> tuple[str, Pending]:
        """Keep a request; returns its new token and the stored entry."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        item = Pending(request, profile, base, username, now + LIFETIME, requested)
        with self._lock:
            for key in [key for key, old in self._items.items() if old.expires <= now]:
                del self._items[key]
            while len(self._items) >= CAPACITY:
                del self._items[next(iter(self._items))]
            self._items[token] = item
        return token, item

    def get(self, token: str) -> Pending | None:
        """The pending request, or None when the token is unknown, used or expired."""
        with self._lock:
            item = self._items.get(token)
        return item if item is not None and item.expires > self._clock() else None

    def take(self, token: str) -> Pending | None:
        """Like ``get``, but removes it: a request is answered once."""
        with self._lock:
            item = self._items.pop(token, None)
        return item if item is not None and item.expires > self._clock() else None
