"""Sign-ins run on threads of their own, a bounded number at a time.

Every protocol waits on providers (python3-openid's discovery, OpenID Connect's
token endpoint and JWKS): seconds per request when one is slow (or an attacker's
provider is slow on purpose). Run in the thread
pool the rest of the gateway shares (:mod:`gateway.pages.threads`, 40
threads), a few dozen slow sign-ins would take every thread, and whatever else
needs one (the store calls of sign-out, the account page) would queue behind
them. :class:`SignInCapacity` gives sign-ins their own pool of ``limit``
threads and refuses a sign-in at once with :class:`~gateway.errors.SignInBusy`
(503 and ``Retry-After``) when all of them are busy: a queue would only hold
browsers until nginx gives up on them.

A slot is held until the exchange's thread finishes, not until the request
ends: a browser that disconnects does not free a thread still waiting on its
provider.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from gateway.errors import SignInBusy

T = TypeVar("T")

RETRY_AFTER = 5  # seconds: about one provider round trip


class SignInCapacity:
    """Runs sign-in work on ``limit`` dedicated threads, refusing the excess."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="signin")

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` on a sign-in thread; raises :class:`SignInBusy` when all are taken."""
        with self._lock:
            if self._in_flight >= self.limit:
                raise SignInBusy(self.limit, RETRY_AFTER)
            self._in_flight += 1
        try:
            future: Future[T] = self._executor.submit(work)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        """Stop taking work; threads end when their exchange does (each is bounded by the fetch timeouts)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["RETRY_AFTER", "SignInCapacity"]
