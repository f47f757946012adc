"""The state directory and the SQLite files are the gateway user's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import Runtime
from gateway.store import SessionRecord, SQLiteStore
from tests.conftest import make_settings


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000, as a shell or a container may leave it: nothing is masked away."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_something(store: SQLiteStore, sid: str = "sid") -> None:
    store.create_session(SessionRecord(sid, "u", 1.0, 4e9, None, "UA", "127.0.0.1"))


def test_state_dir_is_0700_and_the_store_files_0600(tmp_path: Path, permissive_umask: None) -> None:
    settings = make_settings(tmp_path / "var" / "state", 8080)
    runtime = Runtime.from_settings(settings)
    try:
        write_something(runtime.store)  # WAL mode: -wal and -shm exist while the store is open
        files = [settings.sqlite_path, *(settings.sqlite_path.with_name(settings.sqlite_path.name + end)
                                         for end in ("-wal", "-shm"))]
        assert mode(settings.state_dir) == 0o700
        assert {str(path.name): mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        runtime.exchange.fetcher.close()
        runtime.store.close()


def test_a_store_file_created_world_readable_before_is_tightened(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = SQLiteStore(path)
    write_something(store)
    store.close()
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o644)
    store = SQLiteStore(path)
    try:
        write_something(store, "sid2")
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {p.name: 0o600 for p in tmp_path.iterdir()}
    finally:
        store.close()


def test_an_existing_state_dir_keeps_its_mode(tmp_path: Path) -> None:
    """It may be shared (e.g. /var/lib/something) and is the operator's to set: only what we create is private."""
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    state.chmod(0o750)
    store = SQLiteStore(state / "gateway.sqlite3")
    store.close()
    assert mode(state) == 0o750 and mode(state / "gateway.sqlite3") == 0o600
