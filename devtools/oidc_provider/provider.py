"""The state one app instance shares between its endpoints, and the authorization response.

``Provider`` resolves the issuer (the public base URL), owns the keys, the clients, the
misbehaviour switch and the in-memory grants, and sends authorization responses back
to the client in the response mode it asked for.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from devtools.oidc_provider.clients import Client, Clients
from devtools.oidc_provider.keys import KeyRing
from devtools.oidc_provider.misbehaviour import WRONG_ISSUER, Misbehaviour
from devtools.oidc_provider.pages import form_post_page
from devtools.oidc_provider.state import (
    Authentication,
    AuthorizationRequest,
    Expiring,
    Grant,
    IssuedToken,
    Session,
    User,
)
from devtools.oidc_provider.tokens import Signer

CONSENT_LIFETIME = 600.0  # seconds a consent page may stay open
CODE_LIFETIME = 60.0  # authorization codes are short-lived (RFC 6749 §4.1.2: 10 minutes at most)
ACCESS_TOKEN_LIFETIME = 600.0  # as an RFC 9068 access token's (tokens.ACCESS_TOKEN_JWT_LIFETIME)
SESSION_LIFETIME = 8 * 3600.0


def text_fields(data: FormData) -> dict[str, str]:
    """A form's text fields (file uploads have no place in any of these endpoints)."""
    return {key: value for key, value in data.items() if isinstance(value, str)}


async def parameters(request: Request) -> dict[str, str]:
    """The request's parameters: the form of a POST, else the query (Core §3.1.2.1 allows both)."""
    if request.method != "POST":
        return dict(request.query_params)
    async with request.form() as data:
        return text_fields(data)


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to whatever query it already has (RFC 6749 §3.1.2)."""
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


class Provider:
    """Everything one ``create_app`` instance shares."""

    def __init__(self, base_url: str | None, clients: list[Client], groups_claim: str = "groups",
                 openid2_provider: str | None = None, access_token_audience: str | None = None,
                 ignore_step_up: bool = False, opaque_access_tokens: bool = False) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        # The local OpenID 2.0 provider whose users this one vouches for (openid2_id); POST /_dev/openid2 switches it.
        self.openid2_provider = openid2_provider.rstrip("/") if openid2_provider else None
        self.clients = Clients(clients)
        self.keys = KeyRing()
        self.misbehaviour = Misbehaviour()
        self.groups_claim = groups_claim
        # Access tokens are RFC 9068 JWTs for this audience (and client credentials are granted); None: opaque.
        self.access_token_audience = access_token_audience
        # Access tokens are random strings even with an audience: a resource server must introspect them (RFC 7662).
        self.opaque_access_tokens = opaque_access_tokens
        # Disregard max_age, prompt=login, acr_values and claims (devtools/stepup.py): a relying party's refusal path.
        self.ignore_step_up = ignore_step_up
        self.signer = Signer(self.keys, self.misbehaviour, groups_claim)
        self.pending: Expiring[AuthorizationRequest] = Expiring(CONSENT_LIFETIME)
        self.codes: Expiring[Grant] = Expiring(CODE_LIFETIME)
        self.access_tokens: Expiring[Grant] = Expiring(ACCESS_TOKEN_LIFETIME)  # the code flow's, for userinfo
        self.issued: Expiring[IssuedToken] = Expiring(ACCESS_TOKEN_LIFETIME)  # every access token, for introspection
        self.sessions: Expiring[Session] = Expiring(SESSION_LIFETIME)

    def issuer(self, request: Request) -> str:
        """The configured public URL, or the scheme and host the request was sent to."""
        return self._base_url or f"{request.url.scheme}://{request.url.netloc}"

    def access_token(self, request: Request, client_id: str, scope: tuple[str, ...], user: User | None = None,
                     authenticated: Authentication | None = None, *, opaque: bool = False) -> str:
        """A new access token, remembered for introspection: an RFC 9068 JWT for ``access_token_audience``, or
        opaque (random) without one, with ``--opaque-access-tokens`` or when ``opaque`` asks for it.

        Introspection names the audience, or the client's id when no audience is configured.
        """
        issuer, audience = self.issuer(request), self.access_token_audience
        if opaque or self.opaque_access_tokens or audience is None:
            token = secrets.token_urlsafe(32)
        else:
            token = self.signer.access_token(issuer, audience, client_id, scope, user, authenticated)
        issued = IssuedToken(issuer, client_id, audience or client_id, scope, int(time.time()), user, authenticated)
        return self.issued.add(issued, token)

    def respond(self, request: Request, auth: AuthorizationRequest, params: dict[str, str]) -> Response:
        """Send an authorization response (a code or an error) to the client's redirect URI.

        Adds ``state`` and the RFC 9207 ``iss`` parameter, unless told to misbehave.
        """
        params = dict(params)
        if auth.state is not None:
            params["state"] = auth.state
        if not self.misbehaviour("no-iss-param"):
            params["iss"] = WRONG_ISSUER if self.misbehaviour("wrong-iss-param") else self.issuer(request)
        if auth.response_mode == "form_post":
            return form_post_page(request, auth.redirect_uri, params)
        return RedirectResponse(with_query(auth.redirect_uri, params), status_code=303)
