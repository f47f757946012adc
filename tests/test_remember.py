"""Remember-me series: rotation on use, theft detection, revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.remember import RememberMe
from gateway.store import SessionRecord, SQLiteStore
from gateway.types import Identity

KEYS = ["k" * 40]
ALICE = Identity("https://op.example/id/alice", "alice", "alice@example.test")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "g.sqlite3")
    yield s
    s.close()


def test_restore_rotates_the_token(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    series_id, cookie = remember.issue(ALICE, "UA", time.time())
    restored = remember.restore(cookie, time.time())
    assert restored is not None and restored.identity == ALICE and restored.series_id == series_id
    assert restored.cookie is not None and restored.cookie != cookie
    assert remember.restore(restored.cookie, time.time()) is not None  # the new one works


def test_the_token_is_never_stored(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    _, cookie = remember.issue(ALICE, "UA", time.time())
    token = remember.codec.decode(cookie).split(":", 1)[1]  # type: ignore[union-attr]
    assert token not in store.path.read_bytes().decode("latin-1")


def test_an_old_token_revokes_the_series_and_its_sessions(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    series_id, stolen = remember.issue(ALICE, "UA", time.time())
    legit = remember.restore(stolen, time.time())
    assert legit is not None and legit.cookie is not None
    store.create_session(SessionRecord("restored", ALICE.user_id, time.time(), time.time() + 60, series_id))
    time.sleep(0.01)
    assert remember.restore(stolen, time.time() + 1) is None  # the copy is used after rotation
    assert remember.restore(legit.cookie, time.time()) is None  # the whole series is gone
    assert "restored" in store.revocations_after(0, time.time())[0]


def test_previous_token_within_the_grace_window_is_not_theft(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=10)
    _, cookie = remember.issue(ALICE, "UA", time.time())
    first = remember.restore(cookie, time.time())
    parallel = remember.restore(cookie, time.time())  # a second tab, same moment
    assert first is not None and parallel is not None and parallel.cookie is None
    assert first.cookie is not None and remember.restore(first.cookie, time.time()) is not None


def test_expired_and_forged_cookies_do_nothing(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=60, grace=0)
    _, cookie = remember.issue(ALICE, "UA", time.time())
    assert remember.restore(cookie, time.time() + 61) is None
    assert remember.restore("garbage", time.time()) is None
    other = RememberMe(store, ["z" * 40], lifetime=60, grace=0)
    assert other.restore(cookie, time.time()) is None
