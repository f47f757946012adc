"""Sign-ins the provider remembers for "Stay signed in at this provider" (``devtools/stepup.py``).

Keyed by the random value of the provider's own cookie; added and read on the event loop only
(the endpoint looks its session up before it hands the request to the thread pool).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devtools.openid_provider.extensions import Requested
from devtools.stepup import SESSION_LIFETIME

COOKIE = "devtools_openid2_session"
CAPACITY = 1000  # a development tool: forget the oldest rather than grow without bound


@dataclass
class SignIn:
    """One remembered authentication: who, at which profile, for which realms, when, and with which factors."""

    username: str
    profile: str
    auth_time: int
    multi_factor: bool
    realms: set[str] = field(default_factory=set)

    def answers(self, profile: str, realm: str, username: str | None, requested: Requested, *, ignore_step_up: bool,
                now: int) -> bool:
        """Whether this sign-in may answer a request without the form: the same profile, realm and user, and,
        unless step-up requests are ignored, recent enough for ``max_auth_age`` and multi-factor when preferred."""
        if profile != self.profile or realm not in self.realms or username not in (None, self.username):
            return False
        if ignore_step_up:
            return True
        max_auth_age = requested.max_auth_age()
        if max_auth_age is not None and now - self.auth_time > max_auth_age:
            return False
        return self.multi_factor or not requested.multi_factor()


class SignIns:
    """Remembered sign-ins that vanish after ``SESSION_LIFETIME`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, SignIn]] = {}

    def add(self, sign_in: SignIn) -> str:
        now = self._clock()
        for key in [key for key, (expires, _) in self._items.items() if expires <= now]:
            del self._items[key]
        while len(self._items) >= CAPACITY:
            del self._items[next(iter(self._items))]
        key = secrets.token_urlsafe(32)
        self._items[key] = (now + SESSION_LIFETIME, sign_in)
        return key

    def get(self, key: str) -> SignIn | None:
        entry = self._items.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None
