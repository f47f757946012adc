"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6), verified with joserfc.

A provider POSTs a logout token to ``/_gateway/backchannel-logout`` when a
person signs out there. The token names its issuer; only the configured
``oidc`` provider with that issuer is asked for keys (its cached, rate-limited
JWKS from :class:`~gateway.signin.oidc.metadata.ProviderMetadata`), and only
the asymmetric algorithms it announces are accepted. Then: ``iss``, ``aud``
(our client id), ``iat`` (not in the future, not older than
:data:`MAX_AGE`), ``exp`` when present, the back-channel logout event,
``sid`` and/or ``sub``, no ``nonce`` (so an ID token cannot pass for a logout
token), and a ``jti`` — which the caller must record once
(:meth:`~gateway.store.base.Store.use_logout_token`) until :attr:`LogoutRequest.remember_until`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from gateway.errors import GatewayError, LoginFailed
from gateway.signin.oidc.exchange import LEEWAY
from gateway.signin.oidc.metadata import ProviderMetadata
from gateway.signin.provider import Provider

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_AGE = 600  # seconds a logout token is accepted after its iat; its jti is remembered at least this long
MAX_TOKEN_LENGTH = 16384


class LogoutTokenRefused(GatewayError):
    """A logout token we do not act on; ``code`` is the only thing the answer tells the sender."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A verified logout token: whose sessions to end, and its ``jti`` to record."""

    provider: str  # the configured provider's name
    issuer: str
    sub: str | None
    sid: str | None
    jti: str
    remember_until: float  # keep the jti until then: past it, the token's iat (or exp) refuses it anyway


def _unverified_issuer(token: str) -> str:
    """The ``iss`` the token claims, only to pick whose keys verify it."""
    try:
        payload = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise LogoutTokenRefused("malformed", f"logout token is not a compact JWS: {type(exc).__name__}") from exc
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str):
        raise LogoutTokenRefused("malformed", "logout token has no iss")
    return issuer


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise LogoutTokenRefused("bad-claims", f"logout token's {name} is not a string of 1-255 characters")
    return value


class LogoutTokenVerifier:
    """Verifies logout tokens for the configured ``oidc`` providers, sharing their metadata caches."""

    def __init__(self, providers: Mapping[str, Provider], metadata: Mapping[str, ProviderMetadata],
                 clock: Callable[[], float]) -> None:
        self.providers = providers
        self.metadata = metadata
        self.clock = clock

    def verify(self, token: str) -> LogoutRequest:
        """The verified request; :class:`LogoutTokenRefused` on any doubt. Blocks (may fetch keys)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise LogoutTokenRefused("malformed", "logout token missing or too long")
        issuer = _unverified_issuer(token)
        provider = next((p for p in self.providers.values() if p.issuer == issuer), None)
        if provider is None:
            raise LogoutTokenRefused("unknown-issuer", f"logout token from unconfigured issuer {issuer[:200]!r}")
        metadata = self.metadata[provider.name]
        try:
            claims = self._decode(metadata, token)
        except LoginFailed as exc:  # discovery or JWKS unreachable or unusable
            raise LogoutTokenRefused("provider-error", f"{provider.name}: {exc.reason}") from exc
        now = self.clock()
        try:
            JWTClaimsRegistry(now=int(now), leeway=LEEWAY, iss={"essential": True, "value": metadata.issuer},
                              aud={"essential": True, "value": provider.client_id}, iat={"essential": True},
                              exp={"essential": False}, jti={"essential": True}).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name}: {exc}") from exc
        iat = claims["iat"]
        if not isinstance(iat, int | float) or iat < now - MAX_AGE - LEEWAY:
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name} is older than {MAX_AGE}s")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name} lacks the logout event")
        if "nonce" in claims:
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name} carries a nonce")
        sub, sid, jti = _text(claims, "sub"), _text(claims, "sid"), _text(claims, "jti")
        if sub is None and sid is None:
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name} names neither sid nor sub")
        if jti is None:
            raise LogoutTokenRefused("bad-claims", f"logout token from {provider.name} has no jti")
        exp = claims.get("exp")
        until = max(float(iat) + MAX_AGE, float(exp) if isinstance(exp, int | float) else 0.0) + 2 * LEEWAY
        return LogoutRequest(provider.name, metadata.issuer, sub, sid, jti, until)

    @staticmethod
    def _decode(metadata: ProviderMetadata, token: str) -> dict[str, Any]:
        """The claims once joserfc has checked the signature (announced asymmetric algorithms only)."""
        algorithms = list(metadata.document().algorithms)
        try:
            return metadata.decode(token, algorithms)
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenRefused("bad-signature", f"logout token from {metadata.issuer}: "
                                                      f"{type(exc).__name__}: {exc}") from exc


__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "MAX_AGE", "LogoutRequest", "LogoutTokenRefused", "LogoutTokenVerifier"]
