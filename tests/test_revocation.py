"""The in-memory revocation list: complete, incremental, and failing closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from gateway.revocation import RevocationCache
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
