"""What the gateway persists, as one small interface.

A store keeps python3-openid's associations and nonces, the server-side
session records (so a session can be revoked), the remember-me series and the
sign-ins in flight (so any worker or instance can finish one).
Every method is synchronous and may block: callers on the event loop run them
in a worker thread. Every failure is raised as
:class:`~gateway.errors.StoreUnavailable` so that callers fail closed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.types import Assurance

SignInProtocol = Literal["openid2", "oidc", "oauth2"]

# Bearer tokens are issued by the provider, so no session record ends them. Signing a user out everywhere
# (and everyone, with revoke_all) therefore also logs a *cutoff*: tokens of that user issued at or before it
# are refused (gateway.gate.bearer). It rides the revocation log (and its pushes) as an entry of its own,
# kept CUTOFF_KEEP seconds: longer than any token the gate accepts lives (gate.bearer.MAX_TOKEN_LIFETIME).
CUTOFF_KEEP = 26 * 3600.0
_CUTOFF = "cutoff\t"  # session ids are URL-safe base64: no tab, so no session id reads as a cutoff


def cutoff_entry(user_id: str, at: float) -> str:
    """The revocation log entry refusing ``user_id``'s tokens issued until ``at`` (``""``: everyone's)."""
    return f"{_CUTOFF}{at!r}\t{user_id}"


def parse_cutoff(entry: str) -> tuple[str, float] | None:
    """(user id, time) of a cutoff entry; None for a session id."""
    if not entry.startswith(_CUTOFF):
        return None
    at, _, user_id = entry[len(_CUTOFF):].partition("\t")
    try:
        return user_id, float(at)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in browser session; the cookie carries only its id and identity."""

    session_id: str
    user_id: str
    created: float
    expires: float
    series_id: str | None = None
    user_agent: str = ""
    client_addr: str = ""
    revoked_at: float | None = None
    link_key: str = ""  # the linked sign-in that started it (LinkRecord.identity_key); "" for the account's own


@dataclass(frozen=True, slots=True)
class RememberRecord:
    """A remember-me series: the browser holds ``series_id`` and a token; we hold its hash."""

    series_id: str
    token_hash: str
    user_id: str
    nickname: str
    email: str
    created: float
    last_used: float
    expires: float
    previous_hash: str | None = None
    rotated_at: float | None = None
    user_agent: str = ""
    revoked_at: float | None = None
    provider: str = ""  # who vouched for the sign-in the series restores (``Identity.provider``)
    link_key: str = ""  # the linked sign-in that started it (LinkRecord.identity_key); "" for the account's own
    # The groups the provider vouched for at that sign-in (``Identity.groups``, its groups_claim): a restore
    # answers group rules as the sign-in did; every sign-in with remember-me starts a series with its own.
    groups: tuple[str, ...] = ()
    # When and how that sign-in authenticated (step-up rules judge it); None for a series written before it
    # was recorded (then: its ``created`` time, no acr). A restore carries it; only a new sign-in replaces it.
    assurance: Assurance | None = None


def assurance_text(assurance: Assurance | None) -> str:
    """A series' assurance as both stores keep it: JSON ``[auth_time, acr, amr]``, "" for none."""
    if assurance is None:
        return ""
    return json.dumps([assurance.auth_time, assurance.acr, list(assurance.amr)], separators=(",", ":"))


def assurance_of(text: str | None) -> Assurance | None:
    """:func:`assurance_text`'s inverse; None for "" (a series from before) or anything not of that shape."""
    if not text:
        return None
    try:
        auth_time, acr, amr = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not (isinstance(auth_time, int | float) and isinstance(acr, str) and isinstance(amr, list)):
        return None
    return Assurance(float(auth_time), acr, tuple(str(method) for method in amr))


