"""Which user a sign-in reaches: linked sign-ins and the OpenID 2.0 migration, in one place.

Every protocol's callback hands its verified identity to :meth:`Identities.resolve`
before a session starts. The identity's own key (OpenID 2.0: the claimed
identifier; OIDC: ``issuer#sub``; GitHub: ``api#id``) is looked up among the
links (:class:`~gateway.store.base.LinkRecord`); a linked key signs in as the
user it is linked to. Links are one hop and never chained: a key that has
links of its own cannot be linked elsewhere, and a linked key cannot collect
links, so resolution never loops or depends on order.

Links come from two places:

* the account page (:mod:`gateway.pages.account`): a signed-in person
  signs in with another provider, and instead of a new session the callback
  calls :meth:`Identities.link` (``how="linked"``);
* the migration (:mod:`gateway.signin.oidc.migration`): an OpenID Connect provider
  configured with ``openid2_migration`` vouches for the person's old OpenID
  2.0 identifier, which :meth:`Identities.resolve` verifies once and records
  (``how="migrated"``), so later sign-ins reach the same user even when the
  provider stops sending ``openid2_id``.

A link, once made, is kept: an existing link wins over a migration claim, and
linking a key that already reaches somebody else is refused, never replaced
(no silent takeover). Store calls (and the migration's discovery) block: run
:meth:`resolve` on the sign-in threads (through :meth:`Identities.resolver`),
the rest in a worker thread.

Every link made (``identity_linked``, ``identity_migrated``), removed
(``identity_unlinked``) or refused (``identity_link_refused``) is a security
event (:mod:`gateway.observe.events`), emitted here, once, where the store changes
(or would have): the audit log and the metrics hear it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.observe.events import Events, IdentityLinked, IdentityLinkRefused, IdentityMigrated, IdentityUnlinked
from gateway.signin.oidc.exchange import OIDCIdentity
from gateway.signin.oidc.migration import OpenID2Migration
from gateway.store import Store
from gateway.store.base import LinkRecord
from gateway.types import Identity

logger = logging.getLogger("gateway.identities")

LINK_USER = "link_user"  # login state data: the sign-in links to this user instead of starting a session
LINK_SESSION = "link_session"  # ... and must finish in the session (its hash) that started it
NOT_YOURS = "not-yours"  # an unlink of a link that is not the user's (the account page's notice code)
MAX_LOGGED_KEY = 300


class LinkRefused(GatewayError):
    """A link the account page must not make; ``code`` picks the notice shown there."""

    def __init__(self, reason: str, code: str) -> None:
        self.reason = reason
        self.code = code
        super().__init__(reason)


def session_digest(session_id: str) -> str:
    """What the login state keeps of the session that asked for a link (a store dump must not sign anyone in)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LinkIntent:
    """A sign-in started from the account page to link another sign-in method to ``user_id``."""

    user_id: str
    session: str  # session_digest() of the session that started it

    def data(self) -> dict[str, object]:
        return {LINK_USER: self.user_id, LINK_SESSION: self.session}

    @classmethod
    def of(cls, data: Mapping[str, object]) -> LinkIntent | None:
        """The intent a login state's data records, or None for an ordinary sign-in."""
        user_id, session = data.get(LINK_USER), data.get(LINK_SESSION)
        if isinstance(user_id, str) and isinstance(session, str) and user_id and session:
            return cls(user_id, session)
        return None


def _taken(identity_key: str, user_id: str, existing: LinkRecord | None) -> LinkRefused:
    """The refusal of a link whose key is already linked (``existing``; None if unlinked again since)."""
    if existing is not None and existing.user_id == user_id:
        return LinkRefused(f"{identity_key} is already linked to {user_id}", "link-exists")
    owner = existing.user_id if existing is not None else "unknown"
    return LinkRefused(f"{identity_key} is linked to another user ({owner}): not replaced", "link-taken")


