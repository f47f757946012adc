"""The microblog's SQLite database: users and their posts.

One connection, guarded by a lock, in WAL mode; every method is synchronous
and is meant to be called off the event loop (``run_in_threadpool``). Writes
run in ``BEGIN IMMEDIATE`` transactions so that choosing a unique nickname
and claiming it are one step even with several app processes.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend_app.nicknames import make_unique_nickname, make_valid_nickname, nickname_fits
from gateway.types import Identity

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    nickname TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_by_user ON posts (user_id, id);
"""

_USER_BY_IDENTITY = "SELECT id, identity, nickname, email, created FROM users WHERE identity = ?"
_USER_BY_NICKNAME = "SELECT id, identity, nickname, email, created FROM users WHERE nickname = ?"
_USERS_WITH_POST_COUNTS = """
SELECT users.id, users.identity, users.nickname, users.email, users.created, COUNT(posts.id)
FROM users LEFT JOIN posts ON posts.user_id = users.id GROUP BY users.id ORDER BY users.id
"""
_RECENT_POSTS = """
SELECT posts.id, posts.body, posts.created, users.nickname FROM posts JOIN users ON users.id = posts.user_id
ORDER BY posts.id DESC LIMIT ?
"""
_POSTS_OF_USER = """
SELECT posts.id, posts.body, posts.created, users.nickname FROM posts JOIN users ON users.id = posts.user_id
WHERE posts.user_id = ? ORDER BY posts.id DESC LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    identity: str
    nickname: str
    email: str
    created: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A user as the administrators' page lists them."""

    user: User
    posts: int


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    body: str
    created: datetime
    author: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _user(row: tuple[int, str, str, str, str]) -> User:
    return User(row[0], row[1], row[2], row[3], _time(row[4]))


def _post(row: tuple[int, str, str, str]) -> Post:
    return Post(row[0], row[1], _time(row[2]), row[3])


class Database:
    """Users and posts in ``path``, created with its tables on :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the database is not open (is the app's lifespan running?)")
        return self._conn

    def sync_user(self, identity: Identity) -> User:
        """The user row for ``identity``: created on first sight, kept up to date after.

        The common case (nothing changed) is one indexed read and no write.
        """
        base = make_valid_nickname(identity.nickname, identity.email)
        with self._lock:
            conn = self._connection()
            row = conn.execute(_USER_BY_IDENTITY, (identity.user_id,)).fetchone()
            if row is not None and row[3] == identity.email and nickname_fits(row[2], base):
                return _user(row)
            conn.execute("BEGIN IMMEDIATE")
            try:
                user = self._write_user(conn, identity, base)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return user

    @staticmethod
    def _write_user(conn: sqlite3.Connection, identity: Identity, base: str) -> User:
        row = conn.execute("SELECT id, nickname FROM users WHERE identity = ?", (identity.user_id,)).fetchone()
        own_id, nickname = (row[0], row[1]) if row is not None else (None, "")

        def taken(candidate: str) -> bool:
            other = conn.execute("SELECT id FROM users WHERE nickname = ?", (candidate,)).fetchone()
            return other is not None and other[0] != own_id

        if not nickname_fits(nickname, base):
            nickname = make_unique_nickname(base, taken)
        if own_id is None:
            conn.execute(
                "INSERT INTO users (identity, nickname, email, created) VALUES (?, ?, ?, ?)",
                (identity.user_id, nickname, identity.email, _now()),
            )
        else:
            conn.execute("UPDATE users SET nickname = ?, email = ? WHERE id = ?", (nickname, identity.email, own_id))
        return _user(conn.execute(_USER_BY_IDENTITY, (identity.user_id,)).fetchone())

    def members(self) -> list[Member]:
        """Every user with their number of posts, in the order they were first seen."""
        with self._lock:
            rows = self._connection().execute(_USERS_WITH_POST_COUNTS).fetchall()
        return [Member(_user(row[:5]), row[5]) for row in rows]

    def user_by_nickname(self, nickname: str) -> User | None:
        with self._lock:
            row = self._connection().execute(_USER_BY_NICKNAME, (nickname,)).fetchone()
        return _user(row) if row is not None else None

    def add_post(self, user: User, body: str) -> Post:
        created = _now()
        with self._lock:
            cursor = self._connection().execute(
                "INSERT INTO posts (user_id, body, created) VALUES (?, ?, ?)", (user.id, body, created)
            )
        assert cursor.lastrowid is not None
        return Post(cursor.lastrowid, body, _time(created), user.nickname)

    def recent_posts(self, limit: int) -> list[Post]:
        """The newest ``limit`` posts of everyone, newest first."""
        with self._lock:
            rows = self._connection().execute(_RECENT_POSTS, (limit,)).fetchall()
        return [_post(row) for row in rows]

    def posts_of(self, user: User, limit: int) -> list[Post]:
        """The newest ``limit`` posts of ``user``, newest first."""
        with self._lock:
            rows = self._connection().execute(_POSTS_OF_USER, (user.id, limit)).fetchall()
        return [_post(row) for row in rows]


__all__ = ["Database", "Member", "Post", "User"]
