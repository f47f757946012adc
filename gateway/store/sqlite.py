"""The default store: one SQLite file under the state directory.

python3-openid's own ``SQLiteStore`` is unusable here: importing it fails
without psycopg2, it shares one cursor between threads and ``createTables``
has no ``IF NOT EXISTS``. This store uses one connection guarded by a lock
(calls arrive from a thread pool), WAL mode so readers do not wait on the
writer, and turns every sqlite3 error into ``StoreUnavailable``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from openid.association import Association
from openid.store import nonce as openid_nonce

from gateway.errors import StoreUnavailable
from gateway.observe import metrics
from gateway.store.base import (
    CUTOFF_KEEP,
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    RevocationPushes,
    SessionRecord,
    assurance_of,
    assurance_text,
    cutoff_entry,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS associations (
    server_url TEXT NOT NULL, handle TEXT NOT NULL, secret BLOB NOT NULL,
    issued INTEGER NOT NULL, lifetime INTEGER NOT NULL, assoc_type TEXT NOT NULL,
    PRIMARY KEY (server_url, handle));
CREATE TABLE IF NOT EXISTS nonces (
    server_url TEXT NOT NULL, timestamp INTEGER NOT NULL, salt TEXT NOT NULL,
    PRIMARY KEY (server_url, timestamp, salt));
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
    series_id TEXT, user_agent TEXT NOT NULL DEFAULT '', client_addr TEXT NOT NULL DEFAULT '',
    revoked_at REAL, link_key TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_revoked ON sessions (revoked_at);
CREATE INDEX IF NOT EXISTS sessions_series ON sessions (series_id);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS remember_series (
    series_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, user_id TEXT NOT NULL,
    nickname TEXT NOT NULL, email TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL,
    expires REAL NOT NULL, previous_hash TEXT, rotated_at REAL, user_agent TEXT NOT NULL DEFAULT '',
    revoked_at REAL, provider TEXT NOT NULL DEFAULT '', link_key TEXT NOT NULL DEFAULT '',
    provider_groups TEXT NOT NULL DEFAULT '[]', assurance TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS remember_user ON remember_series (user_id);
CREATE TABLE IF NOT EXISTS login_states (
    state_id TEXT PRIMARY KEY, protocol TEXT NOT NULL, provider TEXT NOT NULL, next TEXT NOT NULL,
    remember INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS provider_sessions (
    session_id TEXT PRIMARY KEY, provider TEXT NOT NULL, sub TEXT NOT NULL, sid TEXT, id_token TEXT NOT NULL,
    expires REAL NOT NULL, series_id TEXT);
CREATE INDEX IF NOT EXISTS provider_sessions_sub ON provider_sessions (provider, sub);
CREATE INDEX IF NOT EXISTS provider_sessions_sid ON provider_sessions (provider, sid);
CREATE TABLE IF NOT EXISTS logout_tokens (
    issuer TEXT NOT NULL, jti TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (issuer, jti));
CREATE TABLE IF NOT EXISTS linked_identities (
    identity_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, provider TEXT NOT NULL, created REAL NOT NULL,
    how TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS linked_identities_user ON linked_identities (user_id);
CREATE TABLE IF NOT EXISTS rate_hits (
    bucket TEXT NOT NULL, window_no INTEGER NOT NULL, hits INTEGER NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (bucket, window_no));
"""


