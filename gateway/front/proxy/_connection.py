"""A lean HTTP/1.1 client connection to the upstream and a bounded keep-alive pool.

The connection is an :class:`asyncio.Protocol` that feeds every byte straight
into httptools' (llhttp's) response parser; the parser's callbacks fill in the
current response. :meth:`Connection.wait` parks the forwarding coroutine until
the next event (bytes, writability, EOF) or the read timeout, so a request that
is answered in one packet costs a single future and a single timer.

Flow control both ways: reading from the upstream pauses while more than
:data:`HIGH_WATER` response bytes wait for the client, and the forwarder waits
while the upstream socket's write buffer is full.

A response ends exactly where its framing says. A byte beyond it (a second
message in the same read, bytes arriving later, or bytes waiting unread in the
socket of an idle connection when it is taken from the pool) means the
upstream and the proxy disagree about where messages begin: the connection is
closed and those bytes are never parsed as part of this response or served as
the answer to the next request, which may be another person's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
from collections import deque
from typing import Any, cast

import httptools

from gateway.errors import GatewayError

HIGH_WATER = 512 * 1024
NO_BODY_STATUSES = frozenset({204, 304})

logger = logging.getLogger("gateway.proxy")


class UpstreamTimeout(GatewayError):
    """The upstream did not connect, answer or read within its time limit (the proxy answers 504)."""


class _Overrun(Exception):
    """Bytes follow the end of a response: stops llhttp before it parses them."""


def _unread(fd: int) -> bytes | None:
    """The first byte the event loop has not delivered yet: None if none, b"" at EOF."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(0):
        return None  # the common case: one system call
    sock = socket.socket(fileno=fd)
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        return b""
    finally:
        sock.detach()


def _expire(waiter: asyncio.Future[Any], reason: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(reason))


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.idle = False
        self.write_paused = False
        self.read_paused = False
        self.client_left = False
        self.error = ""
        self.fd = -1
        self._reset_parser = False
        self.begin(False)

    def begin(self, head_request: bool) -> None:
        """Prepare for the response to a new request."""
        if self._reset_parser:
            self.parser = httptools.HttpResponseParser(self)
            self._reset_parser = False
        self.head_request = head_request
        self.request_sent = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.connection_tokens = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.got_bytes = False
        self.head_done = False
        self.done = False
        self.keep_alive = False
        self.has_length = False
        self.until_eof = False
        self.interim = False
        self.client_left = False

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.idle or self.done:
            self._overrun()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self.done:
                self._overrun()
            else:
                self.error = f"invalid response from upstream ({type(exc).__name__}: {exc})"
            self.close()
        self.wake()

    def eof_received(self) -> bool | None:
        self._lost()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake()

    # -- httptools callbacks -----------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            # A second message in the same read. Parsed on, its headers would join
            # this response's (an attacker's Location or Set-Cookie); left
            # unparsed on a pooled connection, they would answer the next request,
            # perhaps another person's. Stop here; the connection is closed.
            raise _Overrun

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self.has_length = True
        elif name == b"connection":
            self.connection_tokens = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            # 100 Continue, 103 Early Hints: interim, the real answer follows.
            self.interim = True
            self.headers = []
            self.connection_tokens = self.has_length = False
            return
        self.status = status
        self.head_done = True
        if self.head_request:
            # llhttp cannot know a HEAD response has no body; finish here and
            # give the next request a fresh parser.
            self.keep_alive = self.has_length and self.parser.should_keep_alive()
            self.done = True
            self._reset_parser = True
        elif not self.has_length and status not in NO_BODY_STATUSES:
            self.until_eof = True

    def on_body(self, body: bytes) -> None:
        if self.done:
            raise _Overrun  # a body after a HEAD response
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
        elif not self.done:
            self.keep_alive = self.parser.should_keep_alive()
            self.done = True

    # -- used by the forwarder ---------------------------------------------

    def take_body(self) -> bytes:
        """Everything buffered so far, as one chunk; reading resumes."""
        body = self.body
        chunk = body[0] if len(body) == 1 else b"".join(body)
        self.body = []
        self.buffered = 0
        if self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()
        return chunk

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def wait(self, timeout: float) -> None:
        """Return at the next event; raise :class:`UpstreamTimeout` after ``timeout``."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(timeout, _expire, waiter, "upstream read timeout")
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reusable(self) -> bool:
        """An idle connection may carry the next request: open, and nothing unread on it.

        Bytes can reach the socket after the event loop last looked at it; read
        later, they would be taken for the answer to the next request.
        """
        if self.closed:
            return False
        if self.fd >= 0:
            pending = _unread(self.fd)
            if pending is not None:
                # TLS: only an application-data record (type 23) is a stray answer.
                if pending and (self.pool.ssl is None or pending == b"\x17"):
                    self._overrun()
                self.close()
                return False
        return True

    def _overrun(self) -> None:
        """The upstream sent more than its response framing said: never trust this connection again."""
        if not self.closed:
            logger.warning("upstream sent bytes after the end of a response (a wrong Content-Length?); "
                           "connection closed, not reused")
        self.keep_alive = False
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self._lost()

    def _lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.head_done and not self.done and self.until_eof:
            self.done = True
        self.keep_alive = False
        if self.idle:
            self.pool.discard(self)
        self.wake()


class Pool:
    """At most ``size`` connections to one upstream, idle ones reused newest first."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        size: int,
        connect_timeout: float,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.ssl = ssl_context
        self.size = size
        self.connect_timeout = connect_timeout
        self.count = 0
        self.closing = False
        self.idle: list[Connection] = []
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()

    async def acquire(self, wait_timeout: float) -> tuple[Connection, bool]:
        """A connection and whether it was reused; waits up to ``wait_timeout`` for a free slot."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.reusable():
                return conn, True
            self._free_slot()
        if self.count < self.size:
            self.count += 1
        else:
            handed = await self._wait_for_slot(wait_timeout)
            if handed is not None:
                if handed.reusable():
                    return handed, True
                # Closed or with stray bytes: its slot is ours, for a new connection.
        try:
            return await self._connect(), False
        except BaseException:
            self._free_slot()
            raise

    def release(self, conn: Connection, reuse: bool) -> None:
        """Give ``conn`` back: kept for the next request if it is clean, closed otherwise."""
        if reuse and conn.keep_alive and conn.request_sent and conn.done and not conn.closed and not self.closing:
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            conn.idle = True
            self.idle.append(conn)
            return
        conn.close()
        self._free_slot()

    def discard(self, conn: Connection) -> None:
        """An idle connection was closed by the upstream."""
        conn.idle = False
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
            self._free_slot()

    def close(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        self.closing = True
        for conn in list(self.idle):
            conn.close()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionRefusedError("the proxy is shutting down"))

    def _free_slot(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter
                return
        self.count -= 1

    async def _wait_for_slot(self, timeout: float) -> Connection | None:
        waiter: asyncio.Future[Connection | None] = self.loop.create_future()
        self.waiters.append(waiter)
        timer = self.loop.call_later(timeout, _expire, waiter, "no free upstream connection in the pool")
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # handed over just as we gave up: pass it on
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed, True)
            raise
        finally:
            timer.cancel()

    async def _connect(self) -> Connection:
        conn = Connection(self)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream connect timeout") from exc
        return conn
