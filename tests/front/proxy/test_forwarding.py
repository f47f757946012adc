"""Proxy mode, the whole gateway: what the app receives about the request and what never reaches it.

A real gateway (uvicorn, in a thread) in front of ``tests/upstream_app.py``,
whose ``/echo`` answers with the headers it received; httpx or a raw socket is
the client.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from gateway.types import Identity
from tests import upstream_app
from tests.conftest import GatewayFactory, RunningGateway

PUBLIC = "/echo/public"
ALICE = Identity("https://op.example/id/alice", "alice", "alice@example.test")


def signed_in(gateway: RunningGateway) -> str:
    """A ``Cookie`` value with a valid session cookie, as the sign-in pages set it."""
    value = gateway.app.runtime.sessions.encode("sid-forwarding", ALICE, time.time(), None)
    return f"{gateway.settings.session_cookie}={value}"


def echoed(response: httpx.Response) -> dict[str, list[str]]:
    """The headers the app received, by name."""
    assert response.status_code == 200, response.text
    headers: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# -- scheme, host and port ---------------------------------------------------


def test_behind_a_trusted_tls_proxy_the_app_is_told_https(gateway_factory: GatewayFactory) -> None:
    # The default trusted_proxies is loopback: this client stands for nginx terminating TLS.
    gateway = gateway_factory(public_paths=(PUBLIC,))
    got = echoed(httpx.get(gateway.url + PUBLIC, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
                                                          "Host": "app.example"}))
    assert got["x-forwarded-proto"] == ["https"]
    assert got["x-forwarded-port"] == ["443"]
    assert got["host"] == got["x-forwarded-host"] == ["app.example"]


def test_an_untrusted_client_cannot_claim_https_or_a_port(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_paths=(PUBLIC,), trusted_proxies=())
    got = echoed(httpx.get(gateway.url + PUBLIC, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
                                                          "X_Forwarded_Proto": "https"}))
    assert got["x-forwarded-proto"] == ["http"]
    assert got["x-forwarded-port"] == [str(gateway.server.port)]


def test_a_trusted_proxys_garbage_scheme_is_not_passed_on(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_paths=(PUBLIC,))
    got = echoed(httpx.get(gateway.url + PUBLIC, headers={"X-Forwarded-Proto": "javascript",
                                                          "X-Forwarded-Port": "443x"}))
    assert got["x-forwarded-proto"] == ["http"]
    assert got["x-forwarded-port"] == [str(gateway.server.port)]


def test_the_app_gets_the_host_and_port_the_client_used(gateway: RunningGateway) -> None:
    """An app on a non-default port builds its absolute URLs from these."""
    response = httpx.get(gateway.url + "/echo", headers={"Cookie": signed_in(gateway)})
    got = echoed(response)
    port = str(gateway.server.port)
    assert got["host"] == [f"127.0.0.1:{port}"]
    assert got["x-forwarded-host"] == [f"127.0.0.1:{port}"]
    assert got["x-forwarded-port"] == [port]
    assert got["x-gateway-user"] == [ALICE.user_id]


# -- headers that never reach the app ----------------------------------------

REWRITE_HEADERS = {
    "X-Original-URL": "/admin",
    "X-Rewrite-URL": "/admin",
    "X-Original-URI": "/admin",
    "X-Original-Method": "DELETE",
    "X_Original_URL": "/admin",
}


@pytest.mark.parametrize("path", [PUBLIC, "/echo"])
def test_url_rewrite_headers_never_reach_the_app(gateway_factory: GatewayFactory, path: str) -> None:
    """Frameworks that route on X-Original-URL would serve /admin for a public path."""
    gateway = gateway_factory(public_paths=(PUBLIC,))
    got = echoed(httpx.get(gateway.url + path, headers={**REWRITE_HEADERS, "Cookie": signed_in(gateway)}))
    assert not {name for name in got if "original" in name or "rewrite" in name}


METHOD_OVERRIDE_HEADERS = {
    "X-HTTP-Method-Override": "DELETE",
    "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE",
    "X_HTTP_Method_Override": "DELETE",
}


def test_method_override_headers_never_reach_the_app(gateway_factory: GatewayFactory) -> None:
    """Rack, Laravel, Symfony and Express's method-override would run the POST the gateway judged as a DELETE."""
    gateway = gateway_factory(public_paths=(PUBLIC,))
    got = echoed(httpx.post(gateway.url + PUBLIC, headers={**METHOD_OVERRIDE_HEADERS, "Cookie": signed_in(gateway)}))
    assert not {name for name in got if "method" in name}, got


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"deflate,chunked", b"x-custom, chunked"])
def test_a_body_in_another_transfer_coding_is_refused_not_corrupted(
    gateway_factory: GatewayFactory, coding: bytes
) -> None:
    gateway = gateway_factory(public_paths=(PUBLIC,))
    path = f"{PUBLIC}/coding-{coding.decode().replace(' ', '').replace(',', '-')}"
    request = (
        b"POST %b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: %b\r\nConnection: close\r\n\r\n"
        b"5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n" % (path.encode(), coding)
    )
    reply = raw_request(gateway.server.port, request)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), reply[:300]
    assert b"content-type: text/html" in head.lower()
    assert b"<h1>Bad request</h1>" in body  # the gateway's error page (error.html), as for every refusal
    assert path not in upstream_app.paths_seen


