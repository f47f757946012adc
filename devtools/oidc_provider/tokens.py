"""ID tokens, RFC 9068 access tokens and back-channel logout tokens, correct or broken as the misbehaviour mode says.

Correct tokens are signed with joserfc. The two broken ones that no JOSE library will
make (``alg: none``, HS256 keyed with a public key) are assembled by hand here: they are
what an attacker would send, and the point is that the relying party refuses them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from joserfc import jwt

from devtools.oidc_provider.clients import Client
from devtools.oidc_provider.keys import Algorithm, KeyRing, new_key
from devtools.oidc_provider.misbehaviour import WRONG_AUDIENCE, WRONG_ISSUER, Misbehaviour, Mode
from devtools.oidc_provider.state import Authentication, Grant, User

ID_TOKEN_LIFETIME = 300  # seconds
ACCESS_TOKEN_JWT_LIFETIME = 600
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_part(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


USERINFO_ONLY: tuple[Mode, ...] = ("claims-in-userinfo-only", "userinfo-wrong-sub")  # a bare ID token


def user_claims(user: User, scope: tuple[str, ...], groups_claim: str, misbehaviour: Misbehaviour) -> dict[str, Any]:
    """The claims about the person that ``scope`` releases (Core §5.4), shared by ID token and userinfo."""
    claims: dict[str, Any] = {"sub": user.sub, groups_claim: list(user.groups)}
    if "profile" in scope:
        claims |= {"preferred_username": user.username, "name": user.name}
    if "email" in scope and user.email:
        claims |= {"email": user.email, "email_verified": user.email_verified and not misbehaviour("email-unverified")}
    return claims


class Signer:
    """Makes the tokens; ``issuer`` is the discovery document's issuer."""

    def __init__(self, keys: KeyRing, misbehaviour: Misbehaviour, groups_claim: str) -> None:
        self.keys = keys
        self.misbehaviour = misbehaviour
        self.groups_claim = groups_claim

    def id_token(self, issuer: str, client: Client, grant: Grant) -> str:
        """An ID token (Core §2) for the code ``grant`` was issued as."""
        bad = self.misbehaviour
        now = int(time.time())
        iat = now - 3600 - ID_TOKEN_LIFETIME if bad("expired") else now + 3600 if bad("issued-in-future") else now
        audience: str | list[str] = client.client_id
        if bad("wrong-aud"):
            audience = WRONG_AUDIENCE
        elif bad("several-aud") or bad("several-aud-no-azp"):
            audience = [client.client_id, WRONG_AUDIENCE]
        claims: dict[str, Any] = {
            "iss": WRONG_ISSUER if bad("wrong-iss") else issuer,
            "aud": audience,
            "azp": WRONG_AUDIENCE if bad("azp-other") else client.client_id,
            "iat": iat,
            "exp": iat + ID_TOKEN_LIFETIME,
            "auth_time": grant.auth_time,
            "acr": grant.acr,
            "amr": list(grant.amr),
            "sid": grant.sid,
            **({"sub": grant.user.sub} if any(bad(mode) for mode in USERINFO_ONLY)
               else user_claims(grant.user, grant.request.scope, self.groups_claim, bad)),
        }
        if bad("several-aud-no-azp"):
            del claims["azp"]
        if bad("no-exp"):
            del claims["exp"]
        nonce = grant.request.nonce
        if nonce is not None and not bad("no-nonce"):
            claims["nonce"] = f"{nonce}-not" if bad("wrong-nonce") else nonce
        if grant.request.openid2_realm and grant.user.openid2_id:  # OpenID 2.0 to OpenID Connect Migration §3
            claims["openid2_id"] = f"not a URL: {grant.user.username}" if bad("openid2-id-not-url") \
                else grant.user.openid2_id
        return self._signed(claims, client.id_token_signed_response_alg)

    def access_token(self, issuer: str, audience: str, client_id: str, scope: tuple[str, ...],
                     user: User | None, authenticated: Authentication | None = None) -> str:
        """A JWT access token (RFC 9068 §2.2) for ``audience``: a person's (``user``) or the client's own.

        ``authenticated``: the person's sign-in, whose ``auth_time``, ``acr`` and ``amr`` the token
        carries (§2.2.1), as a resource server asking for step-up (RFC 9470) needs them.

        The ID token's misbehaviour modes that concern a JWT (issuer, audience, times, the
        signature) break it the same way, so a resource server's checks can be tried one by one.
        """
        bad = self.misbehaviour
        now = int(time.time())
        iat = now - 3600 - ACCESS_TOKEN_JWT_LIFETIME if bad("expired") else now + 3600 if bad("issued-in-future") \
            else now
        claims: dict[str, Any] = {
            "iss": WRONG_ISSUER if bad("wrong-iss") else issuer,
            "aud": WRONG_AUDIENCE if bad("wrong-aud") else audience,
            "sub": user.sub if user is not None else client_id,
            "client_id": client_id,
            "iat": iat,
            "exp": iat + ACCESS_TOKEN_JWT_LIFETIME,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scope),
        }
        if user is not None:  # §2.2.3.1: identity claims may ride along; groups as the ID token has them
            claims |= user_claims(user, scope, self.groups_claim, bad)
        if authenticated is not None:
            claims |= {"auth_time": authenticated.auth_time, "acr": authenticated.acr, "amr": list(authenticated.amr)}
        return self._signed(claims, "RS256", typ="at+jwt")

    def _signed(self, claims: dict[str, Any], alg: Algorithm, *, typ: str = "JWT") -> str:
        """A signed JWT, or the broken one the ID-token misbehaviour asks for."""
        bad = self.misbehaviour
        if bad("alg-none"):
            return _unsigned_part({"alg": "none", "typ": typ}, claims) + "."
        if bad("hs256-public-key"):
            return self._hs256_with_public_key(claims, typ)
        if bad("unknown-kid"):
            stranger = new_key(alg)
            return jwt.encode({"alg": alg, "kid": stranger.kid, "typ": typ}, claims, stranger)
        token = self.keys.sign(claims, alg, typ=typ)
        if bad("bad-signature"):
            head, _, signature = token.rpartition(".")
            token = f"{head}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
        return token

    def _hs256_with_public_key(self, claims: dict[str, Any], typ: str) -> str:
        """The key-confusion attack: HMAC keyed with the RSA public key's PEM, under that key's kid."""
        rsa = self.keys.current("RS256")
        secret = rsa.as_pem(private=False)
        signing_input = _unsigned_part({"alg": "HS256", "kid": rsa.kid, "typ": typ}, claims)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    def logout_token(self, issuer: str, client: Client, user: User, sid: str | None) -> str:
        """A back-channel logout token (Back-Channel Logout 1.0 §2.4), or the broken one asked for."""
        bad = self.misbehaviour
        if bad("logout-garbage"):
            return "this-is-not-a-jwt"
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": WRONG_AUDIENCE if bad("logout-wrong-aud") else client.client_id,
            "iat": int(time.time()),
            "exp": int(time.time()) + 120,
            "jti": 1234567 if bad("logout-jti-not-string") else secrets.token_urlsafe(16),
            "sub": user.sub,
            "events": {"http://example.invalid/other-event": {}} if bad("logout-no-event")
            else {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sid is not None:
            claims["sid"] = sid
        if bad("logout-nonce"):
            claims["nonce"] = secrets.token_urlsafe(8)
        if bad("logout-unsigned"):
            return _unsigned_part({"alg": "none", "typ": "logout+jwt"}, claims) + "."
        return self.keys.sign(claims, client.id_token_signed_response_alg, typ="logout+jwt")
