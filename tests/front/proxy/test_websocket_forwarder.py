"""The mode-2 WebSocket forwarder alone (gateway/front/proxy/_websocket.py), over real sockets, without nginx.

A tiny ASGI app forwards every WebSocket with :meth:`UpstreamProxy.forward_websocket`
to tests/upstream_app.py (each served by uvicorn in a thread); the client is
the ``websockets`` library. The failures nginx and the stack tests cannot
provoke: an app that is down, an app that crashes mid-socket, a request
target that is not ASCII.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.front.proxy import UpstreamProxy
from tests import upstream_app
from tests.servers import UvicornThread, free_port

IDENTITY = [(b"x-gateway-user", b"https://id.example/alice"), (b"x-gateway-proof", b"1700000000.proof")]
TIMEOUT = 15


def forwarding_app(upstream_url: str) -> Any:
    proxy = UpstreamProxy(upstream_url, strip_headers=["x-gateway-user", "x-gateway-proof"], connect_timeout=2,
                          read_timeout=5, pool_size=4)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await proxy.startup()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await proxy.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await proxy.forward_websocket(scope, receive, send, IDENTITY)

    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[UvicornThread]:
    with UvicornThread(upstream_app.app) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: UvicornThread) -> Iterator[UvicornThread]:
    with UvicornThread(forwarding_app(upstream.url)) as server:
        yield server


def ws(server: UvicornThread, path: str) -> str:
    return "ws://" + server.url.removeprefix("http://") + path


def raw_handshake(server: UvicornThread, target: bytes) -> bytes:
    """Send a handshake byte for byte; return the head of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_identity_replaces_client_copies_and_the_target_passes_exactly(proxy: UvicornThread) -> None:
    target = "/ws/a%2Fb/%C3%A9?x=%20y&z"
    forged = [("X-Gateway-User", "mallory"), ("x_gateway_proof", "forged"), ("X-Forwarded-For", "6.6.6.6")]
    with connect(ws(proxy, target), additional_headers=forged, open_timeout=TIMEOUT, proxy=None) as client:
        client.send("handshake")
        seen = json.loads(client.recv(timeout=TIMEOUT))
    headers = [(name.lower(), value) for name, value in seen["headers"]]
    assert seen["raw_path"] + "?" + seen["query_string"] == target
    assert [v for n, v in headers if n == "x-gateway-user"] == ["https://id.example/alice"]
    assert [v for n, v in headers if n == "x-gateway-proof"] == ["1700000000.proof"]
    assert not [n for n, _ in headers if "_" in n]
    assert [v for n, v in headers if n == "x-forwarded-for"] == ["127.0.0.1"]
    assert [v for n, v in headers if n == "host"] == [proxy.url.removeprefix("http://")]


def test_an_app_that_drops_the_connection_mid_socket_closes_the_client_with_1011(proxy: UvicornThread) -> None:
    with connect(ws(proxy, "/ws/crash"), open_timeout=TIMEOUT, proxy=None) as client:
        client.send("crash")
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=TIMEOUT)
        assert client.close_code == 1011


def test_an_app_that_is_down_gets_a_502_answer_on_the_handshake() -> None:
    with UvicornThread(forwarding_app(f"http://127.0.0.1:{free_port()}")) as proxy:
        answer = raw_handshake(proxy, b"/ws/echo")
    assert answer.startswith(b"HTTP/1.1 502 "), answer


def test_an_app_redirect_is_passed_to_the_client_never_followed(proxy: UvicornThread) -> None:
    answer = raw_handshake(proxy, b"/ws/redirect")
    assert answer.startswith(b"HTTP/1.1 302 "), answer
    assert b"\r\nlocation: /ws/echo\r\n" in answer.lower()


def test_a_target_that_is_not_ascii_gets_a_400_answer(proxy: UvicornThread) -> None:
    answer = raw_handshake(proxy, b"/ws/\xc3\xa9")
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_the_upstream_cannot_be_reached_through_an_environment_proxy(
        proxy: UvicornThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """``websockets`` honours HTTP(S)_PROXY by default; the forwarder never does (it goes to upstream_url)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with connect(ws(proxy, "/ws/echo"), open_timeout=TIMEOUT, proxy=None) as client:
        client.send("via upstream_url")
        assert client.recv(timeout=TIMEOUT) == "via upstream_url"
