"""Which session ids are revoked, known without a database round trip per request.

``/_gateway/auth`` runs on every request of the protected site, so it checks a
set in memory. A background task refreshes that set from the store every
``revocation_refresh`` seconds, reading only the revocation log entries after
the last sequence number it saw (numbers follow commit order, so no
revocation is missed however workers' clocks and commits interleave), and a
logout in this process adds to it at once. A full reload every 10 minutes
drops expired sessions from memory. With several worker processes a
revocation made by one worker reaches the others within one refresh interval.

A store that can push revocations (Redis: pub/sub) makes that about a second
or less, everywhere: a listener on a daemon thread of its own waits for
pushes and wakes the refresh at once (the refresh still reads the log, so a
push carries no session id anyone must trust, and a lost push costs at most
one interval). SQLite cannot push: no listener, polling only.

The same log carries bearer-token *cutoffs* (:func:`gateway.store.base.cutoff_entry`): signing a
user out everywhere refuses the tokens the provider issued them until then (no session record ends
those), so :meth:`RevocationCache.cut_off` answers from memory as :meth:`~RevocationCache.is_revoked` does.

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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.errors import StoreUnavailable
from gateway.observe import metrics
from gateway.observe.events import Events, StoreDown, StoreRecovered
from gateway.store import RevocationPushes, Store
from gateway.store.base import CUTOFF_KEEP, parse_cutoff

logger = logging.getLogger("gateway.revocation")

FULL_RELOAD_EVERY = 600.0
PURGE_EVERY = 600.0
PUSH_WAIT = 0.5  # the longest a listener blocks in one wait: how soon stop() gets it back (shutdown)
PUSH_RETRY = 1.0  # after a lost subscription, before subscribing again


class PushListener:
    """Waits for a store's revocation pushes on a daemon thread of its own and calls ``wake`` on each.

    Never on the request thread pool or the cache's refresh thread: a wait
    blocks for up to :data:`PUSH_WAIT`, all the time. A lost subscription is
    logged once per outage and taken up again every :data:`PUSH_RETRY`
    seconds; the refresh keeps polling meanwhile, and is woken once the pushes
    are back (some may have been missed).
    """

    def __init__(self, store: Store, pushes: RevocationPushes | None, wake: Callable[[], None]) -> None:
        self.store = store
        self.pushes = pushes  # None: subscribe on the thread (the store was down when the cache started)
        self.wake = wake
        self.failures = 0  # attempts failed in a row (this outage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocation-pushes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Blocks until the thread has ended (within about :data:`PUSH_WAIT`), then unsubscribes."""
        self._stop.set()
        self._thread.join(timeout=PUSH_WAIT + 10)
        if self.pushes is not None:
            with contextlib.suppress(StoreUnavailable):
                self.pushes.close()
            self.pushes = None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        lost = self.pushes is None
        while not self._stop.is_set():
            try:
                if self.pushes is None:
                    self.pushes = self.store.revocation_pushes()
                    if self.pushes is None:  # this store cannot push after all
                        return
                pushed = self.pushes.wait(PUSH_WAIT)
            except Exception as exc:  # StoreUnavailable, or a bug: either way keep listening, never die
                self.failures += 1
                if not lost:
                    lost = True
                    log = logger.warning if isinstance(exc, StoreUnavailable) else logger.exception
                    log("revocation pushes lost, polling every refresh interval until they are back: %s", exc)
                self._stop.wait(PUSH_RETRY)
                continue
            self.failures = 0
            if lost:
                lost = False
                logger.warning("revocation pushes back")
                pushed = True  # what was pushed while they were away is in the log: read it now
            if pushed:
                self.wake()


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
        # Bearer-token cutoffs: user id ("" for everyone) -> tokens issued at or before this time are refused.
        self.cutoffs: dict[str, float] = {}
        self.max_staleness = max(5.0, 3 * interval)
        self._last_ok = 0.0
        self._seq = 0
        self._last_full = 0.0
        self._last_purge = 0.0
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._listener: PushListener | None = None
        # Revoked in this process and not yet seen in the store: a full reload that read the store just
        # before the write, or a logout whose write failed (store down), must not forget them.
        self._local: dict[str, float] = {}
        self._local_cutoffs: dict[str, float] = {}  # as _local, for cutoffs
        self._failing = False  # the last refresh failed: the next success is a recovery

    @property
    def healthy(self) -> bool:
        return self.clock() - self._last_ok <= self.max_staleness

    def is_revoked(self, session_id: str) -> bool:
        return session_id in self.revoked

    def add(self, session_id: str) -> None:
        self.revoked.add(session_id)
        self._local[session_id] = self.clock()

    def cut_off(self, user_id: str, issued: float) -> bool:
        """Whether a bearer token of ``user_id`` issued at ``issued`` predates a sign-out everywhere (theirs or all)."""
        cutoffs = self.cutoffs
        if not cutoffs:
            return False
        return issued <= max(cutoffs.get(user_id, float("-inf")), cutoffs.get("", float("-inf")))

    def add_cutoff(self, user_id: str, at: float) -> None:
        """Refuse ``user_id``'s tokens issued until ``at`` in this process now (the store's log tells the others)."""
        self.cutoffs[user_id] = max(at, self.cutoffs.get(user_id, at))
        self._local_cutoffs[user_id] = self.cutoffs[user_id]

    async def start(self) -> None:
        await self.refresh()
        wake = asyncio.Event()  # set by the push listener: refresh now
        self._task = asyncio.create_task(self._run(wake), name="revocation-refresh")
        try:
            pushes = await self._in_own_thread(self.store.revocation_pushes)
        except StoreUnavailable as exc:  # a store that pushes, down now: the listener subscribes when it is back
            logger.warning("revocation pushes not subscribed yet: %s", exc)
            pushes = None
        else:
            if pushes is None:  # this store cannot push: polling only, no thread
                return
        loop = asyncio.get_running_loop()

        def wake_refresh() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under a listener being stopped
                loop.call_soon_threadsafe(wake.set)

        self._listener = PushListener(self.store, pushes, wake_refresh)
        self._listener.start()

    async def stop(self) -> None:
        if self._listener is not None:
            await self._in_own_thread(self._listener.stop)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _in_own_thread(self, work: Callable[..., T], *args: object) -> T:
        """Run a store call on this cache's own thread (made on first use, again after :meth:`stop`)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="revocation")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def _run(self, wake: asyncio.Event) -> None:
        """Refresh every ``interval`` seconds, or at once when a push wakes it."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.interval)
            wake.clear()  # before reading: a push during the read sets it again, and is read next
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
        cutoffs: dict[str, float] = {}
        sessions = []
        for entry in ids:
            cutoff = parse_cutoff(entry)
            if cutoff is None:
                sessions.append(entry)
            else:
                cutoffs[cutoff[0]] = max(cutoff[1], cutoffs.get(cutoff[0], cutoff[1]))
        if full:
            stored = set(sessions)
            self._local = {sid: at for sid, at in self._local.items()
                           if sid not in stored and now - at < self.local_ttl}
            self.revoked = stored | self._local.keys()
            self._local_cutoffs = {user: at for user, at in self._local_cutoffs.items()
                                   if now - at < CUTOFF_KEEP and cutoffs.get(user, float("-inf")) < at}
            for user, at in self._local_cutoffs.items():
                cutoffs[user] = max(at, cutoffs.get(user, at))
            self.cutoffs = cutoffs
            self._last_full = now
        else:
            self.revoked.update(sessions)
            for user, at in cutoffs.items():
                self.cutoffs[user] = max(at, self.cutoffs.get(user, at))
        self._seq = max(self._seq, seq)
        if not self.healthy and self._last_ok:
            logger.warning("store available again, revocations refreshed")
        if self._failing:
            self._failing = False
            self.events.emit(StoreRecovered())
        self._last_ok = now
        metrics.set_revocation_age(0.0)
