"""Security events: what happened, said once by the handlers, heard by the audit log and the metrics.

The handlers call ``runtime.events.emit(SignedIn(...))`` and know nothing of
who listens; :mod:`gateway.observe.audit` writes each event as a log line and the
metrics count them. Every event is a frozen dataclass with a stable ``name``.

What an event may hold: user ids, provider endpoints, client addresses, rule
names, request targets, counts. Never a cookie, a token, a proof or a secret
key; a session or remember-me series id only through :func:`hash_id` (a
session id is half of what signs a person in).

Listeners run in the caller's thread, so they must be cheap; one that raises
is logged and skipped, never allowed to break the request that emitted.

The request id (:data:`request_id`) is a context variable set where a request
enters the gateway (:mod:`gateway.app`), so any listener can name it without
every event carrying it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import ClassVar

logger = logging.getLogger("gateway.events")

# The id of the request being handled ("-" outside one): from a trusted proxy's X-Request-ID, else made here.
request_id: ContextVar[str] = ContextVar("gateway_request_id", default="-")


def hash_id(value: str) -> str:
    """A short, stable stand-in for a session or series id: enough to correlate lines, useless to sign in."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; ``name`` is what the audit log and the metrics call it."""

    name: ClassVar[str] = "event"

    def fields(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SignInStarted(Event):
    """A browser was sent to its OpenID provider."""

    name: ClassVar[str] = "sign_in_started"
    provider: str
    client: str


@dataclass(frozen=True, slots=True)
class SignedIn(Event):
    """A provider vouched for a person and a session began."""

    name: ClassVar[str] = "signed_in"
    provider: str
    user: str
    client: str
    remember: bool


@dataclass(frozen=True, slots=True)
class SignInFailed(Event):
    """A sign-in ended without a session; ``reason`` is the code shown to the person (``LoginFailed.code``)."""

    name: ClassVar[str] = "sign_in_failed"
    provider: str
    reason: str
    client: str


@dataclass(frozen=True, slots=True)
class SignedOut(Event):
    """``/logout`` ended this browser's sessions (``sessions``: how many verified session cookies it sent)."""

    name: ClassVar[str] = "signed_out"
    user: str
    sessions: int
    client: str


@dataclass(frozen=True, slots=True)
class SignedOutEverywhere(Event):
    """A person ended all their sessions from the account page."""

    name: ClassVar[str] = "signed_out_everywhere"
    user: str
    sessions: int
    client: str


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """A person ended one of their sessions from the account page (``session``: :func:`hash_id` of its id)."""

    name: ClassVar[str] = "session_ended"
    user: str
    session: str
    client: str


@dataclass(frozen=True, slots=True)
class RememberRestored(Event):
    """A remember-me cookie signed its holder back in."""

    name: ClassVar[str] = "remember_restored"
    user: str
    client: str


@dataclass(frozen=True, slots=True)
class TheftSuspected(Event):
    """An old remember-me token was replayed: the series (``series``: hashed) and its sessions were revoked."""

    name: ClassVar[str] = "theft_suspected"
    user: str
    series: str


@dataclass(frozen=True, slots=True)
class IdentityLinked(Event):
    """A person linked another sign-in method from the account page: ``identity`` now signs in as ``user``."""

    name: ClassVar[str] = "identity_linked"
    user: str
    identity: str  # the linked sign-in's own key (issuer#sub, a claimed identifier, api#id)
    provider: str
    client: str


@dataclass(frozen=True, slots=True)
class IdentityUnlinked(Event):
    """A person removed one of their links: ``identity`` no longer signs in as ``user``."""

    name: ClassVar[str] = "identity_unlinked"
    user: str
    identity: str
    client: str
    sessions: int  # the unexpired sessions the link had started, ended with it


@dataclass(frozen=True, slots=True)
class IdentityMigrated(Event):
    """An OpenID Connect sign-in proved an OpenID 2.0 identifier (``openid2_id``, verified) and was linked to
    the user it reaches (``user``: that identifier, or the user it is itself linked to)."""

    name: ClassVar[str] = "identity_migrated"
    user: str
    identity: str
    openid2_id: str
    provider: str
    client: str


@dataclass(frozen=True, slots=True)
class IdentityLinkRefused(Event):
    """A link or unlink was refused (``reason``: the account page's notice code, e.g. ``link-taken``,
    ``not-yours``, ``other-session``): nothing changed, but someone may have tried to take over an account."""

    name: ClassVar[str] = "identity_link_refused"
    user: str  # the signed-in user who asked
    identity: str  # the sign-in key they tried to link or unlink
    reason: str
    client: str


@dataclass(frozen=True, slots=True)
class RateLimitedEvent(Event):
    """A client was refused for too many attempts; ``limiter`` is "login" or "failure"."""

    name: ClassVar[str] = "rate_limited"
    limiter: str
    client: str


@dataclass(frozen=True, slots=True)
class Forbidden(Event):
    """A signed-in person was refused by an access rule."""

    name: ClassVar[str] = "forbidden"
    rule: str
    user: str
    method: str
    host: str
    path: str


@dataclass(frozen=True, slots=True)
class SignInRequired(Event):
    """An anonymous request was asked to sign in first."""

    name: ClassVar[str] = "sign_in_required"
    rule: str
    method: str
    host: str
    path: str


@dataclass(frozen=True, slots=True)
class StoreDown(Event):
    """The store could not be used; ``where`` says by what (``revocation`` or a page's path)."""

    name: ClassVar[str] = "store_unavailable"
    where: str


@dataclass(frozen=True, slots=True)
class StoreRecovered(Event):
    """The revocation list could be refreshed again after an outage."""

    name: ClassVar[str] = "store_recovered"


Listener = Callable[[Event], None]


class Events:
    """Hands each emitted event to the listeners registered at start-up."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: Event) -> None:
        """Tell every listener; a listener's failure is logged, never raised into the caller."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, event.name)