@dataclass(frozen=True, slots=True)
class LoginStateRecord:
    """A sign-in between ``POST /login`` and the callback, kept server-side and used once.

    ``next`` and ``remember`` live here rather than in ``return_to``, so they
    cannot be changed in transit. ``data`` is what the protocol needs to finish
    (OpenID 2.0: the discovered endpoint's fields; OIDC: nonce, PKCE verifier):
    plain JSON values only, never a pickle, so a store dump cannot run code.
    """

    state_id: str
    protocol: SignInProtocol
    provider: str
    next: str
    remember: bool
    created: float
    expires: float
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderSessionRecord:
    """What logging out at an OpenID Connect provider needs of one of our sessions; server-side only.

    ``sid`` and ``sub`` find the session when the provider's back-channel
    logout token names them; ``id_token`` is the ``id_token_hint`` of an
    RP-initiated logout. Never in a cookie: an ID token is a credential.

    ``series_id`` is the remember-me series the sign-in started: the store
    keeps the record while that series lives (not only until ``expires``, the
    session's end), so a logout at the provider still ends the series, and
    every session restored from it, weeks after the first session expired.
    """

    session_id: str
    provider: str  # the configured provider's name
    sub: str
    sid: str | None
    id_token: str
    expires: float  # the session's; the record is kept until the later of this and its series' expiry
    series_id: str | None = None


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """Another sign-in that reaches an existing user: ``identity_key`` signs in as ``user_id``.

    Made when a signed-in person links another sign-in method on the account
    page, or when an OpenID Connect provider proves (OpenID 2.0 to OpenID
    Connect Migration 1.0) that its user is the same person as an old OpenID
    2.0 identifier. ``identity_key`` is what the sign-in itself would have
    used as the user id (OIDC: ``issuer#sub``); ``provider`` the configured
    provider's name, for the account page.
    """

    identity_key: str
    user_id: str
    provider: str
    created: float
    how: Literal["linked", "migrated"] = "linked"


class RevocationPushes(Protocol):
    """A subscription to revocations made by any worker or instance (a store that can push them)."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when a revocation was pushed since the last call.

        Raises :class:`~gateway.errors.StoreUnavailable` when the subscription
        is lost (the caller waits a little and calls again: it reconnects).
        """
        ...

    def close(self) -> None: ...


