"""The gateway as one ASGI application.

A thin dispatcher in front of everything: ``/_gateway/auth`` goes straight to
the lean :class:`~gateway.authcheck.AuthCheck`; ``/login``, ``/logout`` and
the rest of ``/_gateway/`` go to a small Starlette app with the sign-in pages;
in proxy mode every other path is authenticated and forwarded upstream.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway import metrics
from gateway.access import Decision
from gateway.answers import json_body, json_headers, send_refusal
from gateway.audit import REQUEST_ID_HEADER, AuditLog, configure_logging, request_id_from
from gateway.authcheck import AuthCheck, scan_headers
from gateway.endpoints import Services, routes
from gateway.endpoints.jwks import JWKS_PATH, JWKSEndpoint
from gateway.errors import BadRequest, RateLimited, SignInBusy, StoreUnavailable
from gateway.events import RateLimitedEvent, StoreDown, request_id
from gateway.forwardauth import ForwardAuth
from gateway.proof import request_uri
from gateway.runtime import Runtime
from gateway.sessions import Session
from gateway.settings import Settings, load_settings
from gateway.types import Message, Receive, Scope, Send
from gateway.web import Pages, SecurityHeaders, cannot_check, client_of

logger = logging.getLogger("gateway")

GATEWAY_PREFIX = "/_gateway/"
AUTH_PATH = "/_gateway/auth"


def _pages_app(services: Services) -> Starlette:
    site = services.pages
    client_address = services.runtime.client_address
    events = services.runtime.events

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        logger.warning("bad request %s %s: %s", request.method, request.url.path, exc)
        if exc.status_code == 403:
            return site.error(403, "Request refused", "This form has expired or did not come from this site. "
                              "Please go back, reload the page and try again.")
        return site.error(exc.status_code, "Bad request", "The request could not be understood.")

    async def rate_limited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        client = client_of(request, client_address)
        logger.warning("rate limited %s %s from %s", request.method, request.url.path, client)
        # /login counts sign-in starts; the callback counts failed sign-ins (gateway.ratelimit).
        events.emit(RateLimitedEvent("login" if request.url.path == "/login" else "failure", client))
        return site.error(429, "Too many attempts", "There were too many sign-in attempts from your address.",
                          retry_after=exc.retry_after)

    async def signin_busy(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInBusy)
        logger.warning("sign-in refused, %d already in flight: %s %s from %s", exc.limit, request.method,
                       request.url.path, client_of(request, client_address))
        return site.error(503, "Too many sign-ins", "Too many sign-ins right now, please try again in a moment.",
                          retry_after=exc.retry_after)

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        logger.error("store unavailable on %s: %s", request.url.path, exc)
        events.emit(StoreDown(request.url.path[:200]))
        return site.error(503, "Temporarily unavailable", "Sign-in is unavailable for a moment. Please try again.")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        return site.error(exc.status_code, titles.get(exc.status_code, "Error"), exc.detail, back_url="/",
                          back_label="Go to the home page")

    async def server_error(request: Request, exc: Exception) -> Response:
        return site.error(500, "Something went wrong", "The gateway hit an unexpected error; it has been logged.")

    return Starlette(
        routes=routes(services),
        exception_handlers={
            BadRequest: bad_request,
            RateLimited: rate_limited,
            SignInBusy: signin_busy,
            StoreUnavailable: store_unavailable,
            HTTPException: http_error,
            Exception: server_error,
        },
    )


class GatewayApp:
    """The ASGI entry point: dispatches to the auth check, the pages or the proxy."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime or Runtime.from_settings(settings)
        self.runtime.events.subscribe(AuditLog())
        self.auth = AuthCheck(self.runtime)
        self.site = Pages(site_name=settings.site_name)
        self.pages = SecurityHeaders(_pages_app(Services(self.runtime, self.auth, self.site)))
        self.auth.forward_auth = ForwardAuth(self.auth, self.pages, self.site)  # Caddy, Traefik
        self.proxy: Any = None
        if settings.mode == "proxy":
            from gateway.proxy import UpstreamProxy

            self.proxy = UpstreamProxy.from_settings(settings, gateway_cookies=self.runtime.gateway_cookie_names())
        self.max_header_bytes = settings.max_header_bytes
        # The assertion's public keys, served in both modes whenever a key file is set (gateway.endpoints.jwks).
        keys = self.runtime.signing_keys
        self.jwks = JWKSEndpoint(keys) if keys is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
                await self.headers_too_large(scope, receive, metrics.counting("other", send))
            elif path == AUTH_PATH and self.proxy is None:
                # Only the front proxy may ask (mode 1: nginx, Caddy, Traefik). In proxy mode a client could name any
                # X-Original-URI and collect proofs for it: the pages answer 404.
                await self.auth(scope, receive, metrics.counting("auth", send))
            elif path == JWKS_PATH and self.jwks is not None:
                await self.jwks(scope, receive, metrics.counting("pages", send))
            elif path.startswith(GATEWAY_PREFIX) or path in ("/login", "/logout") or self.proxy is None:
                client = scope.get("client")
                trusted = client is not None and self.runtime.client_address.is_trusted(client[0])
                request_id.set(request_id_from(scope["headers"], trusted))
                own = path.startswith(GATEWAY_PREFIX) or path in ("/login", "/logout")
                await self.pages(scope, receive, metrics.counting("pages" if own else "other", send))
            else:
                await self.forward(scope, receive, metrics.counting("proxy", send))
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.proxy is not None:
            await self.forward_websocket(scope, receive, send)
        else:  # mode 1: nginx passes WebSockets to the app itself
            await send({"type": "websocket.close", "code": 1008})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # report start-up failures to the server, which stops
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.runtime.revocation.start()
        if self.proxy is not None:
            await self.proxy.startup()

    async def shutdown(self) -> None:
        await self.runtime.revocation.stop()
        if self.proxy is not None:
            await self.proxy.shutdown()
        self.runtime.signins.close()
        self.runtime.exchange.fetcher.close()
        self.runtime.oidc.fetcher.close()
        self.runtime.store.close()

    async def headers_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        """431: the HTTP server in front (uvicorn with httptools) sets no limit of its own."""
        logger.warning("request headers over %d bytes refused: %s %s", self.max_header_bytes, scope["method"],
                       scope["path"][:200])
        response: Response = self.site.error(431, "Request headers too large",
                                             "Your browser sent too much data (often: too many cookies).",
                                             back_url="/", back_label="Go to the home page")
        await SecurityHeaders(response)(scope, receive, send)

    def _incoming(self, scope: Scope) -> tuple[str | None, str | None, str, bool, str, str]:
        """What proxy mode reads of a request, HTTP or WebSocket alike.

        The cookie, the Host, the client address, whether the peer is a trusted
        proxy (nginx terminating TLS: its scheme and port are believed), the
        request target as sent, and the request id (set for this request's log lines).
        """
        client = scope.get("client")
        peer = client[0] if client else None
        cookie, _, _, forwarded_for, host = scan_headers(scope["headers"])
        client_addr = self.runtime.client_address.resolve(peer, forwarded_for)
        trusted = peer is not None and self.runtime.client_address.is_trusted(peer)
        rid = request_id_from(scope["headers"], trusted)
        request_id.set(rid)
        return cookie, host, client_addr, trusted, request_uri(scope), rid

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy mode: ask the access decision, then forward (with the identity) or refuse."""
        cookie, host, client_addr, trusted, uri, rid = self._incoming(scope)
        method = scope["method"]
        rid_header = (REQUEST_ID_HEADER, rid.encode("ascii"))  # the app sees the id the logs name
        try:
            decision, session, refreshed = self.auth.check(cookie, method, host or "", uri)
        except StoreUnavailable:
            response: Response = cannot_check(self.site)
            await SecurityHeaders(response)(scope, receive, send)  # no-store and the CSP, as every gateway page
            return
        if decision.outcome != "allow":
            await self.refuse(scope, receive, send, decision, session, uri)
            return
        if session is None or decision.public:
            await self.proxy.forward(scope, receive, send, (rid_header,), client_addr=client_addr,
                                     trusted_peer=trusted)
            return
        extra = self.auth.identity_headers(session, method, host or "", uri)
        extra.append(rid_header)
        if refreshed is not None:
            cookie_header = (b"set-cookie", refreshed.encode("latin-1"))

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), cookie_header]
                await send(message)

            await self.proxy.forward(scope, receive, send_with_cookie, extra, client_addr=client_addr,
                                     trusted_peer=trusted)
        else:
            await self.proxy.forward(scope, receive, send, extra, client_addr=client_addr, trusted_peer=trusted)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, decision: Decision,
                     session: Session | None, uri: str) -> None:
        """Sign in first (a redirect to the login page) or forbidden (the 403 page); JSON for API clients."""
        self.auth.log_refusal(decision, session, scope["method"], scan_headers(scope["headers"])[4] or "", uri)
        await send_refusal(scope, receive, send, status=401 if decision.outcome == "sign_in" else 403,
                           login=self.runtime.login_url(self.runtime.safe_next(uri)),
                           api=self.auth.refusal_is_api(scope["headers"], uri.partition("?")[0]), uri=uri,
                           pages=self.pages)

    async def forward_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy mode: a WebSocket handshake is judged as a GET of its URI (the same decision), then relayed.

        A browser cannot follow a redirect from a handshake: refusals are the
        401/403 JSON answers API clients get. A revoked session cannot open a
        new socket; one already open stays open until either side closes it.
        """
        from gateway.proxy import refuse_websocket

        if scope["path"].startswith(GATEWAY_PREFIX) or scope["path"] in ("/login", "/logout"):
            await send({"type": "websocket.close", "code": 1008})  # the gateway's own pages: never the app's
            return
        cookie, host, client_addr, trusted, uri, rid = self._incoming(scope)
        try:
            decision, session, refreshed = self.auth.check(cookie, "GET", host or "", uri)
        except StoreUnavailable:
            logger.error("websocket %s refused: the revocation list is not current", uri[:200])
            await refuse_websocket(scope, send, 503, [(b"retry-after", b"5")], b"Temporarily unavailable.")
            return
        if decision.outcome != "allow":
            self.auth.log_refusal(decision, session, "GET", host or "", uri)
            status = 401 if decision.outcome == "sign_in" else 403
            body = json_body(status, self.runtime.login_url(self.runtime.safe_next(uri)))
            await refuse_websocket(scope, send, status, json_headers(body, status), body)
            return
        extra: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, rid.encode("ascii"))]
        accept: list[tuple[bytes, bytes]] = []
        if session is not None and not decision.public:
            extra += self.auth.identity_headers(session, "GET", host or "", uri)
            if refreshed is not None:
                accept.append((b"set-cookie", refreshed.encode("latin-1")))
        await self.proxy.forward_websocket(scope, receive, send, extra, client_addr=client_addr,
                                           trusted_peer=trusted, accept_headers=accept)


def create_app(settings: Settings) -> GatewayApp:
    return GatewayApp(settings)


def create_app_from_environ() -> GatewayApp:
    """uvicorn factory (``--factory``): settings from ``GATEWAY_CONFIG`` and ``GATEWAY_*``.

    Each worker process calls it, so each installs the log format (gateway.audit) itself.
    """
    settings = load_settings(os.environ.get("GATEWAY_CONFIG"))
    configure_logging(settings)
    return GatewayApp(settings)
