"""The HTTP fetcher python3-openid uses: bounded in time and size, and no SSRF tool.

Whatever a visitor types into the login form makes the gateway fetch it
(discovery) and then POST to whatever endpoint that document names. The
library's default fetcher (urllib) has no timeout, follows redirects anywhere
and honours ``*_proxy`` variables. :class:`SafeFetcher` replaces it:

* http and https only; no XRI, no user name in the URL (:func:`check_url`);
* every connection goes to an address that was resolved, checked
  (:mod:`gateway.fetch.addresses`) and connected to in one step
  (:class:`GuardedBackend`), so DNS rebinding finds no window;
* redirects are followed by hand, each hop re-checked, at most
  ``max_redirects``; POSTs are never redirected (their body is signed data);
* connect and read timeouts plus an overall deadline, a byte cap on the
  body, no cookies, no proxies, no compression (``http.client`` has none of
  them: :mod:`gateway.fetch.connections`);
* with an allow list, only URLs under an allowed prefix are fetched.

Errors: :class:`~gateway.errors.FetchError` (timeout, size, connection,
redirects) and its subclass :class:`~gateway.errors.DiscoveryRefused` (the URL
or address is not allowed; :class:`~gateway.errors.PrivateAddressRefused` when
``allow_private_addresses`` would allow it). python3-openid's process-wide
fetcher is :mod:`gateway.signin.openid2.consumer`'s per-thread dispatcher to each
exchange's ``SafeFetcher``, installed with the library's exception wrapping
(:func:`install_fetcher` does the same for one fetcher), so the library sees
``openid.fetchers.HTTPFetchingError`` whose ``why`` is our error, and the
consumer sees:

* discovery in ``Consumer.begin()``: ``DiscoveryFailure`` ("Error fetching
  XRDS document: ..."), our error in its ``__context__``;
* association in ``begin()`` (with a store): logged, and the login goes on
  without an association (stateless, checked by check_authentication later);
* check_authentication in ``complete()``: logged, and ``complete()`` returns a
  FAILURE response ("Server denied check_authentication"), our error nowhere
  in it: the dispatcher keeps the thread's last fetch error instead, so the
  exchange can say the provider did not answer;
* re-discovery of the claimed identifier in ``complete()``: **not caught by
  the library**: ``HTTPFetchingError`` leaves ``Consumer.complete()``; the
  caller must catch it.

:func:`find_fetch_error` digs our error out of the exceptions. (Unwrapped, a
slow association endpoint would make ``begin()`` raise, not go stateless.)
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import openid.fetchers

from gateway.errors import DiscoveryRefused, FetchError, PrivateAddressRefused
from gateway.fetch.addresses import is_forbidden_address, parse_host_address
from gateway.fetch.allowlist import is_url_allowed
from gateway.fetch.connections import Exchange, ThreadConnections
from gateway.observe import metrics

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as strings; IPv6 zone ids (``%eth0``) allowed."""

