"""The store contract, run against every implementation (today: SQLite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openid.association import Association

from gateway.errors import StoreUnavailable
from gateway.store import RememberRecord, SessionRecord, SQLiteStore, Store


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    impl = SQLiteStore(tmp_path / "gateway.sqlite3")
    yield impl
    impl.close()


def assoc(handle: str, issued: int | None = None, lifetime: int = 600) -> Association:
    return Association(handle, b"s" * 20, int(time.time()) if issued is None else issued, lifetime, "HMAC-SHA1")


def test_associations_newest_first_and_expired_ones_dropped(store: Store) -> None:
    store.storeAssociation("https://op/", assoc("old", int(time.time()) - 10))
    store.storeAssociation("https://op/", assoc("new"))
    store.storeAssociation("https://op/", assoc("dead", int(time.time()) - 1000, 10))
    assert store.getAssociation("https://op/").handle == "new"
    assert store.getAssociation("https://op/", "old").handle == "old"
    assert store.getAssociation("https://op/", "dead") is None
    assert store.removeAssociation("https://op/", "new") is True
    assert store.removeAssociation("https://op/", "new") is False


def test_a_nonce_is_used_once(store: Store) -> None:
    now = int(time.time())
    assert store.useNonce("https://op/", now, "salt") is True
    assert store.useNonce("https://op/", now, "salt") is False  # replay


def test_stale_nonces_are_refused(store: Store) -> None:
    assert store.useNonce("https://op/", int(time.time()) - 6 * 3600, "salt") is False


def session(sid: str, user: str = "u", series: str | None = None) -> SessionRecord:
    now = time.time()
    return SessionRecord(sid, user, now, now + 3600, series, "UA", "127.0.0.1")


def test_sessions_revoke_one_user_or_series(store: Store) -> None:
    for sid, user, series in (("a", "u", None), ("b", "u", "s1"), ("c", "v", None)):
        store.create_session(session(sid, user, series))
    now = time.time()
    store.revoke_series_sessions("s1", now)
    assert set(store.revocations_after(0, now)[0]) == {"b"}
    store.revoke_user("u", now + 1)
    assert set(store.revocations_after(0, now)[0]) == {"a", "b"}
    assert [s.session_id for s in store.list_sessions("v", now)] == ["c"]
    assert store.list_sessions("u", now) == []


def test_revocation_log_positions_follow_commit_order_not_clocks(store: Store) -> None:
    """A revocation stamped with an older clock but committed later is still read after the newer one."""
    for sid in ("early", "late"):
        store.create_session(session(sid))
    now = time.time()
    store.revoke_session("late", now + 100)  # a worker whose clock runs ahead commits first
    seen, position = store.revocations_after(0, now)
    assert seen == ["late"]
    store.revoke_session("early", now - 100)  # another commits afterwards, stamped earlier
    assert store.revocations_after(position, now) == (["early"], position + 1)
    assert store.revocations_after(position + 1, now) == ([], position + 1)
    store.revoke_session("early", now)  # revoking twice logs nothing new
    assert store.revocations_after(position + 1, now)[0] == []


def series(sid: str = "s", token_hash: str = "h1") -> RememberRecord:
    now = time.time()
    return RememberRecord(sid, token_hash, "u", "nick", "e@x", now, now, now + 3600)


def test_series_rotation_is_compare_and_swap(store: Store) -> None:
    store.create_series(series())
    assert store.rotate_series("s", "h1", "h2", time.time()) is True
    assert store.rotate_series("s", "h1", "h3", time.time()) is False  # a stale token cannot rotate
    record = store.get_series("s")
    assert record is not None and record.token_hash == "h2" and record.previous_hash == "h1"
    store.revoke_series("s", time.time())
    assert store.rotate_series("s", "h2", "h4", time.time()) is False


def test_purge_removes_expired_rows(store: Store) -> None:
    store.create_session(session("x"))
    store.create_series(series())
    store.revoke_session("x", time.time())
    assert store.purge_expired(time.time() + 7200) == 2
    assert store.revocations_after(0, 0.0)[0] == []  # the log of expired sessions is purged too


def test_concurrent_use_from_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.create_session(session(f"{n}-{i}"))
                store.useNonce("https://op/", int(time.time()), f"{n}-{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_deleted_store_is_unavailable_until_restored(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    store = SQLiteStore(path)
    store.create_session(session("a"))
    path.rename(tmp_path / "moved")
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.revocations_after(0, time.time())
    (tmp_path / "moved").rename(path)
    store.ping()  # heals by itself
    store.close()


def test_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        SQLiteStore(tmp_path / "nope" / "gateway.sqlite3")
