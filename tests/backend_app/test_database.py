from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend_app.database import Database
from gateway.types import Identity
from tests.backend_app.support import ALICE, BOB


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "new" / "microblog.sqlite3")
    db.open()
    yield db
    db.close()


def test_open_creates_the_file_in_wal_mode(database: Database) -> None:
    assert database.path.exists()
    with sqlite3.connect(database.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"users", "posts"} <= tables


def test_first_visit_creates_the_user_and_later_visits_find_it(database: Database) -> None:
    first = database.sync_user(ALICE)
    again = database.sync_user(ALICE)
    assert first == again
    assert (first.identity, first.nickname, first.email) == (ALICE.user_id, "alice", "alice@example.com")


def test_changed_nickname_and_email_are_updated(database: Database) -> None:
    before = database.sync_user(ALICE)
    after = database.sync_user(Identity(ALICE.user_id, "ally", "ally@example.com"))
    assert after.id == before.id
    assert (after.nickname, after.email) == ("ally", "ally@example.com")
    assert database.user_by_nickname("alice") is None


def test_nickname_of_another_identity_gets_a_number(database: Database) -> None:
    database.sync_user(Identity("https://one.example/", "sam"))
    second = database.sync_user(Identity("https://two.example/", "sam"))
    third = database.sync_user(Identity("https://three.example/", "sam"))
    assert (second.nickname, third.nickname) == ("sam2", "sam3")


def test_numbered_nickname_is_stable_while_the_provider_sends_the_same(database: Database) -> None:
    first = Identity("https://one.example/", "sam")
    database.sync_user(first)
    second = database.sync_user(Identity("https://two.example/", "sam"))
    database.sync_user(Identity(first.user_id, "samuel"))  # frees "sam"
    assert database.sync_user(Identity("https://two.example/", "sam")).nickname == second.nickname == "sam2"


def test_posts_are_listed_newest_first_with_their_author(database: Database) -> None:
    alice, bob = database.sync_user(ALICE), database.sync_user(BOB)
    database.add_post(alice, "one")
    database.add_post(bob, "two")
    database.add_post(alice, "three")
    assert [(p.body, p.author) for p in database.recent_posts(10)] == [
        ("three", "alice"),
        ("two", "bob"),
        ("one", "alice"),
    ]
    assert [p.body for p in database.recent_posts(2)] == ["three", "two"]
    assert [p.body for p in database.posts_of(alice, 10)] == ["three", "one"]


def test_closed_database_refuses_to_work(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        Database(tmp_path / "db.sqlite3").recent_posts(1)


def test_members_are_listed_first_seen_first_with_their_post_counts(database: Database) -> None:
    alice = database.sync_user(ALICE)
    database.sync_user(Identity("https://two.example/", "sam"))
    database.add_post(alice, "a")
    database.add_post(alice, "b")
    members = database.members()
    assert [(m.user.nickname, m.posts) for m in members] == [("alice", 2), ("sam", 0)]
    assert members[0].user == alice
