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

The same judgement is made at logout (:meth:`RememberMe.presented`): only the
series' own browser may reach what the sign-in left behind (the ID token sent
to the provider as ``id_token_hint``); an older token there is theft evidence
too.

A series started by a linked sign-in records its key (``link_key``); once
that link is removed the series restores nobody (the store ends it when
unlinking; a series written while the unlink ran is caught here).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from gateway.errors import StoreUnavailable
from gateway.observe.events import Events, TheftSuspected, hash_id
from gateway.state.sessions import REMEMBER_SALT, TokenCodec
from gateway.store import RememberRecord, Store
from gateway.types import Assurance, Identity

logger = logging.getLogger("gateway.remember")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Restored:
    """A remember-me cookie that signed its holder back in."""

    identity: Identity
    series_id: str
    cookie: str | None  # the rotated cookie to set; None inside the grace window
    # When and how the sign-in that started the series authenticated: the restored session's, never "now"
    # (a restore proves the browser kept a cookie, not that the person authenticated again).
    assurance: Assurance


@dataclass(frozen=True, slots=True)
class Presented:
    """The series a remember-me cookie sent to ``/logout`` names, and whether it is that series' own browser."""

    series_id: str
    genuine: bool  # the live series' current token, or the previous one within the grace window


class RememberMe:
    """Issues, rotates and revokes remember-me series. Blocking: call from a thread."""

    def __init__(self, store: Store, secret_keys: list[str], lifetime: int, grace: int,
                 events: Events | None = None) -> None:
        self.store = store
        self.events = events or Events()
        self.codec = TokenCodec(secret_keys, REMEMBER_SALT)
        self.lifetime = lifetime
        self.grace = grace

    def issue(self, identity: Identity, user_agent: str, now: float,
              assurance: Assurance | None = None) -> tuple[str, str]:
        """Start a series recording the sign-in's ``assurance`` (default: made ``now``, no acr);
        returns ``(series_id, cookie_value)``."""
        series_id = secrets.token_urlsafe(18)
        token = secrets.token_urlsafe(32)
        self.store.create_series(RememberRecord(
            series_id=series_id, token_hash=_hash(token), user_id=identity.user_id,
            nickname=identity.nickname, email=identity.email, created=now, last_used=now,
            expires=now + self.lifetime, user_agent=user_agent, provider=identity.provider,
            link_key=identity.link_key, groups=identity.groups, assurance=assurance or Assurance(now),
        ))
        return series_id, self.codec.encode(f"{series_id}:{token}")

    def restore(self, cookie: str | None, now: float) -> Restored | None:
        """Sign back in from a remember-me cookie, or return None (and revoke on theft)."""
        opened = self._open(cookie)
        if opened is None:
            return None
        series_id, presented = opened
        record = self._live(series_id, now)
        if record is None:
            return None
        if record.link_key and not self._still_linked(record.link_key, record.user_id):
            self.revoke(series_id, now)
            logger.warning("remember-me series %s of %s ended: its sign-in %s is no longer linked to the account",
                           hash_id(series_id), record.user_id, record.link_key)
            return None
        identity = Identity(record.user_id, record.nickname, record.email, record.groups, record.provider,
                            link_key=record.link_key)
        # A series from before step-up recorded none: its sign-in was when it was created, at no known level.
        assurance = record.assurance or Assurance(record.created)
        if hmac.compare_digest(presented, record.token_hash):
            new_token = secrets.token_urlsafe(32)
            if self.store.rotate_series(series_id, presented, _hash(new_token), now):
                return Restored(identity, series_id, self.codec.encode(f"{series_id}:{new_token}"), assurance)
            record = self.store.get_series(series_id)  # lost a race with a parallel request
            if record is None or record.revoked_at is not None:
                return None
        if self._in_grace(record, presented, now):
            return Restored(identity, series_id, None, assurance)
        self._stolen(record, now, "replayed an old token")
        return None

    def presented(self, cookie: str | None, now: float) -> Presented | None:
        """Judge a remember-me cookie sent to ``/logout`` as :meth:`restore` would, without rotating it.

        Genuine: the live series' current token, or its previous one within
        the grace window. A stale token of a live series is theft evidence, as
        at restore: the series and its sessions end, and it is logged and
        emitted (:class:`~gateway.observe.events.TheftSuspected`). The caller
        ends the series in every case (it is a logout); only a genuine cookie
        may lead to the sign-in's ID token (the provider's ``id_token_hint``).
        None when the cookie does not verify. Not genuine when the store
        cannot tell: the caller's sign-out needs the store too and reports it.
        """
        opened = self._open(cookie)
        if opened is None:
            return None
        series_id, presented = opened
        try:
            record = self._live(series_id, now)
            if record is None:  # unknown, ended or expired: nothing left to protect, nothing to hand out
                return Presented(series_id, False)
            if hmac.compare_digest(presented, record.token_hash) or self._in_grace(record, presented, now):
                return Presented(series_id, True)
            self._stolen(record, now, "sent an old token to /logout")
        except StoreUnavailable as exc:
            logger.warning("remember-me cookie of series %s at logout not judged: %s", hash_id(series_id), exc)
        return Presented(series_id, False)

    def _open(self, cookie: str | None) -> tuple[str, str] | None:
        """(series id, the presented token's hash) of a cookie that verifies; else None."""
        value = self.codec.decode(cookie)
        if value is None or ":" not in value:
            return None
        series_id, token = value.split(":", 1)
        return series_id, _hash(token)

    def _live(self, series_id: str, now: float) -> RememberRecord | None:
        record = self.store.get_series(series_id)
        return record if record is not None and record.revoked_at is None and record.expires > now else None

    def _in_grace(self, record: RememberRecord, presented: str, now: float) -> bool:
        """The previous token, within ``grace`` seconds of its rotation: a parallel tab, not a thief."""
        return (
            record.previous_hash is not None
            and record.rotated_at is not None
            and hmac.compare_digest(presented, record.previous_hash)
            and now - record.rotated_at <= self.grace
        )

    def _stolen(self, record: RememberRecord, now: float, what: str) -> None:
        """A token the series' own browser no longer holds: end the series and its sessions, say so."""
        self.revoke(record.series_id, now)
        logger.warning("suspected remember-me cookie theft: series %s of %s %s; series and its sessions revoked",
                       hash_id(record.series_id), record.user_id, what)
        self.events.emit(TheftSuspected(record.user_id, hash_id(record.series_id)))

    def _still_linked(self, link_key: str, user_id: str) -> bool:
        link = self.store.linked_user(link_key)
        return link is not None and link.user_id == user_id

    def revoke(self, series_id: str, now: float) -> list[str]:
        """End the series and the sessions restored from it; returns their ids (see ``Store.revoke_series``)."""
        return self.store.revoke_series(series_id, now)