class Identities:
    """Resolves sign-ins to users; makes and removes links."""

    def __init__(self, store: Store, migration: OpenID2Migration, clock: Callable[[], float], events: Events) -> None:
        self.store = store
        self.migration = migration
        self.clock = clock
        self.events = events

    def resolver(self, client: str) -> Callable[[Identity], Identity]:
        """:meth:`resolve` for ``client``'s sign-in, to run on a sign-in thread.

        That thread does not inherit the request's context variables: the
        migration's event would name no request id. The context is copied here, in the request.
        """
        context = contextvars.copy_context()
        return lambda identity: context.run(self.resolve, identity, client)

    def resolve(self, identity: Identity, client: str = "") -> Identity:
        """The identity with the user id its sign-in reaches; :class:`MigrationRefused` when a claim fails."""
        link = self.store.linked_user(identity.user_id)
        if link is not None:
            return _through(identity, link.user_id)
        if isinstance(identity, OIDCIdentity) and identity.openid2 is not None:
            if self.store.list_links(identity.user_id):  # in use as an account of its own: links never chain
                logger.info("OpenID 2.0 migration of %s skipped: other sign-ins are linked to it", identity.user_id)
                return identity
            old_id = self.migration.verify(identity.openid2)
            target = self.store.linked_user(old_id)
            user_id = target.user_id if target is not None else old_id
            if not self.store.link_identity(LinkRecord(identity.user_id, user_id, identity.provider, self.clock(),
                                                       "migrated")):  # a parallel sign-in linked it first: it wins
                link = self.store.linked_user(identity.user_id)
                return _through(identity, link.user_id) if link is not None else identity
            logger.info("OpenID 2.0 migration: %s now signs in as %s (verified openid2_id %s)",
                        identity.user_id, user_id, old_id)
            self.events.emit(IdentityMigrated(user_id, identity.user_id, old_id, identity.provider, client))
            return _through(identity, user_id)
        return identity

    def link(self, identity_key: str, provider: str, user_id: str, client: str) -> LinkRecord:
        """Make ``identity_key`` sign in as ``user_id``; :class:`LinkRefused` rather than replace or chain."""
        try:
            record = self._link(identity_key, provider, user_id)
        except LinkRefused as exc:
            self.events.emit(IdentityLinkRefused(user_id, identity_key, exc.code, client))
            raise
        self.events.emit(IdentityLinked(user_id, identity_key, provider, client))
        return record

    def _link(self, identity_key: str, provider: str, user_id: str) -> LinkRecord:
        if identity_key == user_id:
            raise LinkRefused(f"{identity_key} is already {user_id}'s own sign-in", "link-self")
        existing = self.store.linked_user(identity_key)
        if existing is not None:
            raise _taken(identity_key, user_id, existing)
        if self.store.list_links(identity_key):
            raise LinkRefused(f"{identity_key} has sign-ins linked to it: links are not chained", "link-has-links")
        if self.store.linked_user(user_id) is not None:
            raise LinkRefused(f"{user_id} itself signs in as another user now (a stale session)", "link-stale")
        record = LinkRecord(identity_key, user_id, provider, self.clock(), "linked")
        if not self.store.link_identity(record):  # linked by another request since the check above: never replaced
            raise _taken(identity_key, user_id, self.store.linked_user(identity_key))
        return record

    def links(self, user_id: str) -> list[LinkRecord]:
        return self.store.list_links(user_id)

    def unlink(self, identity_key: str, user_id: str, client: str) -> list[str] | None:
        """Remove one of ``user_id``'s links, and end the sessions and remember-me series it started.

        Returns the ids of the unexpired sessions ended (for the caller's
        revocation set), or None when the link is not theirs (nothing is removed).
        """
        ended = self.store.unlink_identity(identity_key, user_id, self.clock())
        if ended is not None:
            self.events.emit(IdentityUnlinked(user_id, identity_key, client, len(ended)))
            return ended
        # The key came from a form: cut to a length a log line can hold.
        self.events.emit(IdentityLinkRefused(user_id, identity_key[:MAX_LOGGED_KEY], NOT_YOURS, client))
        return None


def _through(identity: Identity, user_id: str) -> Identity:
    """``identity`` as the user a link of its own key reaches (the key kept as ``link_key``)."""
    return dataclasses.replace(identity, user_id=user_id, link_key=identity.user_id)


__all__ = ["LINK_SESSION", "LINK_USER", "Identities", "LinkIntent", "LinkRefused", "session_digest"]
