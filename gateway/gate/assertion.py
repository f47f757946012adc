"""The identity assertion: a signed JWT an app verifies with a public key, in any language.

Beside (or instead of) the HMAC proof (:mod:`gateway.proof`), which needs the
shared ``proof_key`` in every app, the gateway can send a standard JWT, as
Pomerium does: ES256 (EdDSA optional), the ``kid`` of its key in the header,
the public keys at ``/.well-known/openid-gateway/jwks.json``
(:mod:`gateway.pages.jwks`). Any JWT library verifies it; no secret
leaves the gateway.

Claims: ``iss`` (the public URL's origin), ``aud`` (the Host the request is
for, ASCII-lower-cased with its port: the Host the HMAC proof binds), ``sub``
(the verified OpenID identifier), ``nickname``, ``email`` (only when there is
one: it only ever comes from signed provider fields), ``groups``,
``provider``, ``sid`` (a keyed hash of the session id, never the id: the app
can tell sessions apart, not take one over), ``auth_time`` (whole epoch seconds), ``acr`` and ``amr``
(when known: how the person last authenticated, OpenID Connect Core §2's claims, for the app's own
step-up decisions), ``iat``, ``exp`` (a minute later) and a random ``jti``. Unlike the proof, the token
is not bound to one method and URI: within its minute it is good for any request to its Host.

Signed with joserfc on every request (the key objects and the header are
built once): about 45 µs for ES256 on one core, most of it the ECDSA signature.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from joserfc import jwt
from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jws import JWSRegistry

from gateway.gate.signing_keys import KeyEntry, SigningKeys
from gateway.types import Assurance, Identity

ASSERTION_LIFETIME = 60
DEFAULT_HEADER = "X-Gateway-Assertion"
# Keys the session-id hash; names its one use, so the secret key it derives from is never used twice alike.
SID_CONTEXT = b"openid-gateway.gate.assertion-sid.v1"

Clock = Callable[[], float]


class _OneAlgorithm(JWSRegistry):
    """joserfc's registry allowing exactly the current key's algorithm.

    Without joserfc's RFC 9864 warning for ``EdDSA`` on every signature: the
    name is ambiguous only between Ed25519 and Ed448, and we sign with Ed25519
    only; "Ed25519", the new name, is not yet known to PyJWT or golang-jwt.
    """

    def get_alg(self, name: str) -> Any:
        if not self.allowed or name not in self.allowed:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


def audience_of(host: str) -> str:
    """The ``aud`` for a request to ``host``: ASCII letters lower-cased, the port kept (as the proof does)."""
    return host.lower() if host.isascii() else "".join(c.lower() if c.isascii() else c for c in host)


def session_hash(key: bytes, session_id: str) -> str:
    """The ``sid`` claim: base64url HMAC-SHA256 of the session id, 43 characters."""
    digest = hmac.digest(key, session_id.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sid_key(secret_key: str) -> bytes:
    """The ``sid`` hashing key, derived from a gateway secret key (which the apps never see)."""
    return hmac.digest(secret_key.encode("utf-8"), SID_CONTEXT, "sha256")


class AssertionSigner:
    """Signs one assertion per request with the key file's current key."""

    def __init__(self, keys: SigningKeys, issuer: str, sid_secret: str, clock: Clock = time.time,
                 lifetime: int = ASSERTION_LIFETIME) -> None:
        current: KeyEntry = keys.current
        self.kid = current.kid
        self.alg = current.alg
        self._key = current.key
        self._header = {"alg": current.alg, "kid": current.kid, "typ": "JWT"}
        self._registry = _OneAlgorithm(algorithms=[current.alg])
        self.issuer = issuer
        self._sid_key = sid_key(sid_secret)
        self._clock = clock
        self.lifetime = lifetime

    def sign(self, identity: Identity, host: str, session_id: str, *, groups: Sequence[str] = (),
             provider: str = "", assurance: Assurance | None = None) -> str:
        """The compact JWT for a request of ``identity``'s session to ``host``."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience_of(host),
            "sub": identity.user_id,
            "nickname": identity.nickname,
            "groups": list(groups),
            "provider": provider,
            "sid": session_hash(self._sid_key, session_id),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        if identity.email:
            claims["email"] = identity.email
        if assurance is not None:
            if assurance.auth_time >= 1:  # 0: unknown (a bearer token without auth_time)
                claims["auth_time"] = int(assurance.auth_time)
            if assurance.acr:
                claims["acr"] = assurance.acr
            if assurance.amr:
                claims["amr"] = list(assurance.amr)
        return jwt.encode(self._header, claims, self._key, registry=self._registry)

    def sid(self, session_id: str) -> str:
        """The ``sid`` this signer puts in a session's tokens."""
        return session_hash(self._sid_key, session_id)


__all__ = ["ASSERTION_LIFETIME", "DEFAULT_HEADER", "AssertionSigner", "audience_of", "session_hash", "sid_key"]
