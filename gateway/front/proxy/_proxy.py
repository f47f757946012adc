"""UpstreamProxy: forwards one ASGI HTTP request to the upstream and streams the answer back."""

from __future__ import annotations

import asyncio
import html
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.front.proxy._connection import Connection, Pool, UpstreamTimeout
from gateway.front.proxy._headers import CHUNKED, NO_BODY, RequestHeads, UnsupportedTransferCoding, response_headers
from gateway.front.proxy._websocket import WebSocketForwarder
from gateway.observe import metrics
from gateway.pages.languages import N_
from gateway.pages.render import SECURITY_HEADERS
from gateway.proof import request_uri
from gateway.settings import identity_header_settings
from gateway.types import Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.settings import Settings

logger = logging.getLogger("gateway.proxy")

# Safe to send twice: RFC 9110 §9.2.2. Only these are retried on a fresh
# connection when a pooled one turns out to have been closed by the upstream.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
PUBLIC_MESSAGES = {
    400: N_("The request could not be understood."),
    502: N_("The application behind this site is not answering. Please try again in a moment."),
    504: N_("The application behind this site took too long to answer. Please try again in a moment."),
}
CERTIFICATE_MESSAGE = N_("The application behind this site could not be reached securely: its certificate was"
                         " refused.")
# Renders the page of a failed forward: (the request's scope, status, message). The gateway passes its own
# (gateway.app: the operator's templates, the visitor's language); default_error_page otherwise.
ErrorPage = Callable[[Scope, int, str], bytes]


def default_error_page(scope: Scope, status: int, message: str) -> bytes:
    title = f"{status} {HTTPStatus(status).phrase}"
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>{html.escape(message)}</p></body></html>"
    ).encode()


