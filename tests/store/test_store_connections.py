"""Every SQLite connection the store opens is closed: by close(), or when the store is dropped.

Python 3.13 reports a connection that is only garbage-collected with
``ResourceWarning: unclosed database``; older versions close it silently. The
tests look at both: the warning (through ``sys.unraisablehook``, where a
warning raised in a finaliser goes) and the file descriptors still open on
the database file.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import StoreUnavailable
from gateway.store import SessionRecord, SQLiteStore


def open_files(path: Path) -> list[str]:
    """This process's file descriptors on the database file or its -wal/-shm companions."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target in names:
            found.append(target)
    return found


@pytest.fixture
def unraisable() -> Iterator[list[Any]]:
    """What reaches ``sys.unraisablehook`` during the test (3.13: the unclosed-database warning)."""
    seen: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
    finally:
        gc.collect()
        sys.unraisablehook = previous


def use_from_threads(store: SQLiteStore, threads: int = 8) -> None:
    def work(n: int) -> None:
        now = time.time()
        store.create_session(SessionRecord(f"s{n}", f"u{n % 3}", now, now + 3600, None, "UA", "127.0.0.1"))
        store.list_sessions(f"u{n % 3}", now)
        store.revocations_after(0, now)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads * 4)))


def test_a_store_used_from_many_threads_then_closed_leaves_no_connection(tmp_path: Path,
                                                                           unraisable: list[Any]) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = SQLiteStore(path)
    use_from_threads(store)
    store.close()
    assert open_files(path) == []
    del store
    gc.collect()
    assert unraisable == []


def test_a_store_dropped_without_close_closes_its_connection(tmp_path: Path, unraisable: list[Any]) -> None:
    """A Runtime built and dropped (a failed start-up, a test) must not leak its store's connection."""
    path = tmp_path / "gateway.sqlite3"
    store = SQLiteStore(path)
    use_from_threads(store)
    store.cycle = store  # type: ignore[attr-defined]  # like Runtime's: freed by the collector, not at once
    del store
    gc.collect()
    assert open_files(path) == []
    assert unraisable == []


def test_a_file_that_is_not_a_database_leaks_no_connection(tmp_path: Path, unraisable: list[Any]) -> None:
    path = tmp_path / "gateway.sqlite3"
    path.write_bytes(b"this is not an SQLite database\n" * 100)
    with pytest.raises(StoreUnavailable, match="not a database"):
        SQLiteStore(path)
    gc.collect()
    assert open_files(path) == []
    assert unraisable == []


def test_a_closed_store_can_be_closed_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.sqlite3")
    store.close()
    store.close()
