"""The fetcher's HTTP/1.1 connections: ``http.client`` over sockets a guarded backend connected.

httpx (with httpcore and h11 under it) cost 0.40 ms of CPU per fetch of a
small document on loopback; ``http.client`` on the same keep-alive socket
0.12 ms, and a sign-in makes two or three fetches. What httpx did for the
fetcher that matters is kept, here or in :mod:`gateway.fetch.fetcher`:

* the socket comes from the network backend (:class:`~gateway.fetch.fetcher.GuardedBackend`:
  one resolution, checked and connected to; TLS with the host name for SNI and
  certificate checks, through the backend's ``start_tls``);
* connect and read timeouts (the socket's), the overall deadline and the
  byte cap (the fetcher reads with :meth:`Exchange.read_chunk`, one receive at a time);
* keep-alive: one connection per origin per thread (:class:`ThreadConnections`),
  reused only after its response was read to the end, dropped when idle for
  :data:`KEEPALIVE_EXPIRY` or when the peer has closed it;
* no proxies, no cookies, no compression (``http.client`` has none of them).
"""

from __future__ import annotations

import http.client
import select
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpcore

KEEPALIVE_EXPIRY = 4.0  # seconds idle; below the 5 s of uvicorn and many servers, so a reused socket is still open
CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Raised when a kept-alive connection turns out to have been closed by the peer before it answered.
STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError, BrokenPipeError)


class _Connection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose socket the backend connects (and wraps in TLS for https)."""

    def __init__(self, backend: httpcore.NetworkBackend, scheme: str, host: str, port: int,
                 ssl_context: ssl.SSLContext, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.default_port = _DEFAULT_PORTS[scheme]  # the Host header leaves the default port out
        self.backend = backend
        self.scheme = scheme
        self.ssl_context = ssl_context
        self.stream: httpcore.NetworkStream | None = None
        self.idle_since = 0.0

    def connect(self) -> None:
        stream = self.backend.connect_tcp(self.host, self.port, timeout=self.timeout)
        try:
            if self.scheme == "https":
                stream = stream.start_tls(self.ssl_context, server_hostname=self.host, timeout=self.timeout)
        except BaseException:
            stream.close()
            raise
        self.stream = stream
        self.sock = stream.get_extra_info("socket")

    def close(self) -> None:
        super().close()
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def usable(self, now: float) -> bool:
        """Kept alive, not idle too long, and the peer has not closed it (nothing to read while idle)."""
        if self.sock is None or now - self.idle_since > KEEPALIVE_EXPIRY:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)


@dataclass
class Exchange:
    """One request's response: status, headers (lower-case names, repeats joined), a body read a chunk at a time."""

    status_code: int
    headers: dict[str, str]
    charset: str | None
    response: http.client.HTTPResponse
    connection: _Connection
    pool: ThreadConnections
    key: tuple[str, str, int]
    done: bool = field(default=False)

    def read_chunk(self) -> bytes:
        """The next bytes of the body (one receive at most); ``b""`` at its end."""
        if self.done:
            return b""
        chunk = self.response.read1(CHUNK)
        if not chunk or self.response.length == 0 or self.response.isclosed():
            self.done = True
            self.response.close()  # the connection may send its next request only once this one's is closed
        return chunk

    def close(self) -> None:
        """Give the connection back when the body was read to its end and the server keeps it open, else close it."""
        if self.done and not self.response.will_close:
            self.connection.idle_since = time.monotonic()
            self.pool.give_back(self.key, self.connection)
        else:
            self.connection.close()


class ThreadConnections:
    """One thread's connections, at most one idle per origin; not thread-safe (one per thread)."""

    def __init__(self, backend: httpcore.NetworkBackend, ssl_context: ssl.SSLContext, keep_alive: bool = True) -> None:
        self.backend = backend
        self.ssl_context = ssl_context
        self.keep_alive = keep_alive
        self._idle: dict[tuple[str, str, int], _Connection] = {}

    def send(self, method: str, scheme: str, host: str, port: int, target: str, headers: Mapping[str, str],
             body: bytes | None, connect_timeout: float, read_timeout: float) -> Exchange:
        """Send one request and read the response's status line and headers.

        Raises what the backend raises (``httpcore.ConnectError``/``ConnectTimeout``, our refusals),
        ``OSError`` (``TimeoutError`` on a timeout) and ``http.client.HTTPException``.
        """
        key = (scheme, host, port)
        reused = self._idle.pop(key, None)
        if reused is not None and not reused.usable(time.monotonic()):
            reused.close()
            reused = None
        if reused is not None:
            try:
                return self._exchange(reused, key, method, target, headers, body, read_timeout)
            except STALE:  # closed by the peer as we sent: the request never reached it, send it again
                reused.close()
        connection = _Connection(self.backend, scheme, host, port, self.ssl_context, connect_timeout)
        try:
            connection.connect()
        except BaseException:
            connection.close()
            raise
        return self._exchange(connection, key, method, target, headers, body, read_timeout)

    def _exchange(self, connection: _Connection, key: tuple[str, str, int], method: str, target: str,
                  headers: Mapping[str, str], body: bytes | None, read_timeout: float) -> Exchange:
        try:
            assert connection.sock is not None
            connection.sock.settimeout(read_timeout)
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        joined: dict[str, str] = {}
        for name, value in response.getheaders():
            name = name.lower()
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        return Exchange(response.status, joined, response.headers.get_content_charset(), response, connection,
                        self, key)

    def give_back(self, key: tuple[str, str, int], connection: _Connection) -> None:
        if not self.keep_alive:
            connection.close()
            return
        old = self._idle.pop(key, None)
        if old is not None:
            old.close()
        self._idle[key] = connection

    def close(self) -> None:
        idle, self._idle = list(self._idle.values()), {}
        for connection in idle:
            connection.close()


__all__ = ["CHUNK", "KEEPALIVE_EXPIRY", "STALE", "Exchange", "ThreadConnections"]
