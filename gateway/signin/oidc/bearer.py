"""Bearer tokens of the configured OpenID Connect providers, verified with joserfc.

A provider configured with ``bearer_audiences`` vouches for API clients: a JWT access token
(RFC 9068, ``typ: at+jwt``) or an ID token it signed authenticates its user as a browser
sign-in would. The token names its issuer; only the configured provider with that issuer is
asked for keys (the same cached, rate-limited JWKS the sign-in uses:
:class:`~gateway.signin.oidc.metadata.ProviderMetadata`, so a key rollover is followed), and
only asymmetric algorithms are accepted (never ``none``, never HMAC: a public key is no secret).
Then ``iss`` exactly, ``aud`` one of the operator's audiences for that provider (there is no
"any": a token minted for another service must not open this one, RFC 9068 §4), ``exp``,
``iat``, ``nbf`` with :data:`~gateway.signin.oidc.exchange.LEEWAY`, ``sub``, and
``client_id``/``azp`` among ``bearer_clients`` when the operator names some.

An access token's ``typ`` must be ``at+jwt`` (RFC 9068 §4) unless it is an ID token (``typ``
``JWT`` or none), which OpenID Connect clients such as single-page apps hold.

Opaque tokens (not a JWS) are asked about at the one provider with ``bearer_introspection``
(RFC 7662, :mod:`gateway.signin.oidc.introspection`); the active answer's claims are judged as a
JWT's: ``iss`` when present, ``aud`` when present (else ``client_id``) one of the audiences, ``exp``,
``iat``, ``nbf``, ``sub`` (``exp`` and ``iat`` are required here though optional in §2.2: the
token's lifetime and the sign-out-everywhere cutoff need them). The answer is used for
``bearer_introspection_cache`` seconds at most (``recheck``), so a revocation at the provider is
seen. Without introspection an opaque token is refused with a clear reason: a token nobody can
check never passes.

The person is ``<issuer>#<sub>`` as for a browser sign-in, resolved through the same links and
migrations (:class:`~gateway.signin.identities.Identities`), with the groups of the provider's
``groups_claim``. Blocks (keys and links): the gate runs it on a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from gateway.errors import LoginFailed, TokenRefused
from gateway.signin.oidc.exchange import LEEWAY, claim_groups, token_assurance, user_id
from gateway.signin.oidc.introspection import Introspection
from gateway.signin.oidc.metadata import ASYMMETRIC_ALGORITHMS, ProviderMetadata
from gateway.signin.provider import Provider
from gateway.types import Identity, VerifiedToken

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §2.1
ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})
_ALGORITHMS = sorted(ASYMMETRIC_ALGORITHMS)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims as written, only to pick whose keys verify the token."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise TokenRefused(f"the token is not a signed JWT ({type(exc).__name__})") from exc
    if not isinstance(claims, dict):
        raise TokenRefused("the token's payload is not a JSON object")
    return dict(compact.protected), claims


class BearerVerifier:
    """Verifies bearer tokens for the ``oidc`` providers with ``bearer_audiences``; a :class:`TokenVerifier`."""

    def __init__(self, providers: Sequence[Provider], metadata: Mapping[str, ProviderMetadata],
                 resolve: Callable[[Identity], Identity], clock: Callable[[], float],
                 introspection: Introspection | None = None) -> None:
        self.providers = {p.issuer: p for p in providers if p.type == "oidc" and p.bearer_audiences}
        self.metadata = metadata
        self.resolve = resolve
        self.clock = clock
        self.introspection = introspection  # the one provider opaque tokens are asked about; None: refused

    def __call__(self, token: str) -> VerifiedToken:
        if token.count(".") != 2:
            return self._introspected(token)
        header, unverified = _unverified(token)
        issuer = unverified.get("iss")
        provider = self.providers.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise TokenRefused("the token's issuer is not one this site accepts tokens from")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES | ID_TOKEN_TYPES):
            raise TokenRefused("the token's typ is neither at+jwt (RFC 9068) nor an ID token's")
        claims = self._decode(self.metadata[provider.name], token)
        return self._verified(provider, claims, signed=True)

    def _introspected(self, token: str) -> VerifiedToken:
        """An opaque token, as the introspecting provider describes it (RFC 7662)."""
        if self.introspection is None:
            raise TokenRefused("opaque tokens are not supported here: send a JWT access token (RFC 9068) or an"
                               " ID token")
        now = self.clock()
        verified = self._verified(self.introspection.provider, self.introspection(token), signed=False)
        return replace(verified, recheck=now + self.introspection.cache_seconds)

    def _verified(self, provider: Provider, claims: dict[str, Any], *, signed: bool) -> VerifiedToken:
        """The token's claims judged: ``iss`` exactly, ``aud`` one of the audiences, ``exp``, ``iat``, ``nbf``,
        ``sub``. A signed token must carry ``iss`` and ``aud``; an introspection answer may leave them out
        (RFC 7662 §2.2), and then its ``client_id`` must be one of the audiences."""
        options: dict[str, Any] = {
            "iss": {"essential": signed, "value": provider.issuer},
            "aud": {"essential": signed, "values": list(provider.bearer_audiences)},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        try:
            JWTClaimsRegistry(now=int(self.clock()), leeway=LEEWAY, **options).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenRefused(f"the token's claims are not acceptable: {exc}") from exc
        if "aud" not in claims and claims.get("client_id") not in provider.bearer_audiences:
            raise TokenRefused("the token names neither an audience nor a client_id this site accepts")
        if provider.bearer_clients:
            client = claims.get("client_id", claims.get("azp"))
            if client not in provider.bearer_clients:
                raise TokenRefused("the token was issued to a client this site does not accept tokens of")
        try:
            issued, expires = float(claims["iat"]), float(claims["exp"])
        except (TypeError, ValueError) as exc:
            raise TokenRefused("the token's iat or exp is not a number") from exc
        return VerifiedToken(self.resolve(self._identity(provider, claims)), issued, expires)

    @staticmethod
    def _decode(metadata: ProviderMetadata, token: str) -> dict[str, Any]:
        """The claims once joserfc has checked the signature (asymmetric algorithms only)."""
        try:
            return metadata.decode(token, _ALGORITHMS)
        except LoginFailed as exc:  # discovery or JWKS unreachable or unusable: not the token's fault
            raise TokenRefused(f"the provider's keys cannot be fetched: {exc.reason}", status=503) from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenRefused(f"the token's signature does not verify ({type(exc).__name__})") from exc

    @staticmethod
    def _identity(provider: Provider, claims: Mapping[str, Any]) -> Identity:
        sub = claims["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= 255 or not (sub.isascii() and sub.isprintable()) \
                or " " in sub:
            raise TokenRefused("the token's sub is not 1-255 printable ASCII characters")
        email = claims.get("email")
        verified = claims.get("email_verified") is True
        email = email if verified and isinstance(email, str) and "@" in email and len(email) <= 320 else ""
        username = claims.get("preferred_username")
        nickname = username if isinstance(username, str) and username.strip() else email or sub
        try:
            groups = claim_groups(claims, provider.groups_claim, provider.name)
            assurance = token_assurance(claims, provider.name)  # RFC 9470 §3: what step-up rules judge
        except LoginFailed as exc:
            raise TokenRefused(exc.reason) from exc
        return Identity(user_id(provider.issuer, sub), nickname[:200], email, groups, provider.name,
                        assurance=assurance)


__all__ = ["BearerVerifier"]
