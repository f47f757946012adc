"""The state directory and the SQLite files are the gateway user's alone, whatever the umask."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import Runtime
from gateway.store import LinkRecord, ProviderSessionRecord, RememberRecord, SessionRecord, SQLiteStore, Store
from gateway.types import Assurance
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


def write_something(store: Store, sid: str = "sid") -> None:
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


def test_a_store_made_before_remember_me_recorded_the_provider_is_brought_up_to_date(tmp_path: Path) -> None:
    """An existing state file keeps working after an upgrade: the new column is added with its default."""
    path = tmp_path / "gateway.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE remember_series (series_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,"
                " user_id TEXT NOT NULL, nickname TEXT NOT NULL, email TEXT NOT NULL, created REAL NOT NULL,"
                " last_used REAL NOT NULL, expires REAL NOT NULL, previous_hash TEXT, rotated_at REAL,"
                " user_agent TEXT NOT NULL DEFAULT '', revoked_at REAL)")
    old.execute("INSERT INTO remember_series VALUES ('s1', 'h', 'u', 'n', '', 1, 1, 9e9, NULL, NULL, '', NULL)")
    old.commit()
    old.close()
    store = SQLiteStore(path)
    try:
        before = store.get_series("s1")
        assert before is not None and before.provider == "" and before.assurance is None  # no record: its created
        store.create_series(RememberRecord("s2", "h2", "u", "n", "", 1, 1, 9e9, provider="Steam",
                                           assurance=Assurance(1.0, "urn:x:mfa", ("pwd", "otp"))))
        after = store.get_series("s2")
        assert after is not None and after.provider == "Steam"
        assert after.assurance == Assurance(1.0, "urn:x:mfa", ("pwd", "otp"))
    finally:
        store.close()


def test_a_store_made_before_provider_sessions_knew_their_series_is_brought_up_to_date(tmp_path: Path) -> None:
    """The series comes from the sign-in's session where it is still there: a back-channel logout ends it, and
    keeps ending it once that session is purged."""
    path = tmp_path / "gateway.sqlite3"
    SQLiteStore(path).close()  # every table as it is now, then provider_sessions as it was before series_id
    old = sqlite3.connect(path)
    old.execute("DROP TABLE provider_sessions")
    old.execute("CREATE TABLE provider_sessions (session_id TEXT PRIMARY KEY, provider TEXT NOT NULL,"
                " sub TEXT NOT NULL, sid TEXT, id_token TEXT NOT NULL, expires REAL NOT NULL)")
    old.execute("INSERT INTO remember_series (series_id, token_hash, user_id, nickname, email, created, last_used,"
                " expires) VALUES ('s1', 'h', 'u', 'n', '', 1, 1, 9e9)")
    old.execute("INSERT INTO sessions (session_id, user_id, created, expires, series_id) VALUES"
                " ('first', 'u', 1, 1000, 's1')")
    old.execute("INSERT INTO provider_sessions VALUES ('first', 'OP', 'alice', 'op-1', 'id.token', 1000)")
    old.commit()
    old.close()
    store = SQLiteStore(path)
    try:
        store.purge_expired(2000)  # the session is gone, its provider session stays with the series
        assert store.get_provider_session("first") == ProviderSessionRecord(
            "first", "OP", "alice", "op-1", "id.token", 1000, "s1")
        store.revoke_provider_sessions("OP", None, "op-1", 3000)
        series = store.get_series("s1")
        assert series is not None and series.revoked_at == 3000
    finally:
        store.close()


def test_a_store_made_before_sessions_recorded_their_link_is_brought_up_to_date(tmp_path: Path) -> None:
    """Sessions and series made before keep working (started by no link, as far as anyone knows); new ones
    record the link, and unlinking ends them."""
    path = tmp_path / "gateway.sqlite3"
    SQLiteStore(path).close()  # every table as it is now, then sessions and remember_series as they were
    old = sqlite3.connect(path)
    old.execute("DROP TABLE sessions")
    old.execute("CREATE TABLE sessions (session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created REAL NOT NULL,"
                " expires REAL NOT NULL, series_id TEXT, user_agent TEXT NOT NULL DEFAULT '',"
                " client_addr TEXT NOT NULL DEFAULT '', revoked_at REAL)")
    old.execute("DROP TABLE remember_series")
    old.execute("CREATE TABLE remember_series (series_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,"
                " user_id TEXT NOT NULL, nickname TEXT NOT NULL, email TEXT NOT NULL, created REAL NOT NULL,"
                " last_used REAL NOT NULL, expires REAL NOT NULL, previous_hash TEXT, rotated_at REAL,"
                " user_agent TEXT NOT NULL DEFAULT '', revoked_at REAL, provider TEXT NOT NULL DEFAULT '')")
    old.execute("INSERT INTO sessions VALUES ('old', 'u', 1, 9e9, NULL, '', '', NULL)")
    old.execute("INSERT INTO remember_series VALUES ('s1', 'h', 'u', 'n', '', 1, 1, 9e9, NULL, NULL, '', NULL, 'OP')")
    old.commit()
    old.close()
    store = SQLiteStore(path)
    try:
        [before] = store.list_sessions("u", 2)
        series = store.get_series("s1")
        assert before.link_key == "" and series is not None and series.link_key == ""
        store.link_identity(LinkRecord("https://op#1", "u", "OP", 2))
        store.create_session(SessionRecord("new", "u", 2, 9e9, link_key="https://op#1"))
        assert store.unlink_identity("https://op#1", "u", 3) == ["new"]
        assert [s.session_id for s in store.list_sessions("u", 3)] == ["old"]
    finally:
        store.close()
