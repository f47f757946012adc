"""Mode 2: one WebSocket connection forwarded to the upstream, message by message.

The gateway terminates the client's WebSocket (uvicorn speaks it) and opens
its own to the upstream with the ``websockets`` library (installed with
``uvicorn[standard]``), then relays each message both ways. Terminating
rather than splicing bytes is what lets the handshake carry the same headers
as a proxied HTTP request: the request head is built by the HTTP proxy's
:class:`~gateway.front.proxy._headers.RequestHeads` (identity headers and proof
added, client-sent ones, forwarding and hop-by-hop headers dropped, the
client's ``Host`` and request target kept exactly, as the proof signs them).
Each hop negotiates its own ``Sec-WebSocket-Key`` and compression; the
subprotocols the client offers are offered upstream, and the one the upstream
picks is the one the client gets.

An upstream that refuses the upgrade (any non-101 answer) is answered to the
client as it came (status, headers, body) through ASGI's
``websocket.http.response`` extension; redirects are passed on, never followed.
A close from either side is passed to the other with its code and reason.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers, HeadersLike
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.http11 import USER_AGENT
from websockets.protocol import CONNECTING

from gateway.front.proxy._headers import HOP_BY_HOP, RequestHeads
from gateway.proof import request_uri
from gateway.types import Receive, Scope, Send

logger = logging.getLogger("gateway.proxy")

# As uvicorn's default for the client side (ws_max_size): the same limit both ways.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Set again for each hop by the library (key, version, extensions, subprotocols),
# or meaningless on a handshake (a body's framing).
_HANDSHAKE_OWN = (b"sec-websocket-", b"content-length", b"transfer-encoding")
# Close codes that may not be sent in a close frame (RFC 6455 §7.4.1): no code, an abnormal end, TLS.
_NOT_ON_THE_WIRE = frozenset({1004, 1005, 1006, 1015})
GOING_AWAY = 1001
INTERNAL_ERROR = 1011


class _Handshake(Headers):
    """The upstream handshake's headers, with the request target to send them with."""

    def __init__(self, target: str, headers: Sequence[tuple[str, str]]) -> None:
        super().__init__(headers)
        self.target = target


class _UpstreamConnection(ClientConnection):
    """A client connection whose handshake request is ours: target, Host and headers as built."""

    async def handshake(self, additional_headers: HeadersLike | None = None,
                        user_agent_header: str | None = USER_AGENT) -> None:
        if not isinstance(additional_headers, _Handshake):
            await super().handshake(additional_headers, user_agent_header)
            return
        request = self.protocol.connect()
        # Keep the library's Upgrade/Connection/Sec-WebSocket-* lines (it checks the answer against them).
        own = [(name, value) for name, value in request.headers.raw_items() if name.lower() != "host"]
        request.path = additional_headers.target
        request.headers = Headers([*additional_headers.raw_items(), *own])
        self.request = request
        async with self.send_context(expected_state=CONNECTING):
            self.protocol.send_request(request)
        await asyncio.wait([self.response_rcvd, self.connection_lost_waiter], return_when=asyncio.FIRST_COMPLETED)
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc


