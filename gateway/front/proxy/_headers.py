"""Which headers cross the proxy, in which form: pure functions over ASGI header lists.

Names are compared as ASGI servers deliver them: lower-case bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.errors import BadRequest
from gateway.state.sessions import strip_cookies

# RFC 9110 §7.6.1 (Connection), plus Proxy-Connection, which old clients still send.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the proxy from what it saw itself; a client's values are never passed on
# (X-Forwarded-Proto/-Port from a trusted front proxy are read, then set again).
FORWARDING = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-real-ip", b"forwarded"}
)
# Routing overrides some frameworks honour (Symfony, Laminas, IIS URL Rewrite:
# X-Original-URL, X-Rewrite-URL) and that nginx's auth_request subrequest uses
# (X-Original-URI/-Method). The gateway decided on the path it saw; an app that
# routed on one of these would serve a protected page for a public path.
REWRITE = frozenset({b"x-original-url", b"x-rewrite-url", b"x-original-uri", b"x-original-method"})
# Method overrides (Rack::MethodOverride, Laravel, Symfony, Express's method-override): an app that
# honoured one would run a DELETE the gateway judged as a POST. `_method` in the body or query cannot
# be removed: the rules judge a POST as every method instead (gateway.gate.access, method_override).
METHOD_OVERRIDE = frozenset({b"x-http-method-override", b"x-http-method", b"x-method-override"})
# Rewritten by the proxy: Host is re-added first, the body framing is chosen again,
# and `Expect: 100-continue` is answered by the gateway's own server.
REFRAMED = frozenset({b"host", b"content-length", b"expect"})
_HARMLESS_TOKENS = frozenset({b"close", b"keep-alive"})

BodyMode = int
NO_BODY: BodyMode = 0
LENGTH: BodyMode = 1
CHUNKED: BodyMode = 2


def connection_tokens(value: bytes) -> set[bytes]:
    """Header names listed in a Connection header (RFC 9110 §7.6.1), lower-case."""
    tokens = {token.strip().lower() for token in value.split(b",")}
    tokens.discard(b"")
    return tokens - _HARMLESS_TOKENS


class UnsupportedTransferCoding(BadRequest):
    """A request body in a transfer coding other than plain ``chunked`` (400).

    The server in front decodes only the chunking; forwarding the rest as
    ``chunked`` would hand the app a body in a coding it was not told about.
    """


def port_of(host: bytes) -> bytes | None:
    """The port in a Host value (``name:port``, ``[v6]:port``), if it names one."""
    name, colon, port = host.rpartition(b":")
    if colon and port.isdigit() and not name.endswith(b":"):
        return port
    return None


class RequestHeads:
    """Builds the request head sent upstream; everything per-proxy is computed once.

    ``strip_cookies`` (cookie names, name prefixes) are removed from the
    ``Cookie`` header: the gateway's own cookies sign a person in and must not
    reach the app or its logs.
    """

    __slots__ = ("_cookie_names", "_cookie_prefixes", "_default_host", "_drop", "_owned")

    def __init__(
        self,
        strip_headers: Iterable[str],
        default_host: bytes,
        strip_cookies: tuple[Iterable[str], Iterable[str]] | None = None,
    ) -> None:
        strip = {name.lower().encode("latin-1") for name in strip_headers}
        # Identity and forwarding headers may also arrive with underscores
        # (X_Gateway_User): CGI-style servers map both spellings to one variable.
        self._owned = frozenset({name.replace(b"_", b"-") for name in strip} | FORWARDING | REWRITE | METHOD_OVERRIDE)
        self._drop = HOP_BY_HOP | REFRAMED | self._owned | strip
        if strip_cookies is not None:
            self._drop |= {b"cookie"}
        self._cookie_names = frozenset(strip_cookies[0]) if strip_cookies else frozenset()
        self._cookie_prefixes = tuple(strip_cookies[1]) if strip_cookies else ()
        self._default_host = default_host

    def build(
        self,
        request_line: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        extra_headers: Sequence[tuple[bytes, bytes]],
        client_addr: bytes | None,
        proto: bytes,
        trusted: bool = False,
    ) -> tuple[bytes, BodyMode]:
        """Return the request head and how the body that follows is framed.

        ``proto`` is the scheme the gateway was reached with; when the peer is
        a ``trusted`` proxy (it terminated TLS), its ``X-Forwarded-Proto`` and
        ``X-Forwarded-Port`` say what the client used instead. Raises
        :class:`UnsupportedTransferCoding` for a body it cannot forward faithfully.
        """
        drop = self._drop
        owned = self._owned
        kept: list[tuple[bytes, bytes]] = []
        host = None
        length = None
        chunked = False
        front_proto = front_port = b""
        tokens: set[bytes] = set()
        for header in headers:
            name = header[0]
            if name in drop:
                if name == b"host":
                    if host is None:
                        host = header[1]
                elif name == b"content-length":
                    length = header[1]
                elif name == b"transfer-encoding":
                    if chunked or header[1].strip().lower() != b"chunked":
                        raise UnsupportedTransferCoding(f"unsupported Transfer-Encoding {header[1][:100]!r}")
                    chunked = True
                elif name == b"cookie":
                    value = strip_cookies(header[1].decode("latin-1"), self._cookie_names, self._cookie_prefixes)
                    if value:
                        kept.append((name, value.encode("latin-1")))
                elif name == b"connection":
                    tokens |= connection_tokens(header[1])
                elif name == b"x-forwarded-proto":
                    front_proto = header[1].strip().lower()
                elif name == b"x-forwarded-port":
                    front_port = header[1].strip()
                continue
            if b"_" in name and name.replace(b"_", b"-") in owned:
                continue
            kept.append(header)
        if tokens:
            kept = [header for header in kept if header[0] not in tokens]
        if trusted and front_proto in (b"http", b"https"):
            proto = front_proto
        port = front_port if trusted and front_port.isdigit() else None
        port = port or (port_of(host) if host else None) or (b"443" if proto == b"https" else b"80")
        lines = [request_line, b"host: " + (host or self._default_host)]
        lines += [name + b": " + value for name, value in kept]
        if client_addr:
            lines.append(b"x-forwarded-for: " + client_addr)
            lines.append(b"x-real-ip: " + client_addr)
        lines.append(b"x-forwarded-proto: " + proto)
        if host:
            lines.append(b"x-forwarded-host: " + host)
        lines.append(b"x-forwarded-port: " + port)
        lines += [name + b": " + value for name, value in extra_headers]
        if chunked:
            mode = CHUNKED
            lines.append(b"transfer-encoding: chunked")
        elif length is not None and length != b"0":
            mode = LENGTH
            lines.append(b"content-length: " + length)
        else:
            mode = NO_BODY
            if length is not None:
                lines.append(b"content-length: 0")
        lines.append(b"\r\n")
        return b"\r\n".join(lines), mode


def response_headers(
    headers: list[tuple[bytes, bytes]], status: int, connection_listed: bool
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers minus hop-by-hop ones, order and repeats kept."""
    drop: frozenset[bytes] | set[bytes] = HOP_BY_HOP
    if connection_listed:
        drop = set(HOP_BY_HOP)
        for name, value in headers:
            if name == b"connection":
                drop |= connection_tokens(value)
    if status in (204, 304):
        # No body follows; a Content-Length here would make the ASGI server wait for one.
        drop = drop | {b"content-length"}
    return [header for header in headers if header[0] not in drop]
