"""Revocations pushed to every instance (Redis pub/sub), and polled where the store cannot push (SQLite)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from gateway.revocation import RevocationCache
from gateway.store import SessionRecord, SQLiteStore, Store
from tests.test_revocation import run

DEADLINE = 10.0  # seconds: for what must happen long before a 30 s poll


def listener_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "revocation-pushes"]


def new_session(store: Store, sid: str) -> None:
    now = time.time()
    store.create_session(SessionRecord(sid, "u", now, now + 3600))


async def until_revoked(cache: RevocationCache, sid: str, deadline: float = DEADLINE) -> float:
    """Seconds until ``cache`` reports ``sid`` revoked (fails after ``deadline``)."""
    started = time.monotonic()
    while not cache.is_revoked(sid):
        assert time.monotonic() - started < deadline, f"{sid} not revoked within {deadline}s"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


def test_sqlite_cannot_push_so_the_cache_polls_without_a_listener_thread(tmp_path: Path) -> None:
    writer, reader = SQLiteStore(tmp_path / "g.sqlite3"), SQLiteStore(tmp_path / "g.sqlite3")  # two workers
    cache = RevocationCache(reader, interval=0.2)
    new_session(writer, "a")

    async def scenario() -> None:
        await cache.start()
        try:
            assert cache._listener is None and listener_threads() == []
            writer.revoke_session("a", time.time())
            await until_revoked(cache, "a")  # by the poll, within an interval or so
        finally:
            await cache.stop()

    run(scenario())
    assert listener_threads() == []
    writer.close()
    reader.close()
