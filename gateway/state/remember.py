"""Remember-me: persistent, rotating, revocable sign-in tokens.

A signed cookie alone cannot be taken back, so "Remember me" issues a token
backed by a server-side series record (series id, SHA-256 of the token, user,
times, client hint). The browser holds ``series:token``; the store never sees
the token itself.

Each restore rotates the token. Presenting an *older* token of a live series
means the cookie was copied: the whole series and every session restored from
it are revoked and the event is logged as a suspected theft. The one exception
is the previous token within ``grace`` seconds of a rotation: a browser
restoring several tabs at once sends it in parallel requests, which must not
sign the person out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from gateway.observe.events import Events, TheftSuspected, hash_id
from gateway.state.sessions import REMEMBER_SALT, TokenCodec
from gateway.store import RememberRecord, Store
from gateway.types import Identity

logger = logging.getLogger("gateway.remember")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Restored:
    """A remember-me cookie that signed its holder back in."""

    identity: Identity
    series_id: str
    cookie: str | None  # the rotated cookie to set; None inside the grace window


class RememberMe:
    """Issues, rotates and revokes remember-me series. Blocking: call from a thread."""

    def __init__(self, store: Store, secret_keys: list[str], lifetime: int, grace: int,
                 events: Events | None = None) -> None:
        self.store = store
        self.events = events or Events()
        self.codec = TokenCodec(secret_keys, REMEMBER_SALT)
        self.lifetime = lifetime
        self.grace = grace

    def issue(self, identity: Identity, user_agent: str, now: float) -> tuple[str, str]:
        """Start a series; returns ``(series_id, cookie_value)``."""
        series_id = secrets.token_urlsafe(18)
        token = secrets.token_urlsafe(32)
        self.store.create_series(RememberRecord(
            series_id=series_id, token_hash=_hash(token), user_id=identity.user_id,
            nickname=identity.nickname, email=identity.email, created=now, last_used=now,
            expires=now + self.lifetime, user_agent=user_agent, provider=identity.provider, groups=identity.groups,
        ))
        return series_id, self.codec.encode(f"{series_id}:{token}")

    def restore(self, cookie: str | None, now: float) -> Restored | None:
        """Sign back in from a remember-me cookie, or return None (and revoke on theft)."""
        value = self.codec.decode(cookie)
        if value is None or ":" not in value:
            return None
        series_id, token = value.split(":", 1)
        record = self.store.get_series(series_id)
        if record is None or record.revoked_at is not None or record.expires <= now:
            return None
        presented = _hash(token)
        identity = Identity(record.user_id, record.nickname, record.email, record.groups, record.provider)
        if hmac.compare_digest(presented, record.token_hash):
            new_token = secrets.token_urlsafe(32)
            if self.store.rotate_series(series_id, presented, _hash(new_token), now):
                return Restored(identity, series_id, self.codec.encode(f"{series_id}:{new_token}"))
            record = self.store.get_series(series_id)  # lost a race with a parallel request
            if record is None or record.revoked_at is not None:
                return None
        if (
            record.previous_hash is not None
            and record.rotated_at is not None
            and hmac.compare_digest(presented, record.previous_hash)
            and now - record.rotated_at <= self.grace
        ):
            return Restored(identity, series_id, None)
        self.revoke(series_id, now)
        logger.warning("suspected remember-me cookie theft: series %s of %s replayed an old token; "
                       "series and its sessions revoked", hash_id(series_id), record.user_id)
        self.events.emit(TheftSuspected(record.user_id, hash_id(series_id)))
        return None

    def revoke(self, series_id: str, now: float) -> list[str]:
        """End the series and the sessions restored from it; returns their ids (see ``Store.revoke_series``)."""
        return self.store.revoke_series(series_id, now)

    def series_of(self, cookie: str | None) -> str | None:
        value = self.codec.decode(cookie)
        return value.split(":", 1)[0] if value and ":" in value else None
