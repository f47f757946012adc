"""The gateway as one ASGI application: the dispatcher.

A thin dispatcher in front of everything: ``/_gateway/auth`` goes straight to nginx's door
(:class:`~gateway.front.auth_request.AuthRequest`); ``/login``, ``/logout`` and the rest of
``/_gateway/`` go to a small Starlette app with the gateway's pages (:mod:`gateway.pages`); in proxy
mode every other path goes through mode 2's door (:class:`~gateway.front.proxy.ProxyDoor`). Which
paths are the gateway's own is :mod:`gateway.paths`'s to say.
"""

from __future__ import annotations

import logging
import os
from itertools import chain

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import BadRequest, RateLimited, SignInBusy, StoreUnavailable
from gateway.front.auth_request import AuthRequest
from gateway.front.forward_auth import ForwardAuth
from gateway.front.proxy import ProxyDoor, UpstreamProxy
from gateway.observe import metrics
from gateway.observe.audit import AuditLog, configure_logging
from gateway.observe.events import RateLimitedEvent, StoreDown
from gateway.pages import Services, routes
from gateway.pages.jwks import JWKSEndpoint
from gateway.pages.languages import N_
from gateway.pages.render import Branding, InLanguage, Pages, SecurityHeaders, client_of
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings
from gateway.types import Receive, Scope, Send

logger = logging.getLogger("gateway")


def _pages_app(services: Services) -> Starlette:
    site = services.pages
    client_address = services.runtime.client_address
    events = services.runtime.events

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        logger.warning("bad request %s %s: %s", request.method, request.url.path, exc)
        if exc.status_code == 403:
            return site.error(403, N_("Request refused"), N_("This form has expired or did not come from this site. "
                              "Please go back, reload the page and try again."))
        return site.error(exc.status_code, N_("Bad request"), N_("The request could not be understood."))

    async def rate_limited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        client = client_of(request, client_address)
        logger.warning("rate limited %s %s from %s", request.method, request.url.path, client)
        # /login counts sign-in starts; the callback counts failed sign-ins (gateway.state.ratelimit).
        events.emit(RateLimitedEvent("login" if request.url.path == site.paths.login else "failure", client))
        return site.error(429, N_("Too many attempts"), N_("There were too many sign-in attempts from your address."),
                          retry_after=exc.retry_after)

    async def signin_busy(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInBusy)
        logger.warning("sign-in refused, %d already in flight: %s %s from %s", exc.limit, request.method,
                       request.url.path, client_of(request, client_address))
        return site.error(503, N_("Too many sign-ins"),
                          N_("Too many sign-ins right now, please try again in a moment."), retry_after=exc.retry_after)

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        logger.error("store unavailable on %s: %s", request.url.path, exc)
        events.emit(StoreDown(request.url.path[:200]))
        return site.error(503, N_("Temporarily unavailable"),
                          N_("Sign-in is unavailable for a moment. Please try again."))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: (N_("Not found"), N_("There is no page at this address.")),
                  405: (N_("Method not allowed"), N_("This page cannot be used that way."))}
        title, detail = titles.get(exc.status_code, (N_("Error"), N_("The request could not be understood.")))
        return site.error(exc.status_code, title, detail, back_url="/", back_label=N_("Go to the home page"))

    async def server_error(request: Request, exc: Exception) -> Response:
        return site.error(500, N_("Something went wrong"),
                          N_("The gateway hit an unexpected error; it has been logged."))

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
    """The ASGI entry point: dispatches to a door (auth check or proxy) or the pages."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime or Runtime.from_settings(settings)
        self.runtime.events.subscribe(AuditLog())
        runtime = self.runtime
        self.paths = paths = runtime.paths
        self.site = Pages(settings.site_name, paths, templates_dir=settings.templates_dir,
                          branding=Branding(settings.logo_url, settings.brand_color, settings.brand_color_dark))
        self.pages = SecurityHeaders(InLanguage(_pages_app(Services(runtime, self.site)), self.site.languages),
                                     static_prefix=paths.static + "/")
        forward_auth = ForwardAuth(runtime.auth, runtime.client_address, self.pages, self.site,
                                   settings.public_origin)  # Caddy, Traefik
        self.auth = AuthRequest(runtime.auth, runtime.client_address, forward_auth)
        self.proxy: ProxyDoor | None = None
        if settings.mode == "proxy":
            upstream = UpstreamProxy.from_settings(settings, gateway_cookies=runtime.gateway_cookie_names(),
                                                   error_page=self.upstream_error_page)
            self.proxy = ProxyDoor(runtime.auth, runtime.client_address, upstream, self.pages, self.site)
        self.max_header_bytes = settings.max_header_bytes
        # The assertion's public keys, served in both modes whenever a key file is set (gateway.pages.jwks).
        keys = runtime.signing_keys
        self.jwks = JWKSEndpoint(keys) if keys is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            # map(len, ...) in C: a generator would run a Python frame step per header on every request.
            if sum(map(len, chain.from_iterable(scope["headers"]))) > self.max_header_bytes:
                await self.headers_too_large(scope, receive, metrics.counting("other", send))
            elif path == self.paths.auth and self.proxy is None:
                # Only the front proxy may ask (mode 1: nginx, Caddy, Traefik). In proxy mode a client could name any
                # X-Original-URI and collect proofs for it: the pages answer 404.
                await self.auth(scope, receive, send)  # counts its answers itself (no wrapper per check)
            elif path == self.paths.jwks and self.jwks is not None:
                await self.jwks(scope, receive, metrics.counting("pages", send))
            elif self.proxy is None or self.paths.is_own(path):
                self.runtime.client_address.set_request_id(scope)
                own = self.paths.is_own(path)
                await self.pages(scope, receive, metrics.counting("pages" if own else "other", send))
            else:
                await self.proxy(scope, receive, metrics.counting("proxy", send))
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.proxy is not None:
            await self.proxy.websocket(scope, receive, send)
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
            await self.proxy.proxy.startup()

    async def shutdown(self) -> None:
        await self.runtime.revocation.stop()
        if self.proxy is not None:
            await self.proxy.proxy.shutdown()
        self.runtime.close()

    def upstream_error_page(self, scope: Scope, status: int, message: str) -> bytes:
        """The app behind did not answer (mode 2): the gateway's error page (the operator's templates, the
        visitor's language); ``message`` is one of the proxy's N_-marked texts."""
        self.site.languages.use(scope)
        title = N_("Bad request") if status == 400 else N_("Temporarily unavailable")
        page = self.site.error(status, title, message, back_url="/", back_label=N_("Go to the home page"))
        return bytes(page.body)

    async def headers_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        """431: the HTTP server in front (uvicorn with httptools) sets no limit of its own."""
        logger.warning("request headers over %d bytes refused: %s %s", self.max_header_bytes, scope["method"],
                       scope["path"][:200])
        self.site.languages.use(scope)
        response: Response = self.site.error(431, N_("Request headers too large"),
                                             N_("Your browser sent too much data (often: too many cookies)."),
                                             back_url="/", back_label=N_("Go to the home page"))
        await SecurityHeaders(response)(scope, receive, send)


def create_app(settings: Settings) -> GatewayApp:
    return GatewayApp(settings)


def create_app_from_environ() -> GatewayApp:
    """uvicorn factory (``--factory``): settings from ``GATEWAY_CONFIG`` and ``GATEWAY_*``.

    Each worker process calls it, so each installs the log format (gateway.observe.audit) itself.
    """
    settings = load_settings(os.environ.get("GATEWAY_CONFIG"))
    configure_logging(settings.log_format, settings.log_level, settings.audit_log)
    return GatewayApp(settings)