USER_AGENT = "openid-gateway (python3-openid)"
# No cookies, no compression (a size cap on compressed data would cap nothing).
BASE_HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# python3-openid's xri.identifierScheme(): these make an identifier an XRI.
XRI_AUTHORITIES = frozenset("!=@+$(")
# XRIs resolve through http://proxy.xri.net/, long dead and now anyone's.
XRI_PROXY_HOSTS = frozenset({"xri.net", "proxy.xri.net"})


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives (DNS, /etc/hosts, numeric spellings)."""
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def check_url(url: str, allowlist: Sequence[str] = ()) -> None:
    """Raise :class:`DiscoveryRefused` for a URL the gateway must never fetch. No network.

    The consumer should call it on the typed identifier before ``begin()``:
    python3-openid sends XRIs (``=name``) to a public proxy resolver.
    """
    checked_url(url, allowlist)


def checked_url(url: str, allowlist: Sequence[str] = ()) -> httpx.URL:
    """:func:`check_url`, returning the parsed URL: the fetcher requests exactly what was checked."""
    if url.startswith("xri://") or url[:1] in XRI_AUTHORITIES:
        raise DiscoveryRefused(url, "XRI identifiers are not supported")
    try:
        parsed = httpx.URL(url)
        netloc = urlsplit(url).netloc
    except (httpx.InvalidURL, ValueError) as exc:
        raise DiscoveryRefused(url, f"malformed URL ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise DiscoveryRefused(url, "only http and https URLs may be fetched")
    if parsed.userinfo or "@" in netloc:
        raise DiscoveryRefused(url, "URLs with a user name are refused")
    if not parsed.host:
        raise DiscoveryRefused(url, "the URL has no host")
    if parsed.host.rstrip(".") in XRI_PROXY_HOSTS:
        raise DiscoveryRefused(url, "XRI resolution is not supported")
    if not (is_url_allowed(url, allowlist) and is_url_allowed(str(parsed), allowlist)):
        raise DiscoveryRefused(url, "not on the provider allow list")
    return parsed


class GuardedBackend(httpcore.SyncBackend):
    """An httpcore network backend that connects only to addresses it has checked.

    Checking a name and letting the socket layer resolve it again leaves a
    window for DNS rebinding (a TTL-0 record answering a public address to the
    check and 127.0.0.1 to the connect). Here one resolution is both checked
    and used: the socket connects to the IP literal. httpcore still gives TLS
    the host name, so SNI and certificate checks are unaffected. A name with
    any forbidden address is refused as a whole.
    """

    def __init__(self, *, allow_private_addresses: bool = False, resolver: Resolver = system_resolver) -> None:
        self.allow_private_addresses = allow_private_addresses
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        error: httpcore.ConnectError | None = None
        for address in self.resolve(host, port, timeout):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out")
            try:
                return self.connect_address(address, port, remaining, local_address, socket_options)
            except httpcore.ConnectError as exc:  # refused: try the next address; a timeout ends it
                error = exc
        raise httpcore.ConnectError(f"cannot connect to {host}:{port} ({error})")

    def connect_address(
        self,
        address: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.NetworkStream:
        """Connect to one checked IP literal (no resolution happens for a literal)."""
        return super().connect_tcp(address, port, timeout, local_address, socket_options)

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """The addresses of ``host``, every one checked; raises :class:`DiscoveryRefused`."""
        literal = parse_host_address(host)
        addresses = [str(literal)] if literal is not None else _resolve_within(self.resolver, host, port, timeout)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError as exc:
                raise DiscoveryRefused(host, f"{host} resolved to a malformed address {address!r}") from exc
            if not self.allow_private_addresses and is_forbidden_address(ip):
                kind = "private" if ip.is_private else "special-purpose"
                # Named for the operator who put a provider on a private network: the setting that allows it.
                raise PrivateAddressRefused(host, f"{host} refused: {address} is a {kind} address; "
                                                  "set allow_private_addresses = true to allow it")
        return addresses


class SafeFetcher(openid.fetchers.HTTPFetcher):  # type: ignore[misc]
    """python3-openid's fetcher, hardened; one per process, safe to share between threads.

    ``total_timeout`` (default ``connect_timeout + 2 * read_timeout``) bounds a
    whole :meth:`fetch`, redirects included. ``network_backend`` replaces the
    :class:`GuardedBackend` built from ``allow_private_addresses`` and
    ``resolver`` (tests use it to stand in for the Internet).

    Each thread keeps its own keep-alive connections, one per origin
    (:mod:`gateway.fetch.connections`: ``http.client`` on sockets the backend
    connected): a sign-in thread fetches one document at a time, and one pool
    shared by the 32 sign-in threads (httpcore's, under httpx) cost more CPU
    in bookkeeping than the fetch itself. Connections of threads that have
    ended are closed when the next thread makes its own, the rest by
    :meth:`close`. ``limits`` with ``max_keepalive_connections=0`` keeps no
    connection (one resolution and connection per request).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        total_timeout: float | None = None,
        max_bytes: int = 1024 * 1024,
        max_redirects: int = 5,
        allow_private_addresses: bool = False,
        allowlist: Sequence[str] = (),
        resolver: Resolver | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits | None = None,
        metric_hosts: Iterable[str] = (),
    ) -> None:
        if network_backend is not None and (resolver is not None or allow_private_addresses):
            raise ValueError("pass either network_backend or resolver/allow_private_addresses")
        if network_backend is None:
            network_backend = GuardedBackend(
                allow_private_addresses=allow_private_addresses, resolver=resolver or system_resolver
            )
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout if total_timeout is not None else connect_timeout + 2 * read_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowlist = tuple(allowlist)
        # Metrics name a configured provider's host, any other "other": visitors type any URL.
        self._labels = metrics.Labels(provider_urls=metric_hosts)
        self._network_backend = network_backend
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)  # loading CAs costs: once
        # Keep-alive unless the caller's limits keep no connection (a test of one resolution per connection).
        self._keep_alive = limits is None or limits.max_keepalive_connections != 0
        self._local = threading.local()
        self._pools: dict[threading.Thread, ThreadConnections] = {}
        self._clients_lock = threading.Lock()
        self._closed = False

    def fetch(
        self, url: str, body: str | bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> openid.fetchers.HTTPResponse:
        """GET ``url``, or POST ``body`` (already url-encoded) to it; HTTP error statuses are returned.

        Timed and counted for the metrics, by the provider's host.
        """
        started = time.monotonic()
        failure: str | None = None
        try:
            return self._fetch(url, body, headers)
        except DiscoveryRefused:
            failure = "refused"
            raise
        except FetchError as exc:
            failure = "timeout" if exc.reason == "timed out" else "error"
            raise
        finally:
            metrics.observe_fetch(self._labels.host(url), time.monotonic() - started, failure)

    def _fetch(
        self, url: str, body: str | bytes | None, headers: Mapping[str, str] | None
    ) -> openid.fetchers.HTTPResponse:
        deadline = time.monotonic() + self.total_timeout
        method = "GET" if body is None else "POST"
        content = body.encode() if isinstance(body, str) else body
        request_headers = {k: v for k, v in (headers or {}).items() if body is None or k.lower() != "content-type"}
        if body is not None:
            request_headers["Content-Type"] = "application/x-www-form-urlencoded"
        current = url
        seen = {url}
        for _ in range(self.max_redirects + 1):
            target = checked_url(current, self.allowlist)
            response = self._send(method, target, current, request_headers, content, deadline)
            try:
                location = response.headers.get("location")
                if method == "POST" or response.status_code not in REDIRECT_STATUSES or not location:
                    return self._read(current, response, deadline)
                try:
                    current = str(target.join(location))
                except httpx.InvalidURL as exc:
                    raise DiscoveryRefused(location, f"malformed redirect from {current}") from exc
            finally:
                response.close()
            if current in seen:
                raise FetchError(current, "redirect loop")
            seen.add(current)
        raise FetchError(url, f"more than {self.max_redirects} redirects")

    def _send(
        self, method: str, target: httpx.URL, url: str, headers: Mapping[str, str], content: bytes | None,
        deadline: float,
    ) -> Exchange:
        """Send one request to ``target`` (``url`` parsed and checked); the response body is not read yet."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(url, "timed out")
        connect = min(self.connect_timeout, remaining)
        read = min(self.read_timeout, remaining)
        names = {name.lower() for name in headers}
        request_headers = {k: v for k, v in BASE_HEADERS.items() if k.lower() not in names} | dict(headers)
        try:
            host = target.raw_host.decode("ascii")
            port = target.port or (443 if target.scheme == "https" else 80)
            return self._connections(url).send(method, target.scheme, host, port, target.raw_path.decode("ascii"),
                                               request_headers, content, connect, read)
        except DiscoveryRefused as exc:
            raise type(exc)(url, exc.reason) from exc
        except (httpcore.TimeoutException, TimeoutError) as exc:
            raise FetchError(url, "timed out") from exc
        except (httpcore.NetworkError, OSError, http.client.HTTPException, UnicodeError, ValueError) as exc:
            raise FetchError(url, f"request failed ({exc})") from exc

    def _read(self, url: str, response: Exchange, deadline: float) -> openid.fetchers.HTTPResponse:
        """Read at most ``max_bytes`` of body before the deadline, then stop and hang up."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchError(url, f"compressed response ({encoding}) despite Accept-Encoding: identity")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(url, "response too large")
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.read_chunk():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(url, "response too large")
                if time.monotonic() > deadline:
                    raise FetchError(url, "timed out")
                chunks.append(chunk)
        except TimeoutError as exc:
            raise FetchError(url, "timed out") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(url, f"reading the response failed ({exc})") from exc
        return openid.fetchers.HTTPResponse(
            final_url=url,
            status=response.status_code,
            headers=response.headers,  # lower-case names, repeats joined
            body=_decode(b"".join(chunks), response.charset),
        )

    def _connections(self, url: str) -> ThreadConnections:
        """This thread's connections, made on its first fetch; :class:`FetchError` once :meth:`close` ran."""
        pool: ThreadConnections | None = getattr(self._local, "pool", None)
        if pool is not None:
            return pool
        pool = ThreadConnections(self._network_backend, self._ssl_context, self._keep_alive)
        with self._clients_lock:
            if self._closed:
                raise FetchError(url, "the fetcher is closed")
            for thread in [thread for thread in self._pools if not thread.is_alive()]:
                self._pools.pop(thread).close()
            self._pools[threading.current_thread()] = pool
        self._local.pool = pool
        return pool

    def close(self) -> None:
        """Close every thread's connections; fetching afterwards is an error."""
        with self._clients_lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def __enter__(self) -> SafeFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def install_fetcher(fetcher: SafeFetcher) -> None:
    """Make ``fetcher`` python3-openid's process-wide fetcher, keeping its exception wrapping.

    Wrapping is what the library's association and check_authentication code
    expects (it catches ``HTTPFetchingError`` only); see the module docstring.
    """
    openid.fetchers.setDefaultFetcher(fetcher, wrap_exceptions=True)


def find_fetch_error(exc: BaseException) -> FetchError | None:
    """Our :class:`FetchError` behind a python3-openid exception, if a fetch caused it.

    Follows ``HTTPFetchingError.why`` and the ``__cause__``/``__context__``
    chain, so ``DiscoveryFailure`` from ``begin()`` and ``HTTPFetchingError``
    from ``complete()`` both lead back to it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FetchError):
            return current
        why: Any = getattr(current, "why", None)
        current = why if isinstance(why, BaseException) else (current.__cause__ or current.__context__)
    return None


def _resolve_within(resolver: Resolver, host: str, port: int, timeout: float | None) -> list[str]:
    """Run ``resolver`` with a deadline: ``getaddrinfo`` has none, and an attacker's DNS can stall."""
    if timeout is None:
        return list(resolver(host, port))
    result: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.extend(resolver(host, port))
        except BaseException as exc:  # handed to the waiting thread below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise httpcore.ConnectTimeout(f"resolving {host} timed out")
    if errors:
        if isinstance(errors[0], OSError):
            raise httpcore.ConnectError(f"cannot resolve {host} ({errors[0]})") from errors[0]
        raise errors[0]
    return result


def _decode(data: bytes, charset: str | None) -> str:
    """The body as text: python3-openid parses HTML, XRDS and key-value form from ``str``."""
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return data.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return data.decode("latin-1")


__all__ = [
    "GuardedBackend", "Resolver", "SafeFetcher",
    "check_url", "checked_url", "find_fetch_error", "install_fetcher", "system_resolver",
]
