"""Discovery (OpenID Connect Discovery 1.0 §3), the JWKS, the home page and the ``/_dev`` switches.

The ``/_dev`` endpoints exist for tests: rotate the signing keys, choose a misbehaviour, mint an
access token for a user name (``--access-token-audience``).
They take JSON and need no credentials, like everything else here: development only.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from devtools.oidc_provider import authorize, logout, token_endpoint
from devtools.oidc_provider.keys import ALGORITHMS
from devtools.oidc_provider.misbehaviour import MODES
from devtools.oidc_provider.pages import page
from devtools.oidc_provider.provider import Provider
from devtools.oidc_provider.state import ACR_MFA, ACR_PWD, ACR_VALUES, Authentication, User

JWKS_PATH = "/jwks.json"


def _authentication(body: dict[str, Any]) -> Authentication | None:
    """The sign-in a minted access token reports (``/_dev/access-token``), or None when malformed."""
    auth_time, acr = body.get("auth_time", int(time.time())), body.get("acr", ACR_PWD)
    amr = body.get("amr", ["pwd", "otp"] if acr == ACR_MFA else ["pwd"])
    if type(auth_time) is not int or acr not in ACR_VALUES or not isinstance(amr, list) \
            or not all(isinstance(method, str) for method in amr):
        return None
    return Authentication(auth_time, acr, tuple(amr))


class Discovery:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/.well-known/openid-configuration", self.configuration),
            Route(JWKS_PATH, self.jwks),
            Route("/_dev/rotate", self.rotate, methods=["POST"]),
            Route("/_dev/misbehave", self.misbehave, methods=["GET", "POST"]),
            Route("/_dev/openid2", self.openid2, methods=["GET", "POST"]),
            Route("/_dev/access-token", self.access_token, methods=["POST"]),
        ]

    def document(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + authorize.PATH,
            "token_endpoint": issuer + token_endpoint.PATH,
            "userinfo_endpoint": issuer + token_endpoint.USERINFO_PATH,
            "introspection_endpoint": issuer + token_endpoint.INTROSPECTION_PATH,
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint": issuer + token_endpoint.REVOCATION_PATH,
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "jwks_uri": issuer + JWKS_PATH,
            "end_session_endpoint": issuer + logout.PATH,
            "scopes_supported": ["openid", "email", "profile"],
            "response_types_supported": ["code"],
            "response_modes_supported": list(authorize.RESPONSE_MODES),
            "grant_types_supported": ["authorization_code",
                                      *(["client_credentials"] if self.provider.access_token_audience else [])],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "nonce", "auth_time", "acr", "amr", "sid",
                                 "email", "email_verified", "preferred_username", "name", self.provider.groups_claim,
                                 "openid2_id"],
            "acr_values_supported": list(ACR_VALUES),
            "claims_parameter_supported": True,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    async def configuration(self, request: Request) -> Response:
        return JSONResponse(self.document(self.provider.issuer(request)))

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.provider.keys.jwks(), headers={"Cache-Control": "max-age=60"})

    async def rotate(self, request: Request) -> Response:
        """Publish a new key per algorithm and sign with it from now on; old keys stay published."""
        return JSONResponse({"signing_kids": self.provider.keys.rotate()})

    async def misbehave(self, request: Request) -> Response:
        """GET: the current mode. POST ``{"mode": "..."}``: switch (``"none"`` is correct behaviour)."""
        if request.method == "POST":
            try:
                body = await request.json()
                self.provider.misbehaviour.set(body.get("mode") if isinstance(body, dict) else None)
            except ValueError as exc:
                return JSONResponse({"error": str(exc), "modes": list(MODES)}, status_code=400)
        return JSONResponse({"mode": self.provider.misbehaviour.mode, "modes": list(MODES)})

    async def access_token(self, request: Request) -> Response:
        """POST ``{"username": ..., "groups": [...], "email": ..., "client_id": ...}``: an RFC 9068 access token.

        ``auth_time`` (default now), ``acr`` and ``amr`` (default the form without the one-time code) say
        when and how that person signed in, for a resource server's step-up checks (RFC 9470).
        ``"opaque": true``: a random token that only introspection (RFC 7662) explains.

        What a client would hold after that person signed in with the code flow (this provider
        lets anyone be anyone), without a browser; the misbehaviour mode applies.
        """
        audience = self.provider.access_token_audience
        body = await request.json()
        if audience is None or not isinstance(body, dict) or not isinstance(body.get("username"), str):
            return JSONResponse({"error": "needs --access-token-audience and {\"username\": ...}"}, status_code=400)
        authenticated = _authentication(body)
        if authenticated is None:
            return JSONResponse({"error": "auth_time is a number, acr one of " + ", ".join(ACR_VALUES)
                                 + ", amr a list of strings"}, status_code=400)
        email = body.get("email")
        user = User(body["username"], body["username"], email if isinstance(email, str) else None,
                    isinstance(email, str), tuple(str(g) for g in body.get("groups", [])))
        token = self.provider.access_token(request, str(body.get("client_id", "gateway")),
                                           ("openid", "profile", "email"), user, authenticated,
                                           opaque=body.get("opaque") is True)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "sub": user.sub})

    async def openid2(self, request: Request) -> Response:
        """GET: whose OpenID 2.0 identifiers ``openid2_id`` names. POST ``{"provider": URL or null}``: switch.

        Pointing it at a provider this one is not authoritative for is the
        migration attack a relying party must catch (Migration §6).
        """
        if request.method == "POST":
            body = await request.json()
            url = body.get("provider") if isinstance(body, dict) else None
            if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")):
                return JSONResponse({"error": "provider must be an http(s) URL or null"}, status_code=400)
            self.provider.openid2_provider = url.rstrip("/") if url else None
        return JSONResponse({"provider": self.provider.openid2_provider})

    async def home(self, request: Request) -> Response:
        issuer = self.provider.issuer(request)
        context = {"issuer": issuer, "document": self.document(issuer), "clients": self.provider.clients.all(),
                   "modes": MODES, "mode": self.provider.misbehaviour.mode}
        return page(request, "home.html", context)
