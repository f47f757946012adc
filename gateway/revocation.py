"""Which session ids are revoked, known without a database round trip per request.

``/_gateway/auth`` runs on every request of the protected site, so it checks a
set in memory. A background task refreshes that set from the store every
``revocation_refresh`` seconds, reading only the revocation log entries after
the last sequence number it saw (numbers follow commit order, so no
revocation is missed however workers' clocks and commits interleave), and a
logout in this process adds to it at once. A full reload every 10 minutes
drops expired sessions from memory. With several worker processes a
revocation made by one worker reaches the others within one refresh interval.

Fail closed: when the store cannot be read for longer than ``3 x interval``
(at least 5 s) the cache reports itself unhealthy and the auth check answers
503 until a refresh succeeds again.

So the store reads run on a thread of their own, never in the thread pool the
request handlers share: dozens of sign-ins waiting on a slow provider there
would otherwise hold the refresh back until the cache went stale and every
signed-in person got 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway import metrics
from gateway.errors import StoreUnavailable
from gateway.events import Events, StoreDown, StoreRecovered
from gateway.store import Store

logger = logging.getLogger("gateway.revocation")

FULL_RELOAD_EVERY = 600.0
PURGE_EVERY = 600.0

T = TypeVar("T")


class RevocationCache:
    """The revoked session ids, refreshed in the background."""

    def __init__(self, store: Store, interval: float, clock: Callable[[], float] = time.time,
                 local_ttl: float = 7 * 86400, events: Events | None = None) -> None:
        self.store = store
        self.events = events or Events()
        # A session revoked here lives no longer than its absolute lifetime: after that it needs no entry.
        self.local_ttl = local_ttl
        self.interval = interval
        self.clock = clock
        self.revoked: set[str] = set()
        self.max_staleness = max(5.0, 3 * interval)
        self._last_ok = 0.0
        self._seq = 0
        self._last_full = 0.0
        self._last_purge = 0.0
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        # Revoked in this process and not yet seen in the store: a full reload that read the store just
        # before the write, or a logout whose write failed (store down), must not forget them.
        self._local: dict[str, float] = {}
        self._failing = False  # the last refresh failed: the next success is a recovery

    @property
    def healthy(self) -> bool:
        return self.clock() - self._last_ok <= self.max_staleness

    def is_revoked(self, session_id: str) -> bool:
        return session_id in self.revoked

    def add(self, session_id: str) -> None:
        self.revoked.add(session_id)
        self._local[session_id] = self.clock()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="revocation-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _in_own_thread(self, work: Callable[..., T], *args: object) -> T:
        """Run a store call on this cache's own thread (made on first use, again after :meth:`stop`)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="revocation")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh()

    async def refresh(self) -> None:
        """Load revocations since the last refresh; never raises."""
        now = self.clock()
        full = now - self._last_full >= FULL_RELOAD_EVERY
        try:
            ids, seq = await self._in_own_thread(self.store.revocations_after, 0 if full else self._seq, now)
            if now - self._last_purge >= PURGE_EVERY:
                await self._in_own_thread(self.store.purge_expired, now)
                self._last_purge = now
        except StoreUnavailable as exc:
            if self.healthy:
                logger.error("store unavailable, revocations not refreshed: %s", exc)
            if not self._failing:  # once per outage, not once per refresh
                self._failing = True
                self.events.emit(StoreDown("revocation"))
            # Never loaded: no revocation data at all, infinitely old.
            metrics.set_revocation_age(now - self._last_ok if self._last_ok else float("inf"))
            return
        if full:
            stored = set(ids)
            self._local = {sid: at for sid, at in self._local.items()
                           if sid not in stored and now - at < self.local_ttl}
            self.revoked = stored | self._local.keys()
            self._last_full = now
        else:
            self.revoked.update(ids)
        self._seq = max(self._seq, seq)
        if not self.healthy and self._last_ok:
            logger.warning("store available again, revocations refreshed")
        if self._failing:
            self._failing = False
            self.events.emit(StoreRecovered())
        self._last_ok = now
        metrics.set_revocation_age(0.0)