class _Connect(connect):
    """``websockets``' connect, except that a redirect is the answer to pass on, not one to follow."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def wire_code(code: int | None, lost: int) -> int:
    """A close code that may be sent on: a close without a code becomes 1000, a dropped connection ``lost``."""
    if code == 1005:
        return 1000
    if code is None or code in _NOT_ON_THE_WIRE or not (1000 <= code < 5000) or 1016 <= code < 3000:
        return lost
    return code


class WebSocketForwarder:
    """Opens the upstream WebSocket for one client connection and relays until either side closes."""

    def __init__(self, host: str, port: int, netloc: str, heads: RequestHeads, connect_timeout: float) -> None:
        self._host = host
        self._port = port
        self._netloc = netloc
        self._heads = heads
        self.connect_timeout = connect_timeout

    async def forward(self, scope: Scope, receive: Receive, send: Send, extra_headers: Sequence[tuple[bytes, bytes]],
                      *, client_addr: str | None, trusted_peer: bool, tls: ssl.SSLContext | None,
                      accept_headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Forward the WebSocket in ``scope``; ``accept_headers`` go to the client with the 101 answer."""
        if (await receive())["type"] != "websocket.connect":
            return
        target = request_uri(scope).encode("latin-1")  # as the client sent it: what the proof signed
        shown = target.decode("latin-1")[:200]
        if not target.isascii():  # a browser percent-encodes; the request line must be ASCII
            logger.warning("websocket %s refused: request target not ASCII", shown)
            await refuse(scope, send, 400, [], b"The request could not be understood.")
            return
        proto = b"https" if scope.get("scheme") == "wss" else b"http"
        head, _ = self._heads.build(b"GET " + target + b" HTTP/1.1", scope["headers"], extra_headers,
                                    client_addr.encode("latin-1") if client_addr else None, proto, trusted_peer)
        headers = []
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b": ")
            if name and not name.startswith(_HANDSHAKE_OWN):
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
        try:
            upstream = await self._open(target.decode("ascii"), headers, scope.get("subprotocols") or None, tls)
        except InvalidStatus as exc:
            answer = exc.response
            logger.info("websocket %s: the upstream answered %d", shown, answer.status_code)
            kept = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.raw_items()]
            kept = [(k, v) for k, v in kept if k not in HOP_BY_HOP and not k.startswith(_HANDSHAKE_OWN)]
            await refuse(scope, send, answer.status_code, [*kept, *accept_headers], bytes(answer.body or b""))
            return
        except TimeoutError:
            logger.warning("websocket %s: the upstream did not complete the handshake in time", shown)
            await refuse(scope, send, 504, [], b"The application behind this site took too long to answer.")
            return
        except (OSError, InvalidHandshake) as exc:
            logger.warning("websocket %s: cannot open the upstream WebSocket (%s)", shown, exc)
            await refuse(scope, send, 502, [], b"The application behind this site is not answering.")
            return
        assert upstream.response is not None
        answer_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                          for k, v in upstream.response.headers.raw_items()]
        answer_headers = [(k, v) for k, v in answer_headers if k not in HOP_BY_HOP
                          and not k.startswith(_HANDSHAKE_OWN)]
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol,
                        "headers": [*answer_headers, *accept_headers]})
        except OSError:  # the client left during the handshake
            await upstream.close(GOING_AWAY)
            return
        await relay(receive, send, upstream)

    async def _open(self, target: str, headers: list[tuple[str, str]], subprotocols: Any,
                    tls: ssl.SSLContext | None) -> ClientConnection:
        options: dict[str, Any] = {}
        if tls is not None:
            options = {"ssl": tls, "server_hostname": self._host}
        return await _Connect(
            f"{'wss' if tls else 'ws'}://{self._netloc}/",
            additional_headers=_Handshake(target, headers),
            subprotocols=subprotocols,
            compression=None,  # messages pass as they are: no deflate work for the gateway or the app
            user_agent_header=None,  # the client's own passes
            proxy=None,  # never an HTTP(S)_PROXY from the environment
            open_timeout=self.connect_timeout,
            max_size=MAX_MESSAGE_BYTES,
            create_connection=_UpstreamConnection,
            host=self._host,
            port=self._port,
            **options,
        )


async def relay(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Pass messages both ways until one side closes; then close the other with the same code and reason."""
    client_left = asyncio.Event()
    to_upstream = asyncio.ensure_future(_client_to_upstream(receive, upstream, client_left))
    to_client = asyncio.ensure_future(_upstream_to_client(send, upstream))
    try:
        await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if client_left.is_set() or (to_client.done() and not to_client.result()):
            await to_upstream  # the client's disconnect, then the upstream's closing handshake with its code
        else:
            # The upstream closed: the client gets its code; uvicorn then finishes the closing handshake.
            to_upstream.cancel()
            await upstream.wait_closed()
            try:
                # An app that dropped the connection (it crashed): 1011, as a server error.
                await send({"type": "websocket.close", "code": wire_code(upstream.close_code, INTERNAL_ERROR),
                            "reason": upstream.close_reason or ""})
            except OSError:
                pass  # the client had left too
    finally:
        to_upstream.cancel()
        to_client.cancel()
        await upstream.close(GOING_AWAY)  # a no-op once closed


async def _client_to_upstream(receive: Receive, upstream: ClientConnection, client_left: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            client_left.set()
            # A client that vanished (1006): 1001 "going away", as a browser leaving the page.
            await upstream.close(wire_code(message.get("code", 1005), GOING_AWAY), message.get("reason") or "")
            return
        if message["type"] != "websocket.receive":
            continue
        text = message.get("text")
        try:
            await upstream.send(text if text is not None else message.get("bytes") or b"")
        except ConnectionClosed:
            return  # relay() passes the upstream's close on


async def _upstream_to_client(send: Send, upstream: ClientConnection) -> bool:
    """Pass the upstream's messages on; True when the upstream closed, False when the client left."""
    try:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass  # closed with an error code: relay() passes it on all the same
    except OSError:
        return False  # the client left; its disconnect reaches _client_to_upstream
    return True


async def refuse(scope: Scope, send: Send, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
    """Answer a handshake with a plain HTTP response (or, without the ASGI extension, uvicorn's 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    if not any(name == b"content-type" for name, _ in headers):
        headers = [*headers, (b"content-type", b"text/plain; charset=utf-8")]
    headers = [*(h for h in headers if h[0] != b"content-length"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
