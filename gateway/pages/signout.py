"""Ending sessions: in this process at once, then in the store, retried briefly.

Used by ``/logout`` and the account page. The sessions a caller already knows
go into the in-memory revocation set *before* the store is written, so that a
store outage still signs them out in this process; the store write (which
also ends the remember-me series and returns the sessions restored from them)
is retried a few times, then reported to the caller as
:class:`~gateway.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from gateway.errors import StoreUnavailable
from gateway.pages.threads import run_in_threadpool
from gateway.runtime import Runtime

# Pauses between attempts at the store write: under half a second in all, a person is waiting.
RETRY_DELAYS = (0.05, 0.15, 0.3)


class SignOut:
    """Revokes sessions and remember-me series, locally first."""

    def __init__(self, runtime: Runtime, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.runtime = runtime
        self.retry_delays = retry_delays

    async def end(self, session_ids: Collection[str], series_ids: Collection[str]) -> list[str]:
        """End these sessions and series, and every session restored from the series.

        Returns the ids of the series' unexpired sessions (revoked in this process too).
        Raises StoreUnavailable when the store could not record it: the known
        sessions are then revoked in this process only.
        """
        runtime = self.runtime
        self.here(session_ids)
        now = runtime.now()

        def work() -> list[str]:
            for session_id in session_ids:
                runtime.store.revoke_session(session_id, now)
            return [sid for series_id in series_ids for sid in runtime.remember.revoke(series_id, now)]

        ended = await self.with_retries(work)
        self.here(ended)
        return ended

    def here(self, session_ids: Collection[str]) -> None:
        """Revoke sessions in this process at once: known ones before any store call (a store outage cannot
        keep them), the ones a store call ended right after it (the other processes read the revocation log)."""
        for session_id in session_ids:
            self.runtime.revocation.add(session_id)

    async def end_user(self, user_id: str, known: Collection[str]) -> int:
        """Sign a user out everywhere (``known`` sessions locally first); returns how many sessions ended."""
        runtime = self.runtime
        self.here(known)
        now = runtime.now()
        runtime.revocation.add_cutoff(user_id, now)  # the user's bearer tokens too, here at once
        ended = await self.with_retries(lambda: runtime.store.revoke_user(user_id, now))
        self.here(ended)
        return len(set(ended) | set(known))

    async def end_at_provider(self, provider: str, sub: str | None, sid: str | None) -> list[str]:
        """Back-channel logout: end the sessions of ``sid`` (else of ``sub``) at ``provider``, and their series.

        None is known beforehand, so the store goes first; the ids it returns
        are revoked in this process at once, in the others within their
        revocation refresh (the store's revocation log).
        """
        runtime = self.runtime
        now = runtime.now()
        ended = await self.with_retries(lambda: runtime.store.revoke_provider_sessions(provider, sub, sid, now))
        self.here(ended)
        return ended

    async def with_retries(self, work: Callable[[], list[str]]) -> list[str]:
        """Run a store write in a worker thread, again after each delay while the store is unavailable."""
        for delay in self.retry_delays:
            try:
                return await run_in_threadpool(work)
            except StoreUnavailable:
                await asyncio.sleep(delay)
        return await run_in_threadpool(work)
