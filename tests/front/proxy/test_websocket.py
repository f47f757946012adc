"""WebSockets through nginx in both modes, with a real client (``websockets``) and a real echo app.

Mode 1: nginx asks the gateway about the handshake (auth_request) and passes
the upgrade to the app itself. Mode 2: nginx passes the upgrade to the
gateway, which checks the sign-in and opens its own WebSocket to the app,
relaying messages and closes both ways. The app is tests/upstream_app.py.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from devtools.stack import Stack
from gateway.proof import ProofVerifier
from tests.stack_fixtures import echo_stack_fixture  # noqa: F401 - fixture
from tests.test_nginx import FORGED, IDENTITY_HEADERS, signed_in

pytestmark = pytest.mark.nginx

TIMEOUT = 15


def ws_url(stack: Stack, path: str) -> str:
    return "ws://" + stack.url.removeprefix("http://") + path


def session_cookie(client: httpx.Client) -> str:
    return f"gw_session={client.cookies['gw_session']}; theme=dark"


def open_socket(stack: Stack, path: str, cookie: str | None, headers: list[tuple[str, str]] | None = None,
                subprotocols: list[str] | None = None) -> ClientConnection:
    extra = [("Cookie", cookie)] if cookie else []
    return connect(ws_url(stack, path), additional_headers=[*extra, *(headers or [])], open_timeout=TIMEOUT,
                   close_timeout=TIMEOUT, subprotocols=subprotocols, proxy=None)  # type: ignore[arg-type]


def handshake_status(stack: Stack, path: str, cookie: str | None,
                     headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    """A raw handshake (what any client can send): the answer, when it is not an upgrade."""
    upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
    cookies = [("Cookie", cookie)] if cookie else []
    return httpx.get(stack.url + path, headers=[*upgrade, *cookies, *(headers or [])], timeout=TIMEOUT)


def app_closes(stack: Stack) -> list[list[Any]]:
    closes: list[list[Any]] = httpx.get(stack.app_url + "/ws-closes", timeout=TIMEOUT).json()
    return closes


def wait_for(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def carol(echo_stack: Stack) -> Iterator[httpx.Client]:
    with signed_in(echo_stack, "carol") as client:
        yield client


def test_echo_works_for_a_signed_in_user_and_a_client_close_reaches_the_app(
        echo_stack: Stack, carol: httpx.Client) -> None:
    path = f"/ws/echo-{secrets.token_hex(4)}"
    with open_socket(echo_stack, path, session_cookie(carol)) as ws:
        for message in ("hello", "é" * 70_000, b"\x00\x01\xff" * 1000):
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message
        ws.close(4002, "done here")
    wait_for(lambda: [path, 4002, "done here"] in app_closes(echo_stack), "the close seen by the app")


def test_close_from_the_app_reaches_the_client_with_its_code(echo_stack: Stack, carol: httpx.Client) -> None:
    with open_socket(echo_stack, "/ws/echo", session_cookie(carol)) as ws:
        ws.send("close 4001 bye now")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 4001, echo_stack.logs()
        assert ws.close_reason == "bye now"


def test_subprotocol_and_app_headers_are_negotiated_end_to_end(echo_stack: Stack, carol: httpx.Client) -> None:
    with open_socket(echo_stack, "/ws/echo", session_cookie(carol), subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        assert "ws=1; Path=/" in ws.response.headers.get_all("Set-Cookie")
        ws.send("still here")
        assert ws.recv(timeout=TIMEOUT) == "still here"


def test_handshake_reaches_the_app_with_the_identity_and_a_valid_proof_never_forged_headers(
        echo_stack: Stack, carol: httpx.Client) -> None:
    uri = "/ws/room%201?q=two%20words&x=1"
    with open_socket(echo_stack, uri, session_cookie(carol), headers=FORGED) as ws:
        ws.send("handshake")
        seen = json.loads(ws.recv(timeout=TIMEOUT))
    names = [name.lower() for name, _ in seen["headers"]]
    for name in IDENTITY_HEADERS:
        assert names.count(name) == 1, seen["headers"]
    assert not [name for name in names if "_" in name], "header names with underscores must not pass"
    received = seen["raw_path"] + "?" + seen["query_string"]
    assert received == uri
    headers = httpx.Headers(seen["headers"])
    identity = ProofVerifier(echo_stack.proof_key).verify(headers, "GET", headers["host"], received)
    assert identity is not None
    assert (identity.user_id, identity.nickname) == (echo_stack.provider_url + "/id/carol", "carol")
    assert headers["host"] == echo_stack.url.removeprefix("http://")
    # The app gets its own cookies, never the gateway's session.
    assert headers["cookie"] == "theme=dark"


def test_anonymous_handshake_is_refused_and_never_reaches_the_app(echo_stack: Stack) -> None:
    path = f"/ws/anon-{secrets.token_hex(4)}"
    for headers in ([], FORGED):
        response = handshake_status(echo_stack, path, None, headers)
        if echo_stack.mode == "auth_request":
            assert response.status_code == 302 and response.headers["location"].startswith("/login")
        else:
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "unauthorized"
    with pytest.raises(InvalidStatus):  # mode 1: the library follows the redirect to the login page, no upgrade
        open_socket(echo_stack, path, None, headers=FORGED)
    assert all(close[0] != path for close in app_closes(echo_stack))


def test_revoked_session_cannot_open_a_new_socket(echo_stack: Stack) -> None:
    with signed_in(echo_stack, "erin") as erin:
        cookie = session_cookie(erin)
        with open_socket(echo_stack, "/ws/echo", cookie) as ws:
            ws.send("before")
            assert ws.recv(timeout=TIMEOUT) == "before"
        logout = erin.get(echo_stack.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert logout.status_code in (302, 303)
    # A copy of the cookie taken before signing out.
    response = handshake_status(echo_stack, "/ws/echo", cookie)
    assert response.status_code == (302 if echo_stack.mode == "auth_request" else 401), response.text


def test_upstream_refusal_passes_to_the_client(echo_stack: Stack, carol: httpx.Client) -> None:
    response = handshake_status(echo_stack, "/ws/refuse", session_cookie(carol))
    assert response.status_code == 403
    assert response.text == "no websockets here"
    assert response.headers["x-app-refusal"] == "yes"


def test_gateway_paths_never_reach_the_app_as_websockets(echo_stack: Stack, carol: httpx.Client) -> None:
    for path in ("/login", "/_gateway/account", "/logout"):
        response = handshake_status(echo_stack, path, session_cookie(carol))
        assert response.status_code != 101, path
