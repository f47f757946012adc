"""The in-memory revocation list: complete, incremental, and failing closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from gateway.state.revocation import FULL_RELOAD_EVERY, RevocationCache
from gateway.store import SessionRecord, SQLiteStore


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own: Playwright's sync API may hold this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def make(tmp_path: Path) -> tuple[SQLiteStore, RevocationCache]:
    store = SQLiteStore(tmp_path / "g.sqlite3")
    for sid in ("a", "b", "c"):
        store.create_session(SessionRecord(sid, "u", time.time(), time.time() + 3600))
    return store, RevocationCache(store, interval=0.2)


def test_revocations_committed_out_of_clock_order_are_all_seen(tmp_path: Path) -> None:
    store, cache = make(tmp_path)

    async def scenario() -> None:
        store.revoke_session("a", time.time() + 60)  # a worker with a fast clock
        await cache.refresh()
        store.revoke_session("b", time.time() - 60)  # a slow write, stamped before it
        await cache.refresh()

    run(scenario())
    assert cache.is_revoked("a") and cache.is_revoked("b") and not cache.is_revoked("c")
    store.close()


def test_a_local_logout_counts_at_once(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    cache.add("c")
    assert cache.is_revoked("c")
    store.close()


def test_unreadable_store_turns_unhealthy_and_recovers(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    now = [time.time()]
    cache.clock = lambda: now[0]
    run(cache.refresh())
    assert cache.healthy
    store.path.rename(tmp_path / "away")
    now[0] += cache.max_staleness + 1
    run(cache.refresh())
    assert not cache.healthy  # the auth check answers 503 from here on
    (tmp_path / "away").rename(store.path)
    run(cache.refresh())
    assert cache.healthy
    store.close()


# -- start-up, full reloads and the staleness floor ---------------------------------------------


def test_the_cache_is_not_healthy_before_its_first_successful_load(tmp_path: Path) -> None:
    """Started with the store down, the auth check must answer 503, not trust an empty list."""
    store, cache = make(tmp_path)
    store.path.rename(tmp_path / "away")
    assert not cache.healthy  # nothing loaded yet
    run(cache.refresh())
    assert not cache.healthy
    (tmp_path / "away").rename(store.path)
    run(cache.refresh())
    assert cache.healthy
    store.close()


def test_a_full_reload_keeps_what_this_process_revoked_moments_before(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    now = [time.time()]
    cache.clock = lambda: now[0]
    run(cache.refresh())  # the first load is a full one
    now[0] += FULL_RELOAD_EVERY - 1
    cache.add("c")  # a logout here, whose store write the reload below does not see
    now[0] += 1
    run(cache.refresh())  # a full reload: the store knows nothing of "c"
    assert cache.is_revoked("c")
    store.close()


def test_a_revocation_the_store_never_recorded_survives_every_full_reload(tmp_path: Path) -> None:
    """A logout while the store was down revoked in memory only: no reload may bring the session back."""
    store, cache = make(tmp_path)
    now = [time.time()]
    cache.clock = lambda: now[0]
    run(cache.refresh())
    cache.add("c")  # the store write failed; only this process knows
    for _ in range(3):  # three full reloads, ten minutes apart
        now[0] += FULL_RELOAD_EVERY
        run(cache.refresh())
        assert cache.is_revoked("c")
    now[0] += cache.local_ttl  # past any session's absolute lifetime: the cookie is dead anyway
    run(cache.refresh())
    assert not cache.is_revoked("c")
    store.close()


def test_a_local_revocation_is_let_go_once_the_store_has_it(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    now = [time.time()]
    cache.clock = lambda: now[0]
    run(cache.refresh())
    cache.add("c")
    store.revoke_session("c", now[0])
    now[0] += FULL_RELOAD_EVERY
    run(cache.refresh())
    assert cache.is_revoked("c") and "c" not in cache._local  # the store remembers it from now on
    store.close()


def test_a_full_reload_forgets_revoked_sessions_once_they_have_expired(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    start = time.time()
    store.create_session(SessionRecord("short", "u", start, start + 60))
    store.revoke_session("short", start)
    store.revoke_session("a", start)  # expires in an hour
    now = [start]
    cache.clock = lambda: now[0]
    run(cache.refresh())
    now[0] += 120
    run(cache.refresh())  # incremental: nothing new, nothing dropped
    assert cache.is_revoked("short") and cache.is_revoked("a")
    now[0] = start + FULL_RELOAD_EVERY
    run(cache.refresh())
    assert not cache.is_revoked("short")  # expired: its cookie is refused anyway, memory stays small
    assert cache.is_revoked("a")
    store.close()


def test_the_staleness_floor_is_five_seconds_or_three_intervals(tmp_path: Path) -> None:
    store, _ = make(tmp_path)
    for interval, floor in ((0.2, 5.0), (1.0, 5.0), (2.0, 6.0), (10.0, 30.0)):
        assert RevocationCache(store, interval).max_staleness == floor
    now = [time.time()]
    cache = RevocationCache(store, 0.2, clock=lambda: now[0])
    run(cache.refresh())
    start = now[0]
    now[0] = start + 4.9  # 24 missed refreshes of 0.2 s: still within the 5 s floor
    assert cache.healthy
    now[0] = start + 5.1
    assert not cache.healthy
    store.close()


# -- its own thread ---------------------------------------------------------------------------


def test_refresh_does_not_wait_behind_a_full_shared_thread_pool(tmp_path: Path) -> None:
    """Slow sign-ins used to fill Starlette's shared pool; the refresh queued behind them and went stale."""
    from anyio import to_thread
    from starlette.concurrency import run_in_threadpool

    store, cache = make(tmp_path)
    store.revoke_session("b", time.time())
    held = threading.Event()

    async def scenario() -> None:
        tokens = int(to_thread.current_default_thread_limiter().total_tokens)
        blockers = [asyncio.create_task(run_in_threadpool(held.wait, 30)) for _ in range(tokens)]
        try:
            for _ in range(500):  # at most 5 s for them to take every token of the shared pool
                if to_thread.current_default_thread_limiter().available_tokens == 0:
                    break
                await asyncio.sleep(0.01)
            assert to_thread.current_default_thread_limiter().available_tokens == 0
            await asyncio.wait_for(cache.refresh(), timeout=10)
        finally:
            held.set()
            await asyncio.gather(*blockers)
            await cache.stop()

    run(scenario())
    assert cache.healthy and cache.is_revoked("b")
    store.close()


