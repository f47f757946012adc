"""The token endpoint (Core §3.1.3), the userinfo endpoint (Core §5.3), introspection (RFC 7662), revocation (RFC 7009).

The client authenticates with client_secret_basic or client_secret_post (one of them,
RFC 6749 §2.3.1); the code is used once, by the client it was issued to, with the same
redirect URI, and with the PKCE verifier whose S256 hash is the challenge (RFC 7636 §4.6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.oidc_provider.clients import Client, basic_credentials
from devtools.oidc_provider.misbehaviour import WRONG_AUDIENCE, WRONG_ISSUER
from devtools.oidc_provider.provider import ACCESS_TOKEN_LIFETIME, Provider, parameters
from devtools.oidc_provider.tokens import ACCESS_TOKEN_JWT_LIFETIME, user_claims

PATH = "/token"
USERINFO_PATH = "/userinfo"
INTROSPECTION_PATH = "/introspect"
REVOCATION_PATH = "/revoke"
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(error: str, description: str, status_code: int = 400, headers: dict[str, str] | None = None,
                ) -> JSONResponse:
    """An error response of RFC 6749 §5.2."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status_code,
                        headers={**NO_STORE, **(headers or {})})


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def bearer_token(request: Request) -> str | None:
    """The access token of an ``Authorization: Bearer`` header (RFC 6750 §2.1)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class TokenEndpoint:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.token, methods=["POST"]),
                Route(USERINFO_PATH, self.userinfo, methods=["GET", "POST"]),
                Route(INTROSPECTION_PATH, self.introspect, methods=["POST"]),
                Route(REVOCATION_PATH, self.revoke, methods=["POST"])]

    def authenticate(self, request: Request, form: dict[str, str]) -> Client | JSONResponse:
        """The client, or the 401 of RFC 6749 §5.2 ``invalid_client``."""
        basic = basic_credentials(request.headers.get("authorization"))
        posted = (form.get("client_id", ""), form.get("client_secret", ""))
        if basic and posted[1]:
            return oauth_error("invalid_request", "use one client authentication method, not two")
        for client_id, secret in basic or [posted]:
            client = self.provider.clients.get(client_id)
            if client is not None and secret and client.secret_matches(secret):
                return client
        challenge = {"WWW-Authenticate": 'Basic realm="token"'} if basic else {}
        return oauth_error("invalid_client", "client authentication failed", 401, challenge)

    async def token(self, request: Request) -> Response:
        form = await parameters(request)
        client = self.authenticate(request, form)
        if isinstance(client, JSONResponse):
            return client
        audience = self.provider.access_token_audience
        if form.get("grant_type") == "client_credentials" and audience is not None:  # RFC 6749 §4.4
            scope = tuple(form.get("scope", "").split())
            token = self.provider.access_token(request, client.client_id, scope)
            return JSONResponse({"access_token": token, "token_type": "Bearer",
                                 "expires_in": ACCESS_TOKEN_JWT_LIFETIME, "scope": " ".join(scope)}, headers=NO_STORE)
        if form.get("grant_type") != "authorization_code":
            return oauth_error("unsupported_grant_type", "only grant_type=authorization_code"
                               + (" or client_credentials" if audience is not None else ""))
        codes = self.provider.codes
        code = form.get("code", "")
        grant = codes.get(code) if self.provider.misbehaviour("replay-code") else codes.take(code)
        if grant is None:
            return oauth_error("invalid_grant", "the code is unknown, expired or already used")
        if grant.request.client_id != client.client_id:
            return oauth_error("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.request.redirect_uri:
            return oauth_error("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if not VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), grant.request.code_challenge):
            return oauth_error("invalid_grant", "code_verifier does not match the code_challenge (S256)")
        access_token = self.provider.access_tokens.add(grant, self.provider.access_token(
            request, client.client_id, grant.request.scope, grant.user, grant.authentication))
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_TOKEN_LIFETIME),
            "scope": " ".join(grant.request.scope),
            "id_token": self.provider.signer.id_token(self.provider.issuer(request), client, grant),
        }
        return JSONResponse(body, headers=NO_STORE)

    async def userinfo(self, request: Request) -> Response:
        grant = self.provider.access_tokens.get(bearer_token(request) or "")
        if grant is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"', **NO_STORE})
        claims = user_claims(grant.user, grant.request.scope, self.provider.groups_claim, self.provider.misbehaviour)
        if self.provider.misbehaviour("userinfo-wrong-sub"):
            claims["sub"] = "someone-else-" + claims["sub"][:16]
        return JSONResponse(claims, headers=NO_STORE)

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 §2: what an access token stands for, to an authenticated client (a resource server).

        Unknown, expired and revoked tokens are ``{"active": false}`` and nothing more (§2.2). The
        ID-token misbehaviour modes that concern a resource server's checks (``wrong-iss``, ``wrong-aud``,
        ``expired``) break the answer the same way, so each check can be seen to refuse;
        ``introspection-no-aud`` leaves ``aud`` out.
        """
        form = await parameters(request)
        client = self.authenticate(request, form)
        if isinstance(client, JSONResponse):
            return client
        issued = self.provider.issued.get(form.get("token", ""))
        if issued is None:
            return JSONResponse({"active": False}, headers=NO_STORE)
        bad = self.provider.misbehaviour
        iat = issued.issued - 3600 - ACCESS_TOKEN_JWT_LIFETIME if bad("expired") else issued.issued
        claims: dict[str, Any] = {
            "active": True,
            "iss": WRONG_ISSUER if bad("wrong-iss") else issued.issuer,
            "aud": WRONG_AUDIENCE if bad("wrong-aud") else issued.audience,
            "client_id": issued.client_id,
            "sub": issued.client_id,
            "iat": iat,
            "exp": iat + ACCESS_TOKEN_JWT_LIFETIME,
            "scope": " ".join(issued.scope),
            "token_type": "Bearer",
        }
        if bad("introspection-no-aud"):
            del claims["aud"]
        if issued.user is not None:  # the person's claims, as the JWT access token carries them
            claims |= user_claims(issued.user, issued.scope, self.provider.groups_claim, bad)
            claims["username"] = issued.user.username
        if issued.authenticated is not None:
            authenticated = issued.authenticated
            claims |= {"auth_time": authenticated.auth_time, "acr": authenticated.acr, "amr": list(authenticated.amr)}
        return JSONResponse(claims, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        """RFC 7009 §2: the client that holds an access token ends it; introspection then says inactive.

        Another client's token is refused (§2.1); an unknown one is answered 200 all the same (§2.2).
        """
        form = await parameters(request)
        client = self.authenticate(request, form)
        if isinstance(client, JSONResponse):
            return client
        token = form.get("token", "")
        issued = self.provider.issued.get(token)
        if issued is not None and issued.client_id != client.client_id:
            return oauth_error("unauthorized_client", "the token was issued to another client")
        self.provider.issued.remove(token)
        self.provider.access_tokens.remove(token)
        return Response(status_code=200, headers=NO_STORE)
