"""Sign-ins run on threads of their own, a bounded number at a time.

python3-openid is synchronous and waits on providers: seconds per request when
one is slow (or an attacker's provider is slow on purpose). Run in the thread
pool the rest of the gateway shares (Starlette's ``run_in_threadpool``, 40
threads), a few dozen slow sign-ins would take every thread, and whatever else
needs one (the store calls of sign-out, the account page) would queue behind
them. :class:`SignInCapacity` gives the exchange its own pool of ``limit``
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
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from gateway.errors import SignInBusy
from gateway.openid.consumer import OpenIDExchange, ProviderRequest
from gateway.types import Identity

T = TypeVar("T")

RETRY_AFTER = 5  # seconds: about one provider round trip


class SignInCapacity:
    """Runs :class:`OpenIDExchange` calls on ``limit`` dedicated threads, refusing the excess."""

    def __init__(self, exchange: OpenIDExchange, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.exchange = exchange
        self.limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="signin")

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def begin(self, identifier: str, return_to: str) -> ProviderRequest:
        """:meth:`OpenIDExchange.begin` on a sign-in thread; raises :class:`SignInBusy` when all are taken."""
        return await self._run(lambda: self.exchange.begin(identifier, return_to))

    async def complete(self, query: Mapping[str, str], current_url: str, pending: Mapping[str, object]) -> Identity:
        """:meth:`OpenIDExchange.complete` on a sign-in thread; raises :class:`SignInBusy` when all are taken."""
        return await self._run(lambda: self.exchange.complete(query, current_url, pending))

    async def run(self, work: Callable[[], T]) -> T:
        """Any other sign-in work (OpenID Connect) on a sign-in thread, under the same cap."""
        return await self._run(work)

    async def _run(self, work: Callable[[], T]) -> T:
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