def _groups(text: str) -> tuple[str, ...]:
    """A series' provider groups, as stored (a JSON list of names)."""
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    return tuple(str(name) for name in value) if isinstance(value, list) else ()


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older version up to :data:`SCHEMA` (columns added since, with their defaults).

    Tables added since (``provider_sessions``, ``logout_tokens``, ``linked_identities``, ``rate_hits``) need nothing
    here: :data:`SCHEMA` creates them when missing. ``provider_sessions.series_id`` is filled in from the
    sessions still there, so a remember-me sign-in made before the upgrade stays reachable by a logout.
    ``link_key`` (sessions and series) is '' for those made before: nothing recorded which link started them.
    """
    if "provider" not in _columns(conn, "remember_series"):
        conn.execute("ALTER TABLE remember_series ADD COLUMN provider TEXT NOT NULL DEFAULT ''")
    if "provider_groups" not in _columns(conn, "remember_series"):  # a series' provider groups (JSON list)
        with _write(conn):
            if "provider_groups" not in _columns(conn, "remember_series"):
                conn.execute("ALTER TABLE remember_series ADD COLUMN provider_groups TEXT NOT NULL DEFAULT '[]'")
    if "assurance" not in _columns(conn, "remember_series"):  # the sign-in's auth_time, acr, amr (JSON; '' before)
        with _write(conn):
            if "assurance" not in _columns(conn, "remember_series"):
                conn.execute("ALTER TABLE remember_series ADD COLUMN assurance TEXT NOT NULL DEFAULT ''")
    if "series_id" not in _columns(conn, "provider_sessions"):
        with _write(conn):  # checked again inside: another process may have just migrated it
            if "series_id" not in _columns(conn, "provider_sessions"):
                conn.execute("ALTER TABLE provider_sessions ADD COLUMN series_id TEXT")
                conn.execute("UPDATE provider_sessions SET series_id = (SELECT s.series_id FROM sessions s"
                             " WHERE s.session_id = provider_sessions.session_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS provider_sessions_series ON provider_sessions (series_id)")
    for table in ("sessions", "remember_series"):
        if "link_key" not in _columns(conn, table):
            with _write(conn):  # checked again inside: another process may have just migrated it
                if "link_key" not in _columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN link_key TEXT NOT NULL DEFAULT ''")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``: SQLite's single writer), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _Handle:
    """The store's connection, closable without the store.

    A store dropped without :meth:`SQLiteStore.close` (a start-up that failed
    half-way, a test) still closes its connection when it is collected, or at
    exit: ``weakref.finalize`` calls :meth:`close`, which holds no reference
    to the store.
    """

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                pass


class SQLiteStore:
    """Associations, nonces, sessions, remember-me series and sign-ins in flight in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle = _Handle()
        weakref.finalize(self, self._handle.close)
        with self._lock:
            try:
                self._handle.conn = self._connect(create=True)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"SQLite store {str(self.path)!r}: {exc}") from exc

    # -- plumbing ---------------------------------------------------------

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        # Only start-up creates the file: a store deleted under a running gateway
        # would otherwise come back empty and forget every revocation.
        if not self.path.parent.is_dir():
            raise StoreUnavailable(f"state directory {str(self.path.parent)!r} does not exist")
        if not create and not self.path.exists():
            raise StoreUnavailable(f"SQLite store {str(self.path)!r} is missing")
        if create:
            self._make_private()
        conn = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            _migrate(conn)
        except BaseException:  # not a database, locked, disk full: the half-made connection must not leak
            conn.close()
            raise
        return conn

    def _make_private(self) -> None:
        """Create the file 0600 whatever the umask, and tighten one created looser before.

        It holds session ids and association secrets. SQLite gives the -wal and
        -shm files it creates the main file's mode; older ones are tightened too.
        """
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            pass
        else:
            os.fchmod(fd, 0o600)  # the umask may have taken bits away (0o277 would leave it unwritable)
            os.close(fd)
        for path in (self.path, *(self.path.with_name(self.path.name + end) for end in ("-wal", "-shm"))):
            try:
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot make %s private (mode 0600): %s", path, exc.strerror)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` under the lock; reconnect after a failure so the store heals itself.

        Timed (lock wait included: that is what a request waits) for the store metrics.
        """
        started = time.perf_counter()
        failed = True  # until work returns: a missing file raises StoreUnavailable before any sqlite3.Error
        with self._lock:
            try:
                if self._handle.conn is None or not self.path.exists():
                    self._reset()
                    self._handle.conn = self._connect()
                result = work(self._handle.conn)
                failed = False
                return result
            except sqlite3.Error as exc:
                self._reset()
                raise StoreUnavailable(f"SQLite store {str(self.path)!r}: {exc}") from exc
            finally:
                metrics.observe_store(time.perf_counter() - started, failed)

    def _reset(self) -> None:
        self._handle.close()

    _transaction = staticmethod(_write)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._call(lambda conn: conn.execute(sql, params).rowcount)

    def ping(self) -> None:
        self._call(lambda conn: conn.execute("SELECT count(*) FROM sessions WHERE 0").fetchone())

    def close(self) -> None:
        with self._lock:
            self._reset()

    # -- python3-openid's OpenIDStore interface ---------------------------

    def storeAssociation(self, server_url: str, association: Association) -> None:
        self._execute(
            "INSERT OR REPLACE INTO associations VALUES (?, ?, ?, ?, ?, ?)",
            (server_url, association.handle, association.secret, association.issued,
             association.lifetime, association.assoc_type),
        )

    def getAssociation(self, server_url: str, handle: str | None = None) -> Association | None:
        def work(conn: sqlite3.Connection) -> list[Any]:
            if handle is None:
                sql = "SELECT handle, secret, issued, lifetime, assoc_type FROM associations WHERE server_url = ?"
                return conn.execute(sql, (server_url,)).fetchall()
            sql = ("SELECT handle, secret, issued, lifetime, assoc_type FROM associations"
                   " WHERE server_url = ? AND handle = ?")
            return conn.execute(sql, (server_url, handle)).fetchall()

        live: list[Association] = []
        for row in self._call(work):
            assoc = Association(row[0], bytes(row[1]), row[2], row[3], row[4])
            if assoc.expiresIn == 0:
                self.removeAssociation(server_url, assoc.handle)
            else:
                live.append(assoc)
        return max(live, key=lambda a: a.issued) if live else None

    def removeAssociation(self, server_url: str, handle: str) -> bool:
        sql = "DELETE FROM associations WHERE server_url = ? AND handle = ?"
        return self._execute(sql, (server_url, handle)) > 0

    def useNonce(self, server_url: str, timestamp: int, salt: str) -> bool:
        """Record a response nonce; False when seen before or outside the skew window (replay)."""
        if abs(timestamp - time.time()) > openid_nonce.SKEW:
            return False

        def work(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute("INSERT INTO nonces VALUES (?, ?, ?)", (server_url, timestamp, salt))
            except sqlite3.IntegrityError:
                return False
            return True

        return self._call(work)

    def cleanupNonces(self) -> int:
        return self._execute("DELETE FROM nonces WHERE timestamp < ?", (int(time.time()) - openid_nonce.SKEW,))

    def cleanupAssociations(self) -> int:
        return self._execute("DELETE FROM associations WHERE issued + lifetime < ?", (int(time.time()),))

    # -- sessions ---------------------------------------------------------

    def create_session(self, record: SessionRecord) -> None:
        """Record a session; one restored from a series revoked meanwhile, or started by a link removed
        meanwhile, is born revoked.

        A restore that checked the series just before a logout ended it, or a
        sign-in that found the link just before it was unlinked, must not leave
        a live session behind.
        """

        def work(conn: sqlite3.Connection) -> None:
            with self._transaction(conn):
                conn.execute("INSERT INTO sessions (session_id, user_id, created, expires, series_id, user_agent,"
                             " client_addr, link_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (record.session_id, record.user_id, record.created, record.expires,
                              record.series_id, record.user_agent[:256], record.client_addr, record.link_key))
                series_revoked = record.series_id is not None and conn.execute(
                    "SELECT 1 FROM remember_series WHERE series_id = ? AND revoked_at IS NOT NULL",
                    (record.series_id,)).fetchone()
                unlinked = record.link_key and not conn.execute(
                    "SELECT 1 FROM linked_identities WHERE identity_key = ? AND user_id = ?",
                    (record.link_key, record.user_id)).fetchone()
                if series_revoked or unlinked:
                    self._revoke_where(conn, self._BY_SESSION, record.session_id, record.created)

        self._call(work)

    # Which sessions a revocation ends, by what they share. Fixed strings, never user input.
    _BY_SESSION = "session_id = ?"
    _BY_SERIES = "series_id = ?"
    _BY_USER = "user_id = ?"
    _EVERY = "session_id != ?"  # with "": every session (ids are never empty)

    @staticmethod
    def _revoke_where(conn: sqlite3.Connection, where: str, key: str, now: float) -> list[str]:
        """Mark live sessions revoked and log them, in the caller's transaction.

        The log's sequence numbers follow commit order (SQLite has one writer at
        a time), so a reader that remembers the last number it saw misses no
        revocation, however the writers' clocks and commits interleave.
        Returns the ids of the matching unexpired sessions, revoked now or
        before, for the caller's in-memory revocation set.
        """
        conn.execute(f"INSERT INTO revocations (session_id, expires) SELECT session_id, expires FROM sessions"  # noqa: S608
                     f" WHERE {where} AND revoked_at IS NULL", (key,))
        conn.execute(f"UPDATE sessions SET revoked_at = ? WHERE {where} AND revoked_at IS NULL",  # noqa: S608
                     (now, key))
        rows = conn.execute(f"SELECT session_id FROM sessions WHERE {where} AND expires > ?",  # noqa: S608
                            (key, now)).fetchall()
        return [row[0] for row in rows]

    @classmethod
    def _end_series(cls, conn: sqlite3.Connection, series_id: str, now: float) -> list[str]:
        """Mark a remember-me series revoked and end every session restored from it, in the caller's transaction."""
        conn.execute("UPDATE remember_series SET revoked_at = ? WHERE series_id = ? AND revoked_at IS NULL",
                     (now, series_id))
        return cls._revoke_where(conn, cls._BY_SERIES, series_id, now)

    @staticmethod
    def _log_cutoff(conn: sqlite3.Connection, user_id: str, now: float) -> None:
        """Log the bearer-token cutoff of ``user_id`` ("": everyone) in the caller's transaction."""
        conn.execute("INSERT INTO revocations (session_id, expires) VALUES (?, ?)",
                     (cutoff_entry(user_id, now), now + CUTOFF_KEEP))

    def revoke_session(self, session_id: str, now: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with self._transaction(conn):
                self._revoke_where(conn, self._BY_SESSION, session_id, now)

        self._call(work)

    def revoke_user(self, user_id: str, now: float) -> list[str]:
        """Sign a user out everywhere: every session and every remember-me series."""

        def work(conn: sqlite3.Connection) -> list[str]:
            with self._transaction(conn):
                conn.execute("UPDATE remember_series SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                             (now, user_id))
                self._log_cutoff(conn, user_id, now)
                return self._revoke_where(conn, self._BY_USER, user_id, now)

        return self._call(work)

    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        sql = ("SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires > ?"
               " ORDER BY created DESC")
        rows = self._call(lambda conn: conn.execute(sql, (user_id, now)).fetchall())
        return [SessionRecord(*row) for row in rows]

    def list_all_sessions(self, now: float) -> list[SessionRecord]:
        sql = "SELECT * FROM sessions WHERE revoked_at IS NULL AND expires > ? ORDER BY created DESC"
        return [SessionRecord(*row) for row in self._call(lambda conn: conn.execute(sql, (now,)).fetchall())]

    def revoke_all(self, now: float) -> list[str]:
        def work(conn: sqlite3.Connection) -> list[str]:
            with self._transaction(conn):
                conn.execute("UPDATE remember_series SET revoked_at = ? WHERE revoked_at IS NULL", (now,))
                self._log_cutoff(conn, "", now)
                return self._revoke_where(conn, self._EVERY, "", now)

        return self._call(work)

    def revocations_after(self, seq: int, now: float) -> tuple[list[str], int]:
        sql = "SELECT seq, session_id FROM revocations WHERE seq > ? AND expires > ? ORDER BY seq"
        rows = self._call(lambda conn: conn.execute(sql, (seq, now)).fetchall())
        return [row[1] for row in rows], (rows[-1][0] if rows else seq)

    # -- OpenID Connect logout ----------------------------------------------

    _PROVIDER_COLUMNS = "p.session_id, p.provider, p.sub, p.sid, p.id_token, p.expires, p.series_id"
    # The record of the sign-in that started a series (``{}``: the series id's SQL).
    _PROVIDER_OF_SERIES = (f"SELECT {_PROVIDER_COLUMNS} FROM provider_sessions p"  # noqa: S608
                           " WHERE p.series_id = {} ORDER BY p.expires DESC LIMIT 1")

    def put_provider_session(self, record: ProviderSessionRecord) -> None:
        """Kept while its session or its series lives: :meth:`purge_expired` asks the series."""
        self._execute("INSERT OR REPLACE INTO provider_sessions (session_id, provider, sub, sid, id_token, expires,"
                      " series_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (record.session_id, record.provider, record.sub, record.sid, record.id_token, record.expires,
                       record.series_id))

    def get_provider_session(self, session_id: str) -> ProviderSessionRecord | None:
        """The session's own record, else the one of the sign-in that started the series it was restored from."""
        own = f"SELECT {self._PROVIDER_COLUMNS} FROM provider_sessions p WHERE p.session_id = ?"  # noqa: S608
        of_series = self._PROVIDER_OF_SERIES.format("(SELECT s.series_id FROM sessions s WHERE s.session_id = ?)")

        def work(conn: sqlite3.Connection) -> Any:
            return (conn.execute(own, (session_id,)).fetchone()
                    or conn.execute(of_series, (session_id,)).fetchone())

        row = self._call(work)
        return ProviderSessionRecord(*row) if row else None

    def get_series_provider_session(self, series_id: str) -> ProviderSessionRecord | None:
        sql = self._PROVIDER_OF_SERIES.format("?")
        row = self._call(lambda conn: conn.execute(sql, (series_id,)).fetchone())
        return ProviderSessionRecord(*row) if row else None

    def revoke_provider_sessions(self, provider: str, sub: str | None, sid: str | None, now: float) -> list[str]:
        """The sessions of ``sid`` when given (and of ``sub`` too when both are), else every one of ``sub``."""
        if sid is None and sub is None:
            return []
        # The series from the record itself: the sign-in's session may have expired and been purged long ago.
        sql = ("SELECT p.session_id, COALESCE(p.series_id, s.series_id) FROM provider_sessions p"
               " LEFT JOIN sessions s USING (session_id)"
               " WHERE p.provider = ? AND (? IS NULL OR p.sid = ?) AND (? IS NULL OR p.sub = ?)")

        def work(conn: sqlite3.Connection) -> list[str]:
            with self._transaction(conn):
                rows = conn.execute(sql, (provider, sid, sid, sub, sub)).fetchall()
                ended: set[str] = set()
                for session_id, series_id in rows:
                    ended.update(self._revoke_where(conn, self._BY_SESSION, session_id, now))
                    if series_id is not None:
                        ended.update(self._end_series(conn, series_id, now))
                return sorted(ended)

        return self._call(work)

    def use_logout_token(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """One ``INSERT``: of two workers given the same token, one records it, the other sees a replay."""

        def work(conn: sqlite3.Connection) -> bool:
            with self._transaction(conn):
                conn.execute("DELETE FROM logout_tokens WHERE issuer = ? AND jti = ? AND expires < ?",
                             (issuer, jti, now))
                try:
                    conn.execute("INSERT INTO logout_tokens VALUES (?, ?, ?)", (issuer, jti, expires))
                except sqlite3.IntegrityError:
                    return False
                return True

        return self._call(work)

    # -- remember-me series -----------------------------------------------

    def create_series(self, record: RememberRecord) -> None:
        self._execute(
            "INSERT INTO remember_series (series_id, token_hash, user_id, nickname, email, created, last_used,"
            " expires, user_agent, provider, link_key, provider_groups, assurance)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.series_id, record.token_hash, record.user_id, record.nickname, record.email,
             record.created, record.last_used, record.expires, record.user_agent[:256], record.provider,
             record.link_key, json.dumps(list(record.groups)), assurance_text(record.assurance)),
        )

    def get_series(self, series_id: str) -> RememberRecord | None:
        sql = ("SELECT series_id, token_hash, user_id, nickname, email, created, last_used, expires, previous_hash,"
               " rotated_at, user_agent, revoked_at, provider, link_key, provider_groups, assurance"
               " FROM remember_series WHERE series_id = ?")
        row = self._call(lambda conn: conn.execute(sql, (series_id,)).fetchone())
        if not row:
            return None
        return dataclasses.replace(RememberRecord(*row[:-2]), groups=_groups(row[-2]), assurance=assurance_of(row[-1]))

    def rotate_series(self, series_id: str, old_hash: str, new_hash: str, now: float) -> bool:
        """Replace the token hash only if ``old_hash`` is still current (compare-and-swap)."""
        sql = ("UPDATE remember_series SET previous_hash = token_hash, token_hash = ?, rotated_at = ?,"
               " last_used = ? WHERE series_id = ? AND token_hash = ? AND revoked_at IS NULL")
        return self._execute(sql, (new_hash, now, now, series_id, old_hash)) == 1

    def revoke_series(self, series_id: str, now: float) -> list[str]:
        """End a remember-me series and every session restored from it, in one transaction."""

        def work(conn: sqlite3.Connection) -> list[str]:
            with self._transaction(conn):
                return self._end_series(conn, series_id, now)

        return self._call(work)

    # -- sign-ins in flight ------------------------------------------------

    def put_login_state(self, record: LoginStateRecord) -> None:
        self._execute(
            "INSERT INTO login_states VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.state_id, record.protocol, record.provider, record.next, int(record.remember),
             record.created, record.expires, json.dumps(dict(record.data), separators=(",", ":"))),
        )

    def take_login_state(self, state_id: str, now: float) -> LoginStateRecord | None:
        """One ``DELETE … RETURNING`` statement: SQLite runs one writer at a time, so one take wins."""
        sql = ("DELETE FROM login_states WHERE state_id = ?"
               " RETURNING state_id, protocol, provider, next, remember, created, expires, data")
        rows = self._call(lambda conn: conn.execute(sql, (state_id,)).fetchall())
        if not rows or rows[0][6] <= now:
            return None
        row = rows[0]
        try:
            data = json.loads(row[7])
        except ValueError:
            data = None
        if not isinstance(data, dict):  # written by put_login_state: only a damaged file gets here
            raise StoreUnavailable(f"SQLite store {str(self.path)!r}: login state {state_id!r} is unreadable")
        return LoginStateRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], data)

    # -- linked sign-ins ---------------------------------------------------

    def link_identity(self, record: LinkRecord) -> bool:
        """One ``INSERT … ON CONFLICT``: of two links of one key, the first written wins; never replaced."""
        # The no-op update matches only this very record (written before: True, as Redis answers a retried call).
        sql = ("INSERT INTO linked_identities VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity_key) DO UPDATE"
               " SET user_id = user_id WHERE user_id = excluded.user_id AND provider = excluded.provider"
               " AND created = excluded.created AND how = excluded.how")
        return self._execute(sql, (record.identity_key, record.user_id, record.provider, record.created,
                                   record.how)) == 1

    def linked_user(self, identity_key: str) -> LinkRecord | None:
        sql = "SELECT * FROM linked_identities WHERE identity_key = ?"
        row = self._call(lambda conn: conn.execute(sql, (identity_key,)).fetchone())
        return LinkRecord(*row) if row else None

    def list_links(self, user_id: str) -> list[LinkRecord]:
        sql = "SELECT * FROM linked_identities WHERE user_id = ? ORDER BY created"
        return [LinkRecord(*row) for row in self._call(lambda conn: conn.execute(sql, (user_id,)).fetchall())]

    def unlink_identity(self, identity_key: str, user_id: str, now: float) -> list[str] | None:
        """One transaction: the link goes, and with it the user's sessions and series it started."""
        started = "WHERE user_id = ? AND link_key = ?"

        def work(conn: sqlite3.Connection) -> list[str] | None:
            with self._transaction(conn):
                if not conn.execute("DELETE FROM linked_identities WHERE identity_key = ? AND user_id = ?",
                                    (identity_key, user_id)).rowcount:
                    return None
                ended: set[str] = set()
                for (series_id,) in conn.execute(f"SELECT series_id FROM remember_series {started}",  # noqa: S608
                                                 (user_id, identity_key)).fetchall():
                    ended.update(self._end_series(conn, series_id, now))
                for (session_id,) in conn.execute(f"SELECT session_id FROM sessions {started}",  # noqa: S608
                                                  (user_id, identity_key)).fetchall():
                    ended.update(self._revoke_where(conn, self._BY_SESSION, session_id, now))
                return sorted(ended)

        return self._call(work)

    # -- rate limits ---------------------------------------------------------

    def add_hit(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        """One UPSERT in a write transaction: SQLite's single writer makes the count exact across workers."""
        number = int(now // window)

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            with self._transaction(conn):
                current = conn.execute(
                    "INSERT INTO rate_hits VALUES (?, ?, 1, ?) ON CONFLICT (bucket, window_no)"
                    " DO UPDATE SET hits = hits + 1 RETURNING hits",
                    (bucket, number, (number + 2) * window)).fetchone()[0]
                return int(current), self._hits(conn, bucket, number - 1)

        return self._call(work)

    def peek_hits(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        number = int(now // window)
        return self._call(lambda conn: (self._hits(conn, bucket, number), self._hits(conn, bucket, number - 1)))

    @staticmethod
    def _hits(conn: sqlite3.Connection, bucket: str, number: int) -> int:
        sql = "SELECT hits FROM rate_hits WHERE bucket = ? AND window_no = ?"
        row = conn.execute(sql, (bucket, number)).fetchone()
        return int(row[0]) if row else 0

    def revocation_pushes(self) -> RevocationPushes | None:
        """None: SQLite cannot push; the revocation cache polls the log (one machine, one file)."""
        return None

    # -- housekeeping ------------------------------------------------------

    def purge_expired(self, now: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            with self._transaction(conn):
                count = conn.execute("DELETE FROM sessions WHERE expires < ?", (now,)).rowcount
                count += conn.execute("DELETE FROM remember_series WHERE expires < ?", (now,)).rowcount
                count += conn.execute("DELETE FROM login_states WHERE expires < ?", (now,)).rowcount
                count += conn.execute(  # a remember-me sign-in's record lives as long as its series
                    "DELETE FROM provider_sessions WHERE expires < ? AND NOT EXISTS (SELECT 1 FROM remember_series r"
                    " WHERE r.series_id = provider_sessions.series_id AND r.expires >= ?)", (now, now)).rowcount
                conn.execute("DELETE FROM logout_tokens WHERE expires < ?", (now,))
                conn.execute("DELETE FROM revocations WHERE expires < ?", (now,))
                conn.execute("DELETE FROM rate_hits WHERE expires < ?", (now,))  # older than the previous window
            return count

        removed = self._call(work)
        self.cleanupNonces()
        self.cleanupAssociations()
        return removed