def test_a_users_sign_out_everywhere_cuts_off_their_bearer_tokens_issued_until_then(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    at = time.time()
    store.revoke_user("u", at)
    run(cache.refresh())
    assert cache.is_revoked("a") and not cache.is_revoked(f"cutoff\t{at!r}\tu")  # a cutoff is no session
    assert cache.cut_off("u", at - 60) and cache.cut_off("u", at)
    assert not cache.cut_off("u", at + 1) and not cache.cut_off("someone-else", at - 60)
    store.close()


def test_signing_everyone_out_cuts_off_every_users_tokens_and_a_full_reload_keeps_the_cutoffs(tmp_path: Path) -> None:
    store, cache = make(tmp_path)
    now = [time.time()]
    cache.clock = lambda: now[0]
    store.revoke_all(now[0])
    run(cache.refresh())
    assert cache.cut_off("anyone", now[0] - 1)
    cache.add_cutoff("v", now[0] + 5)  # a sign-out everywhere in this process, its store write not yet seen
    now[0] += FULL_RELOAD_EVERY
    run(cache.refresh())  # a full reload
    assert cache.cut_off("anyone", now[0] - FULL_RELOAD_EVERY - 1) and cache.cut_off("v", now[0] - FULL_RELOAD_EVERY)
    store.close()
