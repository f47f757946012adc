"""Persistence behind one interface: :class:`Store`, with SQLite as the default."""

from __future__ import annotations

from gateway.store.base import (
    LinkRecord,
    LoginStateRecord,
    ProviderSessionRecord,
    RememberRecord,
    RevocationPushes,
    SessionRecord,
    Store,
)
from gateway.store.sqlite import SQLiteStore

__all__ = ["LinkRecord", "LoginStateRecord", "ProviderSessionRecord", "RememberRecord", "RevocationPushes",
           "SQLiteStore", "SessionRecord", "Store"]