class _Failed(Exception):
    """Forwarding failed; ``status`` is what the client gets if nothing was sent yet."""

    def __init__(self, status: int, reason: str, public: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.public = public or PUBLIC_MESSAGES[status]


def _connect_failure(exc: OSError) -> _Failed:
    """The 502 for a failed connection; a refused certificate is named, with the setting that fixes it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (f"upstream TLS certificate refused ({exc.verify_message}); the upstream_url host must match "
                  "the certificate, and upstream_ca_bundle name the CA that signed it if it is not a public one")
        return _Failed(502, reason, CERTIFICATE_MESSAGE)
    if isinstance(exc, ssl.SSLError):
        return _Failed(502, f"TLS handshake with the upstream failed ({exc.reason or exc})")
    return _Failed(502, f"cannot connect to the upstream ({exc.strerror or exc})")


class UpstreamProxy:
    """Forwards requests to one upstream over pooled keep-alive HTTP/1.1 connections.

    Guarantees, for every request:

    - request and response bodies stream in both directions with flow control;
      memory per request stays bounded whatever the body size;
    - hop-by-hop headers (RFC 9110 §7.6.1) are dropped both ways;
    - client-sent ``strip_headers`` (any case, ``-`` or ``_``), forwarding
      headers and URL-rewrite headers (``X-Original-URL``...) never reach the
      upstream; ``extra_headers`` and the proxy's own ``X-Forwarded-For``/
      ``X-Real-IP``/``X-Forwarded-Proto``/``X-Forwarded-Host``/``X-Forwarded-Port`` do;
    - the cookies named by ``strip_cookies`` (the gateway's own) are removed
      from ``Cookie``; the app's own cookies pass;
    - the client's ``Host`` header is kept, port included, so the application
      builds its public URLs; the upstream's redirects, status codes and headers
      (each ``Set-Cookie``) come back untouched;
    - a response ends where its framing says: bytes beyond it close the
      upstream connection and are never parsed or served (no response splicing);
    - a request body in a transfer coding other than ``chunked`` gets a 400 page;
    - an upstream that refuses (or whose TLS certificate does not verify
      against ``ca_bundle``, or the system's CAs) gets a 502 page, one that is
      too slow a 504 page, one that breaks off mid-response a cut client connection; never
      a traceback. Each failure logs one line;
    - a client that leaves mid-response releases (closes) its upstream connection.

    ``Expect: 100-continue`` is answered by the gateway's own server when the
    body is first read; the upstream gets the body without the header. At most
    ``pool_size`` connections are open per worker process; a request that finds
    none free waits up to ``read_timeout``. A request sent on a pooled connection
    that the upstream had just closed is retried once on a new connection, but
    only if it is idempotent (RFC 9110 §9.2.2) and its body was sent whole.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        strip_headers: Iterable[str],
        connect_timeout: float,
        read_timeout: float,
        pool_size: int,
        error_page: ErrorPage | None = None,
        strip_cookies: tuple[Iterable[str], Iterable[str]] | None = None,
        ca_bundle: str = "",
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream_url must be an http(s) URL, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        if parts.path not in ("", "/") or parts.query:
            # The app must receive the path the browser asked for: that is what the proof signs.
            raise ValueError(f"upstream_url must be an origin without a path, got {upstream_url!r}")
        self._heads = RequestHeads(strip_headers, parts.netloc.encode("latin-1"), strip_cookies)
        self.ca_bundle = ca_bundle
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._error_page = error_page or default_error_page
        self._pool: Pool | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._websockets = WebSocketForwarder(self._host, self._port, parts.netloc, self._heads, connect_timeout)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        error_page: ErrorPage | None = None,
        gateway_cookies: tuple[Iterable[str], Iterable[str]] | None = None,
    ) -> UpstreamProxy:
        """The proxy ``settings`` describe; ``gateway_cookies`` are stripped unless ``pass_gateway_cookies``."""
        identity = (*identity_header_settings(settings), settings.header_assertion)
        return cls(
            settings.upstream_url,
            strip_headers=(*identity, "X-Request-ID"),  # the gateway sends its own (gateway.observe.audit)
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            pool_size=settings.upstream_pool_size,
            error_page=error_page,
            strip_cookies=None if settings.pass_gateway_cookies else gateway_cookies,
            ca_bundle=settings.upstream_ca_bundle,
        )

    async def startup(self) -> None:
        """Create the connection pool on the running loop (certificates verified, ``ca_bundle`` or the system's)."""
        context = ssl.create_default_context(cafile=self.ca_bundle or None) if self._tls else None
        self._tls_context = context
        self._pool = Pool(self._host, self._port, context, self.pool_size, self.connect_timeout)

    async def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        client_addr: str | None = None,
        trusted_peer: bool = False,
    ) -> None:
        """Send the request in ``scope`` upstream with ``extra_headers`` added; stream the answer.

        ``client_addr`` (default: ``scope["client"]``) replaces any ``X-Forwarded-For``
        the client sent. ``X-Forwarded-Proto`` is ``scope["scheme"]`` unless the
        peer is a ``trusted_peer`` proxy that sent its own (it terminated TLS).
        ``extra_headers`` are trusted: lower-case names, values without CR or LF.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeError("UpstreamProxy.startup() was not called")
        method: str = scope["method"]
        # The request target exactly as the client sent it: what the identity proof signed.
        target = request_uri(scope).encode("latin-1")
        raw_path = target.partition(b"?")[0]
        if client_addr is None:
            client = scope.get("client")
            client_addr = client[0] if client else None
        try:
            head, mode = self._heads.build(
                method.encode("latin-1") + b" " + target + b" HTTP/1.1",
                scope["headers"],
                extra_headers,
                client_addr.encode("latin-1") if client_addr else None,
                scope.get("scheme", "http").encode("latin-1"),
                trusted_peer,
            )
        except UnsupportedTransferCoding as exc:
            logger.warning("proxy %s %s refused: %s", method, raw_path.decode("latin-1"), exc)
            await self._send_error(scope, send, 400, PUBLIC_MESSAGES[400])
            return
        first = b""
        more = False
        if mode != NO_BODY:
            message = await receive()  # also answers `Expect: 100-continue`
            if message["type"] != "http.request":
                return
            first = message.get("body", b"")
            more = message.get("more_body", False)
            if mode == CHUNKED:
                first = _chunk(first, more)
        started = False
        conn: Connection | None = None
        try:
            sent_at = time.perf_counter()
            conn = await self._exchange(pool, method, head + first, more, mode == CHUNKED, receive)
            if conn is None:
                return  # the client left while sending its body
            metrics.observe_upstream(time.perf_counter() - sent_at)
            started = True
            await self._respond(conn, receive, send, method)
        except _Failed as exc:
            logger.warning("proxy %s %s: %s", method, raw_path.decode("latin-1"), exc.reason)
            metrics.count_upstream_error(exc.status)
            if not started:
                await self._send_error(scope, send, exc.status, exc.public)
        finally:
            if conn is not None:
                pool.release(conn, not conn.client_left)

    async def forward_websocket(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        client_addr: str | None = None,
        trusted_peer: bool = False,
        accept_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Forward the WebSocket in ``scope`` (headers as :meth:`forward`'s); relay until either side closes.

        ``accept_headers`` (a refreshed session cookie) go to the client with the handshake's answer.
        """
        if self._pool is None:
            raise RuntimeError("UpstreamProxy.startup() was not called")
        if client_addr is None:
            client = scope.get("client")
            client_addr = client[0] if client else None
        await self._websockets.forward(scope, receive, send, extra_headers, client_addr=client_addr,
                                       trusted_peer=trusted_peer, tls=self._tls_context,
                                       accept_headers=accept_headers)

    async def _exchange(
        self, pool: Pool, method: str, data: bytes, more: bool, chunked: bool, receive: Receive
    ) -> Connection | None:
        """Send the request; return the connection once the response head is in."""
        retry = not more and method in IDEMPOTENT
        while True:
            try:
                conn, reused = await pool.acquire(self.read_timeout)
            except UpstreamTimeout as exc:
                raise _Failed(504, str(exc)) from None
            except OSError as exc:
                raise _connect_failure(exc) from None
            conn.begin(method == "HEAD")
            conn.write(data)
            conn.request_sent = not more
            try:
                if more and not await self._send_body(conn, receive, chunked):
                    pool.release(conn, False)
                    return None
                while not conn.head_done and not conn.closed:
                    await conn.wait(self.read_timeout)
            except UpstreamTimeout:
                pool.release(conn, False)
                raise _Failed(504, "upstream read timeout") from None
            except BaseException:
                pool.release(conn, False)
                raise
            if conn.head_done and conn.status < 600:
                return conn
            pool.release(conn, False)
            if conn.head_done:
                raise _Failed(502, f"upstream sent an invalid status {conn.status}")
            if conn.error:
                raise _Failed(502, conn.error)
            if retry and reused and not conn.got_bytes:
                retry = False  # a pooled connection the upstream had just closed
                continue
            raise _Failed(502, "upstream closed the connection")

    async def _send_body(self, conn: Connection, receive: Receive, chunked: bool) -> bool:
        """Stream the rest of the request body; False if the client left."""
        while True:
            while conn.write_paused and not conn.closed and not conn.head_done:
                await conn.wait(self.read_timeout)
            if conn.closed or conn.head_done:
                return True  # answered early: the rest of the body is not sent (nor the connection reused)
            message = await receive()
            if message["type"] != "http.request":
                return False
            body = message.get("body", b"")
            more = message.get("more_body", False)
            conn.write(_chunk(body, more) if chunked else body)
            if not more:
                conn.request_sent = True
                return True

    async def _respond(self, conn: Connection, receive: Receive, send: Send, method: str) -> None:
        headers = response_headers(conn.headers, conn.status, conn.connection_tokens)
        await send({"type": "http.response.start", "status": conn.status, "headers": headers})
        if conn.done:
            await send({"type": "http.response.body", "body": conn.take_body() if conn.body else b""})
            return
        # A long answer: notice a client that goes away, so the upstream is let go.
        watcher = asyncio.ensure_future(_watch_client(receive, conn))
        try:
            while True:
                if conn.body:
                    chunk = conn.take_body()
                    if conn.done:
                        await send({"type": "http.response.body", "body": chunk})
                        return
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                elif conn.done:
                    await send({"type": "http.response.body", "body": b""})
                    return
                elif conn.client_left:
                    logger.info("client left during the response; upstream connection closed")
                    return
                elif conn.closed:
                    raise _Failed(502, conn.error or "upstream closed the connection mid-response")
                else:
                    try:
                        await conn.wait(self.read_timeout)
                    except UpstreamTimeout:
                        raise _Failed(504, "upstream read timeout mid-response") from None
        finally:
            watcher.cancel()

    async def _send_error(self, scope: Scope, send: Send, status: int, message: str) -> None:
        body = self._error_page(scope, status, message)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,  # the CSP of every gateway page, whatever template rendered it
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _watch_client(receive: Receive, conn: Connection) -> None:
    """Wake the response loop when the client disconnects (a late request body is discarded)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    conn.client_left = True
    conn.wake()


def _chunk(body: bytes, more: bool) -> bytes:
    """HTTP/1.1 chunked encoding of one body piece (the last one closes the body)."""
    piece = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
    return piece if more else piece + b"0\r\n\r\n"
