"""Remember-me series: rotation on use, theft detection, revocation."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.observe.events import Event, TheftSuspected, hash_id
from gateway.state.remember import Presented, RememberMe
from gateway.store import LinkRecord, SessionRecord, SQLiteStore
from gateway.types import Assurance, Identity

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


def everything_stored(store: SQLiteStore) -> str:
    """Every row of the store, read through SQLite (a fresh row may still sit in the WAL, not the main file)."""
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        return "\n".join(conn.iterdump())


def test_the_token_is_never_stored(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    series_id, cookie = remember.issue(ALICE, "UA", time.time())
    token = remember.codec.decode(cookie).split(":", 1)[1]  # type: ignore[union-attr]
    dump = everything_stored(store)
    assert series_id in dump and hashlib.sha256(token.encode()).hexdigest() in dump  # the row is seen...
    assert token not in dump  # ...and holds only the token's hash


def test_an_old_token_revokes_the_series_and_its_sessions(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    now = time.time()
    series_id, stolen = remember.issue(ALICE, "UA", now)
    legit = remember.restore(stolen, now)
    assert legit is not None and legit.cookie is not None
    store.create_session(SessionRecord("restored", ALICE.user_id, now, now + 60, series_id))
    assert remember.restore(stolen, now + 1) is None  # the copy is used after rotation
    assert remember.restore(legit.cookie, now + 1) is None  # the whole series is gone
    assert "restored" in store.revocations_after(0, now)[0]


# -- the grace window lets parallel tabs through, nothing else ---------------------------------


def rotated_once(store: SQLiteStore, now: float) -> tuple[RememberMe, str, str, str]:
    """A series restored once at ``now``: (remember, series id, previous cookie, current cookie)."""
    remember = RememberMe(store, KEYS, lifetime=3600, grace=10)
    series_id, first = remember.issue(ALICE, "UA", now - 100)
    restored = remember.restore(first, now)
    assert restored is not None and restored.cookie is not None
    return remember, series_id, first, restored.cookie


def test_after_logout_the_previous_token_does_not_restore_within_the_grace_window(store: SQLiteStore) -> None:
    now = time.time()
    remember, series_id, previous, current = rotated_once(store, now)
    remember.revoke(series_id, now + 1)  # logout
    assert remember.restore(previous, now + 2) is None
    assert remember.restore(current, now + 2) is None


def test_after_signing_out_everywhere_the_previous_token_does_not_restore(store: SQLiteStore) -> None:
    now = time.time()
    remember, _, previous, current = rotated_once(store, now)
    store.revoke_user(ALICE.user_id, now + 1)
    assert remember.restore(previous, now + 2) is None
    assert remember.restore(current, now + 2) is None


def test_after_a_theft_the_previous_token_does_not_restore(store: SQLiteStore) -> None:
    now = time.time()
    remember, _, stolen, current = rotated_once(store, now)
    newest = remember.restore(current, now + 20)  # rotated again: ``current`` is now the previous token
    assert newest is not None and newest.cookie is not None
    assert remember.restore(stolen, now + 21) is None  # the thief's old copy: theft, series revoked
    assert remember.restore(current, now + 22) is None  # the previous token, 2 s after its rotation
    assert remember.restore(newest.cookie, now + 22) is None


def test_a_token_two_rotations_old_is_theft_even_within_the_grace_window(store: SQLiteStore) -> None:
    now = time.time()
    remember, series_id, oldest, current = rotated_once(store, now)
    newest = remember.restore(current, now + 1)
    assert newest is not None and newest.cookie is not None
    assert remember.restore(oldest, now + 2) is None  # neither current nor previous
    record = store.get_series(series_id)
    assert record is not None and record.revoked_at is not None  # flagged: the series is gone
    assert remember.restore(newest.cookie, now + 3) is None


def test_previous_token_within_the_grace_window_is_not_theft(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=10)
    _, cookie = remember.issue(ALICE, "UA", time.time())
    first = remember.restore(cookie, time.time())
    parallel = remember.restore(cookie, time.time())  # a second tab, same moment
    assert first is not None and parallel is not None and parallel.cookie is None
    assert first.cookie is not None and remember.restore(first.cookie, time.time()) is not None


def test_a_restored_session_keeps_the_provider_that_vouched_for_the_sign_in(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    _, cookie = remember.issue(Identity(ALICE.user_id, "alice", provider="Steam"), "UA", time.time())
    restored = remember.restore(cookie, time.time())
    assert restored is not None and restored.identity.provider == "Steam"


def test_a_restored_session_keeps_the_groups_the_provider_gave_the_sign_in(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    _, cookie = remember.issue(Identity(ALICE.user_id, "alice", groups=("admins", "staff"), provider="SSO"), "UA",
                               time.time())
    restored = remember.restore(cookie, time.time())
    assert restored is not None and restored.identity.groups == ("admins", "staff")


def test_a_series_stored_before_groups_were_kept_restores_without_groups(tmp_path: Path) -> None:
    """A store made by an older version gains the column (empty) on open; its series still restore."""
    path = tmp_path / "old.sqlite3"
    SQLiteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("ALTER TABLE remember_series DROP COLUMN provider_groups")
    old = SQLiteStore(path)
    try:
        _, cookie = RememberMe(old, KEYS, lifetime=3600, grace=0).issue(ALICE, "UA", time.time())
        restored = RememberMe(old, KEYS, lifetime=3600, grace=0).restore(cookie, time.time())
        assert restored is not None and restored.identity.groups == ()
    finally:
        old.close()


def test_the_previous_token_after_the_grace_window_is_theft(store: SQLiteStore) -> None:
    now = time.time()
    remember, series_id, previous, current = rotated_once(store, now)  # grace = 10 s
    assert remember.restore(previous, now + 10) is not None  # a parallel tab, just in time
    assert remember.restore(previous, now + 11) is None  # a copy, used after the window: theft
    record = store.get_series(series_id)
    assert record is not None and record.revoked_at is not None
    assert remember.restore(current, now + 12) is None


def test_expired_and_forged_cookies_do_nothing(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=60, grace=0)
    _, cookie = remember.issue(ALICE, "UA", time.time())
    assert remember.restore(cookie, time.time() + 61) is None
    assert remember.restore("garbage", time.time()) is None
    other = RememberMe(store, ["z" * 40], lifetime=60, grace=0)
    assert other.restore(cookie, time.time()) is None


# -- at logout: only the series' own browser reaches what the sign-in left ------------------------


def test_at_logout_the_current_token_and_the_previous_within_grace_are_genuine(store: SQLiteStore) -> None:
    now = time.time()
    remember, series_id, previous, current = rotated_once(store, now)  # grace = 10 s
    assert remember.presented(current, now + 1) == Presented(series_id, True)
    assert remember.presented(previous, now + 1) == Presented(series_id, True)  # a parallel tab's logout
    record = store.get_series(series_id)
    assert record is not None and record.revoked_at is None  # judging is not ending: the caller ends it


@pytest.mark.parametrize("age", ["two-rotations-old", "previous-after-grace"])
def test_at_logout_a_stale_token_is_theft_evidence(store: SQLiteStore, age: str) -> None:
    """As at restore: the series and its sessions end, the theft is emitted, and the cookie is not genuine."""
    now = time.time()
    remember, series_id, stale, current = rotated_once(store, now)
    when = now + 11
    if age == "two-rotations-old":
        assert remember.restore(current, now + 1) is not None
        when = now + 2
    store.create_session(SessionRecord("restored", ALICE.user_id, now, now + 60, series_id))
    heard: list[Event] = []
    remember.events.subscribe(heard.append)
    assert remember.presented(stale, when) == Presented(series_id, False)
    record = store.get_series(series_id)
    assert record is not None and record.revoked_at is not None
    assert "restored" in store.revocations_after(0, now)[0]
    assert heard == [TheftSuspected(ALICE.user_id, hash_id(series_id))]


def test_at_logout_an_ended_or_unknown_series_is_not_genuine_and_a_forged_cookie_names_none(
        store: SQLiteStore) -> None:
    now = time.time()
    remember = RememberMe(store, KEYS, lifetime=3600, grace=10)
    series_id, cookie = remember.issue(ALICE, "UA", now)
    remember.revoke(series_id, now)
    assert remember.presented(cookie, now + 1) == Presented(series_id, False)
    assert remember.presented(remember.codec.encode("no-such-series:token"), now) == Presented("no-such-series",
                                                                                                False)
    assert remember.presented("garbage", now) is None


def test_a_series_whose_link_was_removed_restores_nobody_and_ends(store: SQLiteStore) -> None:
    """A series written while its link was being removed (the store's unlink ends the ones it finds)."""
    now = time.time()
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    store.link_identity(LinkRecord("https://op.example#sub-1", ALICE.user_id, "OP", now))
    linked = dataclasses.replace(ALICE, link_key="https://op.example#sub-1")
    _, still = remember.issue(linked, "UA", now)
    restored = remember.restore(still, now)
    assert restored is not None and restored.identity.link_key == "https://op.example#sub-1"
    store.unlink_identity("https://op.example#sub-1", ALICE.user_id, now)  # ends that series
    late_id, late = remember.issue(linked, "UA", now + 1)  # ... but not this one, written just after
    assert remember.restore(late, now + 2) is None
    record = store.get_series(late_id)
    assert record is not None and record.revoked_at is not None


def test_a_restore_carries_the_sign_ins_assurance_not_a_fresh_one(store: SQLiteStore) -> None:
    """A remember-me cookie proves the browser kept it, not that the person authenticated again: a step-up
    rule must see the sign-in's time and level, however recent the restore."""
    remember = RememberMe(store, KEYS, lifetime=3600 * 24, grace=60)
    signed_in = Assurance(time.time() - 3000, "urn:example:mfa", ("pwd", "otp"))
    _, cookie = remember.issue(ALICE, "UA", time.time() - 3000, signed_in)
    restored = remember.restore(cookie, time.time())
    assert restored is not None and restored.assurance == signed_in
    again = remember.restore(restored.cookie, time.time() + 10)  # and at every later restore of the series
    assert again is not None and again.assurance == signed_in


def test_a_series_from_before_assurance_was_recorded_restores_its_creation_time(store: SQLiteStore) -> None:
    remember = RememberMe(store, KEYS, lifetime=3600, grace=0)
    created = time.time() - 500
    series_id, cookie = remember.issue(ALICE, "UA", created)
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute("UPDATE remember_series SET assurance = '' WHERE series_id = ?", (series_id,))
    restored = remember.restore(cookie, time.time())
    assert restored is not None and restored.assurance == Assurance(created)