def test_a_plain_chunked_body_is_still_forwarded(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_paths=(PUBLIC,))
    response = httpx.post(gateway.url + PUBLIC, content=iter([b"abc", b"defg"]))
    assert response.json()["body_bytes"] == 7


# -- the gateway's cookies ---------------------------------------------------


def gateway_and_app_cookies(gateway: RunningGateway) -> str:
    return "; ".join([
        "theme=dark",
        signed_in(gateway),
        "gw_remember=series.token",
        "cart=3",
        "gw_csrf=csrf-token",
        "gw_state_abc123=state",
        "__Host-gw_session=planted",
        "gw_sessionx=app-owned",
    ])


def test_the_gateways_cookies_never_reach_the_app_and_its_own_do(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_paths=(PUBLIC,))
    cookies = gateway_and_app_cookies(gateway)
    for path in ("/echo", PUBLIC):
        got = echoed(httpx.get(gateway.url + path, headers={"Cookie": cookies}))
        assert got["cookie"] == ["theme=dark; cart=3; gw_sessionx=app-owned"]
    assert echoed(httpx.get(gateway.url + "/echo", headers={"Cookie": cookies}))["x-gateway-user"] == [ALICE.user_id]


def test_only_gateway_cookies_means_no_cookie_header(gateway: RunningGateway) -> None:
    got = echoed(httpx.get(gateway.url + "/echo", headers={"Cookie": signed_in(gateway)}))
    assert "cookie" not in got


def test_pass_gateway_cookies_forwards_them(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(pass_gateway_cookies=True)
    cookies = gateway_and_app_cookies(gateway)
    got = echoed(httpx.get(gateway.url + "/echo", headers={"Cookie": cookies}))
    assert got["cookie"] == [cookies]


def test_renamed_cookies_are_the_ones_stripped(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(session_cookie="site_login", remember_cookie="site_keep")
    value = signed_in(gateway)
    assert value.startswith("site_login=")
    got = echoed(httpx.get(gateway.url + "/echo", headers={"Cookie": f"{value}; site_keep=x; gw_session=app"}))
    assert got["cookie"] == ["gw_session=app"]


# -- the auth endpoint -------------------------------------------------------


def test_the_auth_endpoint_is_not_reachable_in_proxy_mode(gateway: RunningGateway) -> None:
    """It hands out proofs for any X-Original-URI: only nginx may ask, and only in mode 1."""
    response = httpx.get(gateway.url + "/_gateway/auth",
                         headers={"Cookie": signed_in(gateway), "X-Original-URI": "/admin/delete-everything",
                                  "X-Original-Method": "POST"})
    assert response.status_code == 404
    assert not [name for name in response.headers if name.startswith("x-gateway")]
    assert "/_gateway/auth" not in upstream_app.paths_seen
