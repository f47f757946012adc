"""Which headers cross the proxy, in which form: pure functions over ASGI header lists.

Names are compared as ASGI servers deliver them: lower-case bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
# Set by the proxy from what it saw itself; a client's values are never passed on.
FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded"})
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


class RequestHeads:
    """Builds the request head sent upstream; everything per-proxy is computed once."""

    __slots__ = ("_default_host", "_drop", "_owned")

    def __init__(self, strip_headers: Iterable[str], default_host: bytes) -> None:
        strip = {name.lower().encode("latin-1") for name in strip_headers}
        # Identity and forwarding headers may also arrive with underscores
        # (X_Gateway_User): CGI-style servers map both spellings to one variable.
        self._owned = frozenset({name.replace(b"_", b"-") for name in strip} | FORWARDING)
        self._drop = HOP_BY_HOP | REFRAMED | self._owned | strip
        self._default_host = default_host

    def build(
        self,
        request_line: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        extra_headers: Sequence[tuple[bytes, bytes]],
        client_addr: bytes | None,
        proto: bytes,
    ) -> tuple[bytes, BodyMode]:
        """Return the request head and how the body that follows is framed."""
        drop = self._drop
        owned = self._owned
        kept: list[tuple[bytes, bytes]] = []
        host = None
        length = None
        chunked = False
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
                    chunked = True
                elif name == b"connection":
                    tokens |= connection_tokens(header[1])
                continue
            if b"_" in name and name.replace(b"_", b"-") in owned:
                continue
            kept.append(header)
        if tokens:
            kept = [header for header in kept if header[0] not in tokens]
        lines = [request_line, b"host: " + (host or self._default_host)]
        lines += [name + b": " + value for name, value in kept]
        if client_addr:
            lines.append(b"x-forwarded-for: " + client_addr)
            lines.append(b"x-real-ip: " + client_addr)
        lines.append(b"x-forwarded-proto: " + proto)
        if host:
            lines.append(b"x-forwarded-host: " + host)
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
