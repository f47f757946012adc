"""``/_gateway/auth`` in the dialect of Caddy's ``forward_auth`` and Traefik's ``ForwardAuth``.

nginx's ``auth_request`` names the original request with ``X-Original-URI``
and ``X-Original-Method`` and turns the gateway's 401 into a redirect itself
(``error_page``). Caddy and Traefik name it with ``X-Forwarded-Method``,
``-Proto``, ``-Host`` and ``-Uri``, and pass any answer other than 2xx straight
to the browser. So a request to the auth check that has ``X-Forwarded-Uri``
and no ``X-Original-URI``, from an address in ``trusted_proxies``, is answered
here:

* allowed: ``200`` with the identity headers, as for nginx (the proxy copies
  them: Caddy's ``copy_headers``, Traefik's ``authResponseHeaders``), and the
  app's Cookie header both as ``X-Gateway-Cookie`` and as ``Cookie`` (Traefik
  can copy a header but not rename it; without app cookies there is none, and
  Traefik then removes the browser's);
* sign in first: a browser gets ``302`` to the login page at ``public_url``
  (``next``: the original request), an API client ``401`` JSON;
* forbidden: the gateway's 403 page, or ``403`` JSON for an API client;
* store unavailable: the 503 page;
* a bearer token refused: ``401``/``403`` JSON with its RFC 6750 ``WWW-Authenticate``. (The
  proxy passes the client's ``Authorization`` to the app itself: with Caddy or Traefik,
  ``pass_bearer_token`` cannot hold the token back; remove the header in the proxy's config.)

From any other address those headers mean nothing (a client could otherwise
choose the request it is judged for): without ``X-Original-URI`` there is then
no request to judge, and the auth check answers 400 and logs a line that names
``trusted_proxies`` (a proxy on a container network, not loopback, must be
listed there). Judging it as ``GET /`` instead would void every rule.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from starlette.responses import Response

from gateway.gate.answers import send_refusal
from gateway.gate.authenticate import Authenticator
from gateway.gate.clientaddr import ClientAddress
from gateway.pages.languages import N_
from gateway.pages.render import Pages, SecurityHeaders, cannot_check
from gateway.state.sessions import host_name
from gateway.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("gateway.access")


class ForwardedRequest(NamedTuple):
    """The request a forward-auth proxy asks about, from its ``X-Forwarded-*`` headers."""

    method: str
    proto: str
    host: str
    uri: str


class ForwardAuth:
    """Answers Caddy and Traefik; the decision itself is :meth:`Authenticator.check`, as in every mode."""

    def __init__(self, auth: Authenticator, client_address: ClientAddress, pages: ASGIApp, site: Pages,
                 public_origin: str) -> None:
        self.auth = auth
        self.client_address = client_address
        self.pages = pages  # the gateway's pages app, for the 403 page
        self.site = site
        self.public_origin = public_origin
        self.public_host = host_name(public_origin.partition("://")[2])

    def forwarded(self, scope: Scope) -> ForwardedRequest | None:
        """The forwarded request, if a trusted proxy sent ``X-Forwarded-Uri``; else None."""
        if not self.client_address.trusts_peer(scope):
            return None
        method = proto = host = uri = None
        plain_host = ""
        for name, value in scope["headers"]:
            if name == b"x-forwarded-uri":
                uri = value.decode("latin-1")
            elif name == b"x-forwarded-method":
                method = value.decode("latin-1")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
            elif name == b"x-forwarded-host":
                host = value.decode("latin-1")
            elif name == b"host" and not plain_host:
                plain_host = value.decode("latin-1")
        if uri is None:
            return None
        proto = proto.split(",")[0].strip().lower() if proto else "http"
        return ForwardedRequest((method or "GET").upper(), proto if proto in ("http", "https") else "http",
                                (host or plain_host).split(",")[0].strip(), uri)

    def next_target(self, request: ForwardedRequest) -> str:
        """Where the login page sends the browser back to: the original request, absolute when on another host."""
        if host_name(request.host) == self.public_host:
            return request.uri
        return f"{request.proto}://{request.host}{request.uri}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send, cookie: str | None,
                       request: ForwardedRequest, authorization: str | None = None) -> None:
        auth = self.auth
        self.client_address.set_request_id(scope)
        if not request.uri.startswith("/"):
            self.site.languages.use(scope)
            await self.page(scope, receive, send, self.site.error(400, N_("Bad request"),
                                                                  N_("The request could not be understood.")))
            return
        method, host, uri = request.method, request.host, request.uri
        verdict = (auth.check(cookie, method, host, uri, self.next_target(request)) if authorization is None
                   else await auth.check_bearer(authorization, cookie, method, host, uri, self.next_target(request)))
        if verdict.status == 503:
            self.site.languages.use(scope)
            await self.page(scope, receive, send, cannot_check(self.site))
            return
        if verdict.status == 200:
            headers = auth.allow_headers(verdict, cookie, method, host, uri)
            app_cookie = auth.app_cookie(cookie)
            if app_cookie:  # Traefik cannot rename X-Gateway-Cookie: authResponseHeaders "Cookie" copies this one
                headers.append((b"cookie", app_cookie.encode("latin-1")))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        auth.log_refusal(verdict, method, host, uri)
        await send_refusal(scope, receive, send, status=verdict.status, login=self.public_origin + verdict.login,
                           api=auth.refusal_is_api(scope["headers"], uri.partition("?")[0]), uri=uri, pages=self.pages,
                           paths=self.site.paths, challenge=verdict.challenge)

    async def refuse_unknown(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An auth request that names no original request the gateway may believe: 400, logged."""
        self.client_address.set_request_id(scope)
        client = scope.get("client")
        forwarded = any(name == b"x-forwarded-uri" for name, _ in scope["headers"])
        logger.warning("auth request refused (400): %s from %s, which is not in trusted_proxies; add the "
                       "forward-auth proxy's address to trusted_proxies (nginx sends X-Original-URI)",
                       "X-Forwarded-Uri" if forwarded else "no X-Original-URI and no X-Forwarded-Uri",
                       client[0] if client else "an unknown peer")
        await self.page(scope, receive, send, self.site.error(
            400, "Bad request", "The sign-in check cannot tell which page was asked for."))

    async def page(self, scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        await SecurityHeaders(response)(scope, receive, send)
