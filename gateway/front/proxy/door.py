"""Mode 2's door: judge each request with the gate, then forward it (with the identity) or refuse it.

The same :class:`~gateway.gate.authenticate.Verdict` as nginx's ``auth_request`` gets, said the
way a browser hears it when the gateway is the reverse proxy itself: a redirect to the login page,
the 403 page, JSON for API clients (:func:`~gateway.gate.answers.send_refusal`); a WebSocket
handshake is judged as a GET of its URI and refused with the JSON answers (a browser cannot follow
a redirect from a handshake).
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from gateway.front.proxy._proxy import UpstreamProxy
from gateway.front.proxy._websocket import refuse as refuse_websocket
from gateway.gate.answers import json_body, json_headers, send_refusal
from gateway.gate.authenticate import Authenticator, Verdict, scan_headers
from gateway.gate.clientaddr import ClientAddress
from gateway.observe.audit import REQUEST_ID_HEADER
from gateway.pages.render import Pages, SecurityHeaders, cannot_check
from gateway.proof import request_uri
from gateway.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("gateway")


class ProxyDoor:
    """Authenticates every request of the site, then hands it to :class:`UpstreamProxy` or refuses it."""

    def __init__(self, auth: Authenticator, client_address: ClientAddress, proxy: UpstreamProxy, pages: ASGIApp,
                 site: Pages) -> None:
        self.auth = auth
        self.client_address = client_address
        self.proxy = proxy
        self.pages = pages  # the gateway's pages app, for the 403 page
        self.site = site

    def _incoming(self, scope: Scope) -> tuple[str | None, str, str, bool, str, str, str | None]:
        """What the door reads of a request, HTTP or WebSocket alike.

        The cookie, the Host, the client address, whether the peer is a trusted
        proxy (nginx terminating TLS: its scheme and port are believed), the
        request target as sent, and the request id (set for this request's log lines).
        """
        client = scope.get("client")
        peer = client[0] if client else None
        cookie, _, _, forwarded_for, host, authorization = scan_headers(scope["headers"])
        client_addr = self.client_address.resolve(peer, forwarded_for)
        trusted = self.client_address.trusts_peer(scope)
        rid = self.client_address.set_request_id(scope, trusted)
        return cookie, host or "", client_addr, trusted, request_uri(scope), rid, authorization

    def _without_token(self, scope: Scope, verdict: Verdict) -> Scope:
        """The request as the app receives it: a bearer token that authenticated it stays here, unless passed on."""
        if not verdict.bearer or self.auth.pass_bearer_token:
            return scope
        return {**scope, "headers": [header for header in scope["headers"] if header[0] != b"authorization"]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Ask the gate, then forward (with the identity) or refuse."""
        cookie, host, client_addr, trusted, uri, rid, authorization = self._incoming(scope)
        if not host:  # HTTP/1.0 without Host: no site to judge it for (nginx's snippets refuse it too)
            logger.info("request without Host refused (400): %s %s", scope["method"], uri[:200])
            await SecurityHeaders(self.site.error(400, "Bad request", "The request names no host."))(
                scope, receive, send)
            return
        method = scope["method"]
        rid_header = (REQUEST_ID_HEADER, rid.encode("ascii"))  # the app sees the id the logs name
        verdict = (self.auth.check(cookie, method, host, uri) if authorization is None  # no new work for a cookie
                   else await self.auth.check_bearer(authorization, cookie, method, host, uri))
        if verdict.status == 503:
            self.site.languages.use(scope)
            response: Response = cannot_check(self.site)
            await SecurityHeaders(response)(scope, receive, send)  # no-store and the CSP, as every gateway page
            return
        if verdict.status != 200:
            await self.refuse(scope, receive, send, verdict, host, uri)
            return
        session = verdict.session
        if session is None or verdict.public:
            await self.proxy.forward(scope, receive, send, (rid_header,), client_addr=client_addr,
                                     trusted_peer=trusted)
            return
        scope = self._without_token(scope, verdict)
        extra = self.auth.identity_headers(session, method, host, uri)
        extra.append(rid_header)
        if verdict.refreshed is not None:
            cookie_header = (b"set-cookie", verdict.refreshed.encode("latin-1"))

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), cookie_header]
                await send(message)

            await self.proxy.forward(scope, receive, send_with_cookie, extra, client_addr=client_addr,
                                     trusted_peer=trusted)
        else:
            await self.proxy.forward(scope, receive, send, extra, client_addr=client_addr, trusted_peer=trusted)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, verdict: Verdict, host: str,
                     uri: str) -> None:
        """Sign in first (a redirect to the login page) or forbidden (the 403 page); JSON for API clients."""
        self.auth.log_refusal(verdict, scope["method"], host, uri)
        await send_refusal(scope, receive, send, status=verdict.status, login=verdict.login,
                           api=self.auth.refusal_is_api(scope["headers"], uri.partition("?")[0]), uri=uri,
                           pages=self.pages, paths=self.site.paths, challenge=verdict.challenge)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake is judged as a GET of its URI (the same decision), then relayed.

        A revoked session cannot open a new socket; one already open stays open until either side closes it.
        """
        if self.site.paths.is_own(scope["path"]):
            await send({"type": "websocket.close", "code": 1008})  # the gateway's own pages: never the app's
            return
        cookie, host, client_addr, trusted, uri, rid, authorization = self._incoming(scope)
        verdict = (self.auth.check(cookie, "GET", host, uri) if authorization is None
                   else await self.auth.check_bearer(authorization, cookie, "GET", host, uri))
        if verdict.status == 503:
            logger.error("websocket %s refused: the revocation list is not current", uri[:200])
            await refuse_websocket(scope, send, 503, [(b"retry-after", b"5")], b"Temporarily unavailable.")
            return
        if verdict.status != 200:
            self.auth.log_refusal(verdict, "GET", host, uri)
            body = json_body(verdict.status, verdict.login, bearer=bool(verdict.challenge))
            headers = json_headers(body, verdict.status, self.site.paths.login, verdict.challenge)
            await refuse_websocket(scope, send, verdict.status, headers, body)
            return
        extra: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, rid.encode("ascii"))]
        accept: list[tuple[bytes, bytes]] = []
        if verdict.session is not None and not verdict.public:
            scope = self._without_token(scope, verdict)
            extra += self.auth.identity_headers(verdict.session, "GET", host, uri)
            if verdict.refreshed is not None:
                accept.append((b"set-cookie", verdict.refreshed.encode("latin-1")))
        await self.proxy.forward_websocket(scope, receive, send, extra, client_addr=client_addr,
                                           trusted_peer=trusted, accept_headers=accept)
