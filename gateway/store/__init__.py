"""Persistence behind one interface: :class:`Store`, with SQLite as the default."""

from __future__ import annotations

from gateway.store.base import LoginStateRecord, ProviderSessionRecord, RememberRecord, SessionRecord, Store
from gateway.store.sqlite import SQLiteStore

__all__ = ["LoginStateRecord", "ProviderSessionRecord", "RememberRecord", "SQLiteStore", "SessionRecord", "Store"]