class Store(Protocol):
    """The gateway's persistence; python3-openid's store methods included."""

    # python3-openid's OpenIDStore interface (associations and nonces).
    def storeAssociation(self, server_url: str, association: object) -> None: ...
    def getAssociation(self, server_url: str, handle: str | None = None) -> object | None: ...
    def removeAssociation(self, server_url: str, handle: str) -> bool: ...
    def useNonce(self, server_url: str, timestamp: int, salt: str) -> bool: ...
    def cleanupNonces(self) -> int: ...
    def cleanupAssociations(self) -> int: ...

    # Sessions.
    def create_session(self, record: SessionRecord) -> None:
        """Record a session; if its series is already revoked, or its ``link_key`` no longer links to its user
        (unlinked while the sign-in was finishing), the session is revoked at once."""
        ...
    def revoke_session(self, session_id: str, now: float) -> None: ...
    def revoke_user(self, user_id: str, now: float) -> list[str]:
        """Revoke every session and remember-me series of a user; the ids of their unexpired sessions.

        Logs the user's bearer-token cutoff (:func:`cutoff_entry`) in the same transaction.
        """
        ...
    def list_sessions(self, user_id: str, now: float) -> list[SessionRecord]: ...
    def list_all_sessions(self, now: float) -> list[SessionRecord]:
        """Every live session, newest first (``openid-gateway sessions list``)."""
        ...
    def revoke_all(self, now: float) -> list[str]:
        """Sign everyone out: every session and remember-me series; the ids of the unexpired sessions.

        Logs a cutoff for everyone's bearer tokens (``cutoff_entry("", now)``) in the same transaction.
        """
        ...
    def revocations_after(self, seq: int, now: float) -> tuple[list[str], int]:
        """Ids of still-unexpired sessions revoked after log position ``seq``, and the last position.

        Cutoff entries (:func:`parse_cutoff`) come in the same list, in log order.
        """
        ...

    # OpenID Connect logout.
    def put_provider_session(self, record: ProviderSessionRecord) -> None:
        """Record a sign-in's provider session, kept until the later of its ``expires`` and its series' expiry."""
        ...
    def get_provider_session(self, session_id: str) -> ProviderSessionRecord | None:
        """The provider sign-in behind a session: its own record, else (a session restored by remember-me) the
        record of the sign-in that started its series, however long ago that first session ended."""
        ...
    def get_series_provider_session(self, series_id: str) -> ProviderSessionRecord | None:
        """The provider sign-in that started a remember-me series, kept while the series lives: a browser left
        with its remember-me cookie only (every session of the series over) still has an ``id_token_hint``."""
        ...
    def revoke_provider_sessions(self, provider: str, sub: str | None, sid: str | None, now: float) -> list[str]:
        """Back-channel logout: revoke the sessions of ``sid`` (else of ``sub``) at ``provider``.

        Their remember-me series (and the sessions restored from them) end too,
        in one transaction, also when the sign-in's own session has expired and
        been purged; returns the ids of the unexpired sessions ended.
        """
        ...
    def use_logout_token(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """Record a logout token's ``jti`` until ``expires``; False when already seen (a replay)."""
        ...

    # Remember-me series.
    def create_series(self, record: RememberRecord) -> None: ...
    def get_series(self, series_id: str) -> RememberRecord | None: ...
    def rotate_series(self, series_id: str, old_hash: str, new_hash: str, now: float) -> bool: ...
    def revoke_series(self, series_id: str, now: float) -> list[str]:
        """Revoke a series and every session restored from it (one transaction); their unexpired ids.

        The ids (revoked now or before) let the caller revoke them in its own
        process at once, not a refresh interval later.
        """
        ...

    # Sign-ins in flight.
    def put_login_state(self, record: LoginStateRecord) -> None: ...
    def take_login_state(self, state_id: str, now: float) -> LoginStateRecord | None:
        """Remove and return the record, atomically: of two takes, one gets it (a replay gets None).

        None too when it expired before ``now``.
        """
        ...

    # Linked sign-ins (the account page; the OpenID 2.0 to OpenID Connect migration).
    def link_identity(self, record: LinkRecord) -> bool:
        """Record the user ``record.identity_key`` signs in as, only if it is linked to nobody yet.

        Atomic insert-if-absent: of two links of one key made at once (two
        workers, two instances), exactly one is recorded. False when the key
        was already linked, to anyone: that link is kept, never replaced.
        """
        ...
    def linked_user(self, identity_key: str) -> LinkRecord | None: ...
    def list_links(self, user_id: str) -> list[LinkRecord]:
        """The sign-ins linked to ``user_id``, oldest first."""
        ...
    def unlink_identity(self, identity_key: str, user_id: str, now: float) -> list[str] | None:
        """Remove a link of ``user_id``'s and end what it started, in one transaction.

        Every session and remember-me series of ``user_id`` whose ``link_key``
        is ``identity_key`` ends (and every session restored from those series):
        a sign-in method taken off an account must not keep a way in. Returns
        the ids of the unexpired sessions ended, or None when there was no such
        link (or it is someone else's): nothing is changed then.
        """
        ...

    # Rate limits, shared by every worker and instance (the arithmetic lives in gateway.state.ratelimit).
    def add_hit(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        """Count one event in ``bucket``'s current fixed window, atomically; (current after it, previous).

        Windows are numbered ``int(now // window)``; a store keeps a window
        for no longer than two windows.
        """
        ...
    def peek_hits(self, bucket: str, window: int, now: float) -> tuple[int, int]:
        """(current, previous) window counts of ``bucket`` without counting."""
        ...

    # Revocations pushed to every instance, when the store can (Redis: pub/sub; SQLite: None, polled).
    def revocation_pushes(self) -> RevocationPushes | None: ...

    # Housekeeping.
    def purge_expired(self, now: float) -> int: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...
