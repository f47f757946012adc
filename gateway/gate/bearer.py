"""Bearer tokens (RFC 6750) from the configured OpenID Connect providers: read, remembered, refused.

Scripts, CLIs and other services that already hold a token from the site's provider send it as
``Authorization: Bearer <JWT>``. The signature and claims are checked in
:mod:`gateway.signin.oidc.bearer` (joserfc, the provider's cached JWKS); this module only knows
the contract (:class:`TokenVerifier`), so the gate never imports a sign-in protocol.

Hot path: a token verifies once. Afterwards it is found in :class:`BearerTokens` by the SHA-256
of its text (never the token itself, so the memory holds no credential), until its own ``exp``
and never beyond (an introspected opaque token: until its ``recheck``, a short while); the table
is bounded (oldest dropped first), and only tokens that verified enter it, so garbage cannot fill it.
A miss verifies on a worker thread: the first token may need the provider's key set, a network
fetch, which must never block the event loop.

Lifetime: a token is refused when it claims to live longer than :data:`MAX_TOKEN_LIFETIME`.
Signing out everywhere cannot end a token the provider issued, so it records a cutoff that
refuses the user's tokens issued until then (:meth:`~gateway.state.revocation.RevocationCache.cut_off`);
that cutoff is kept :data:`~gateway.store.base.CUTOFF_KEEP`, longer than any token accepted here lives.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import NamedTuple, Protocol

from gateway.errors import StoreUnavailable, TokenRefused
from gateway.state.sessions import Session
from gateway.store.base import CUTOFF_KEEP
from gateway.types import Assurance, StepUp, VerifiedToken

logger = logging.getLogger("gateway.access")

MAX_TOKEN_LIFETIME = CUTOFF_KEEP - 2 * 3600  # 24 hours: access tokens live minutes to hours
MAX_TOKEN_LENGTH = 16384
VERIFIED_TOKENS = 4096  # tokens remembered at most
REALM = b'Bearer realm="openid-gateway"'
# error_description is a quoted-string of these characters only (RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E).
_UNSAFE_DESCRIPTION = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


class TokenVerifier(Protocol):
    """Checks a token's signature and claims and says whose it is; blocks (keys may be fetched).

    Raises :class:`~gateway.errors.TokenRefused` for any doubt.
    """

    def __call__(self, token: str) -> VerifiedToken: ...


class Known(NamedTuple):
    """A verified token as the gate uses it: the session-like view the identity headers are built from."""

    session: Session
    expires: float


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1; the scheme is case-insensitive).

    None for another scheme (Basic, Digest...: the app's business, never judged here); ``""`` when
    the header says Bearer and nothing else.
    """
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def challenge(error: str = "", description: str = "") -> bytes:
    """A ``WWW-Authenticate`` value of RFC 6750 §3: the realm, ``error`` and a short, safe ``error_description``."""
    value = REALM
    if error:
        value += b', error="' + error.encode("ascii") + b'"'
    if description:
        safe = _UNSAFE_DESCRIPTION.sub("'", description)[:200]
        value += b', error_description="' + safe.encode("ascii") + b'"'
    return value


def step_up_challenge(asked: StepUp) -> bytes:
    """RFC 9470 §3's ``WWW-Authenticate``: ``insufficient_user_authentication`` with what the rule asks.

    ``max_age`` and ``acr_values`` (space-separated, quoted) tell the client what to ask its
    authorization server for before it comes back with a new token.
    """
    value = challenge("insufficient_user_authentication", "a more recent or stronger sign-in is required")
    if asked.max_age is not None:
        value += b", max_age=" + str(asked.max_age).encode("ascii")
    if asked.acr_values:
        value += b', acr_values="' + _UNSAFE_DESCRIPTION.sub("'", " ".join(asked.acr_values)).encode("ascii") + b'"'
    return value


class BearerTokens:
    """Verified tokens remembered until their ``exp``; verification itself is the :class:`TokenVerifier`'s."""

    def __init__(self, verifier: TokenVerifier, size: int = VERIFIED_TOKENS) -> None:
        self.verifier = verifier
        self.size = size
        self._known: dict[bytes, Known] = {}

    def remembered(self, token: str, now: float) -> Known | None:
        """The token if it verified before and its ``exp`` has not come (no I/O: the hot path)."""
        known = self._known.get(hashlib.sha256(token.encode("latin-1")).digest())
        return known if known is not None and now < known.expires else None

    async def verify(self, token: str, now: float) -> Known:
        """The verified token, remembered or checked now; :class:`TokenRefused` when it is not acceptable."""
        key = hashlib.sha256(token.encode("latin-1")).digest()
        known = self._known.get(key)
        if known is not None:
            if now < known.expires:
                return known
            del self._known[key]  # never past its exp
        if not token:
            raise TokenRefused("no token after Bearer", "invalid_request")
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRefused("the token is too long")
        try:
            verified = await asyncio.to_thread(self.verifier, token)
        except (TokenRefused, StoreUnavailable):
            raise
        except Exception as exc:  # a bug: fail closed with a 503 and a traceback in the log, never a 500
            logger.exception("bearer token verification failed unexpectedly")
            raise TokenRefused("the token could not be checked", status=503) from exc
        if verified.expires - verified.issued > MAX_TOKEN_LIFETIME:
            raise TokenRefused(f"the token lives longer than {MAX_TOKEN_LIFETIME // 3600:.0f} hours")
        # The session id names no session: only the JWT assertion's sid is derived from it (per token).
        # Its assurance is the token's auth_time/acr claims (RFC 9470 §3); without auth_time, 0: never fresh.
        assurance = verified.identity.assurance or Assurance(0.0)
        session = Session("bearer:" + key.hex()[:32], verified.identity, verified.issued, None, now, assurance)
        known = Known(session, min(verified.expires, verified.recheck))  # remembered until either comes
        if now < known.expires:  # one within the verifier's leeway past its exp passes once, unremembered
            while len(self._known) >= self.size:
                del self._known[next(iter(self._known))]
            self._known[key] = known
        return known


__all__ = ["MAX_TOKEN_LIFETIME", "BearerTokens", "Known", "TokenVerifier", "bearer_token", "challenge",
           "step_up_challenge"]
