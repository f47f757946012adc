"""Persistence behind one interface: :class:`Store`, SQLite by default, Redis for several instances.

:func:`open_store` is the one place that decides which store runs: nothing
outside ``gateway/store/`` knows.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import (
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    RevocationPushes,
    SessionRecord,
    Store,
)
from gateway.store.location import is_redis, location_problems, masked
from gateway.store.sqlite import SQLiteStore

SQLITE_NAME = "gateway.sqlite3"


def sqlite_path(location: str, state_dir: Path) -> Path:
    """The SQLite file of a ``store`` setting that names no Redis: ``""`` means the state directory's."""
    return Path(location) if location.strip() else state_dir / SQLITE_NAME


def describe(location: str, state_dir: Path) -> str:
    """What ``check-config`` shows: the Redis URL with its password masked, or the SQLite file."""
    if is_redis(location):
        return f"Redis {masked(location.strip())}"
    return f"SQLite {sqlite_path(location, state_dir)}"


def open_store(location: str, state_dir: Path) -> Store:
    """The store ``location`` (the ``store`` setting) names.

    ``""``: SQLite under ``state_dir`` (made 0700: the file holds session ids
    and association secrets); a path: SQLite there; ``redis://``,
    ``rediss://``, ``unix://``: :class:`RedisStore`. Raises
    :class:`~gateway.errors.StoreUnavailable` when it cannot be opened,
    :class:`~gateway.errors.StoreMisconfigured` when Redis may evict keys.
    """
    if is_redis(location):
        # Imported here: redis-py adds some 19 MiB to every gateway process, and only Redis users need it.
        from gateway.store.redis import RedisStore

        return RedisStore(location.strip())
    path = sqlite_path(location, state_dir)
    if not location.strip():
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return SQLiteStore(path)


__all__ = ["LinkRecord", "LoginStateRecord", "ProviderSessionRecord", "RememberRecord",
           "RevocationPushes", "SQLiteStore", "SessionRecord", "Store", "describe", "is_redis", "location_problems",
           "masked", "open_store", "sqlite_path"]
