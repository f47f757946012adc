"""Mode 2: the gateway as the reverse proxy, over real HTTP on loopback.

The proxy runs under uvicorn in a child process (so its memory can be read
from /proc) in front of ``tests/upstream_app.py`` served in a thread of the
test process; httpx or a raw socket is the client.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.front.proxy import UpstreamProxy
from gateway.front.proxy._headers import CHUNKED, LENGTH, NO_BODY, RequestHeads, response_headers
from gateway.settings import Settings
from tests import upstream_app
from tests.servers import Process, UvicornThread, free_port

IDENTITY = [
    (b"x-gateway-user", b"https://id.example/alice"),
    (b"x-gateway-nickname", b"alice"),
    (b"x-gateway-email", b"alice@example.com"),
    (b"x-gateway-proof", b"1700000000.proof"),
]
MB = 1024 * 1024


def proxy_app_from_env() -> Any:
    """The ASGI app the child process serves: startup on lifespan, forward() for every request."""
    env = os.environ
    settings = Settings(
        mode="proxy",
        upstream_url=env["PROXY_UPSTREAM"],
        upstream_connect_timeout=float(env.get("PROXY_CONNECT_TIMEOUT", "2")),
        upstream_read_timeout=float(env.get("PROXY_READ_TIMEOUT", "5")),
        upstream_pool_size=int(env.get("PROXY_POOL_SIZE", "10")),
        upstream_ca_bundle=env.get("PROXY_UPSTREAM_CA_BUNDLE", ""),
    )
    proxy = UpstreamProxy.from_settings(settings)

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
        await proxy.forward(scope, receive, send, IDENTITY)

    return app


class ProxyProcess:
    def __init__(self, upstream_url: str, *, http: str = "httptools", loop: str = "uvloop", **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {"PROXY_UPSTREAM": upstream_url, **{f"PROXY_{k.upper()}": v for k, v in settings.items()}}
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", "tests.front.proxy.test_proxy:proxy_app_from_env",
            "--port", str(self.port), "--http", http, "--loop", loop, "--log-level", "warning",
            "--no-proxy-headers", "--no-server-header", "--no-date-header",
        ]  # fmt: skip
        self.process = Process(argv, env=env, cwd=str(Path(__file__).parents[3]))

    def __enter__(self) -> ProxyProcess:
        self.process.start(wait_port=self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.close()

    def stop(self) -> str:
        """Stop the proxy and return what it logged."""
        self.process.stop()
        return self.process.output()

    def peak_rss(self) -> int:
        assert self.process.proc is not None
        with open(f"/proc/{self.process.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")


class CannedUpstream:
    """An upstream that answers every request with fixed bytes, then closes the connection."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(self.reply)

    def __enter__(self) -> CannedUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def get_through_proxy_to(reply: bytes, path: str = "/") -> tuple[httpx.Response, str]:
    """GET ``path`` through a proxy whose upstream answers ``reply``; the response and the proxy's log."""
    with CannedUpstream(reply) as canned, ProxyProcess(canned.url) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=30) as client:
            response = client.get(path)
        return response, proxy.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[UvicornThread]:
    with UvicornThread(upstream_app.app, proxy_headers=False, timeout_keep_alive=30) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: UvicornThread) -> Iterator[ProxyProcess]:
    with ProxyProcess(upstream.url) as proc:
        yield proc


@pytest.fixture
def client(proxy: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=30) as c:
        yield c


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def headers_named(data: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in data["headers"] if key == name]


def raw_exchange(port: int, request: bytes, *, body: bytes = b"", expect_continue: bool = False) -> bytes:
    """Send a hand-written request; return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if expect_continue:
            interim = sock.recv(1024)
            assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# -- headers -----------------------------------------------------------------


def test_client_identity_headers_are_stripped_in_every_spelling_and_the_gateways_arrive(
    client: httpx.Client,
) -> None:
    forged = [
        ("X-Gateway-User", "mallory"),
        ("x-gateway-user", "mallory2"),
        ("X_Gateway_User", "mallory3"),
        ("X-GATEWAY-NICKNAME", "mallory"),
        ("x_gateway_email", "mallory@example.com"),
        ("X-Gateway_Proof", "forged"),
    ]
    data = echo(client.get("/echo", headers=forged))
    assert headers_named(data, "x-gateway-user") == ["https://id.example/alice"]
    assert headers_named(data, "x-gateway-nickname") == ["alice"]
    assert headers_named(data, "x-gateway-email") == ["alice@example.com"]
    assert headers_named(data, "x-gateway-proof") == ["1700000000.proof"]
    assert not [key for key, _ in data["headers"] if "_" in key]


def test_hop_by_hop_request_headers_are_dropped(client: httpx.Client) -> None:
    sent = {
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Trailer": "x-checksum",
        "Proxy-Authorization": "Basic bWFsbG9yeTp4",
        "Proxy-Connection": "keep-alive",
        "Upgrade": "foo",
        "X-Kept": "yes",
    }
    data = echo(client.get("/echo", headers=sent))
    names = {key for key, _ in data["headers"]}
    dropped = {"connection", "x-hop-secret", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection"}
    assert not names & (dropped | {"upgrade"})
    assert headers_named(data, "x-kept") == ["yes"]


def test_hop_by_hop_response_headers_are_dropped(client: httpx.Client) -> None:
    response = client.get("/hop")
    assert response.status_code == 200
    assert response.headers["x-kept"] == "yes"
    for name in ("x-internal", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert name not in response.headers
    assert response.text == "hop"


def test_forwarding_headers_are_the_proxys_own_and_host_is_kept(client: httpx.Client) -> None:
    forged = {
        "Host": "app.example.com",
        "X-Forwarded-For": "203.0.113.66",
        "X_Forwarded_For": "203.0.113.67",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "8443",
        "X-Real-IP": "203.0.113.68",
        "Forwarded": "for=203.0.113.69",
    }
    data = echo(client.get("/echo", headers=forged))
    assert headers_named(data, "host") == ["app.example.com"]
    assert headers_named(data, "x-forwarded-for") == ["127.0.0.1"]
    assert headers_named(data, "x-real-ip") == ["127.0.0.1"]
    assert headers_named(data, "x-forwarded-proto") == ["http"]
    assert headers_named(data, "x-forwarded-host") == ["app.example.com"]
    assert headers_named(data, "x-forwarded-port") == ["80"]
    assert headers_named(data, "forwarded") == []
    assert not [key for key, _ in data["headers"] if "_" in key]


def test_raw_path_and_query_bytes_are_forwarded_verbatim(proxy: ProxyProcess) -> None:
    request = b"GET /echo/a%2Fb%20c?x=%FF&y=a+b&z=%41 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    reply = raw_exchange(proxy.port, request)
    data = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert data["raw_path"] == "/echo/a%2Fb%20c"
    assert data["path"] == "/echo/a/b c"
    assert data["query_string"] == "x=%FF&y=a+b&z=%41"


# -- bodies ------------------------------------------------------------------


def test_request_body_with_content_length_is_forwarded(client: httpx.Client) -> None:
    body = os.urandom(300_000)
    response = client.post("/upload", content=body)
    assert response.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_chunked_request_body_without_content_length_is_forwarded(client: httpx.Client) -> None:
    parts = [os.urandom(10_000) for _ in range(20)]
    response = client.post("/upload", content=iter(parts))
    whole = b"".join(parts)
    assert response.json() == {"bytes": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_expect_100_continue_is_answered_and_the_body_forwarded(proxy: ProxyProcess) -> None:
    request = (
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    reply = raw_exchange(proxy.port, request, body=b"hello", expect_continue=True)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["bytes"] == 5


def test_head_gets_headers_without_body_and_the_connection_stays_usable(client: httpx.Client) -> None:
    for _ in range(3):
        response = client.head("/download?size=1000")
        assert response.status_code == 200
        assert response.headers["content-length"] == "1000"
        assert response.content == b""
        assert client.get("/hello").text == "hello"


@pytest.mark.parametrize("code", [204, 304])
def test_bodyless_statuses_pass_without_body(client: httpx.Client, code: int) -> None:
    response = client.get(f"/status/{code}")
    assert response.status_code == code
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'
    assert client.get("/hello").text == "hello"


def test_download_without_content_length_arrives_whole(client: httpx.Client) -> None:
    response = client.get("/download?size=1000000&chunked=1")
    assert hashlib.sha256(response.content).hexdigest() == upstream_app.pattern_sha256(1_000_000)


def test_large_upload_and_download_stream_with_bounded_memory(upstream: UvicornThread) -> None:
    size = 200 * MB
    with ProxyProcess(upstream.url) as proxy, httpx.Client(base_url=proxy.url, timeout=60) as client:
        assert client.get("/hello").text == "hello"
        before = proxy.peak_rss()

        response = client.post(
            "/upload", content=upstream_app.pattern(size), headers={"Content-Length": str(size)}
        )
        assert response.json() == {"bytes": size, "sha256": upstream_app.pattern_sha256(size)}

        digest = hashlib.sha256()
        received = 0
        with client.stream("GET", f"/download?size={size}") as stream:
            assert stream.headers["content-length"] == str(size)
            for chunk in stream.iter_raw():
                digest.update(chunk)
                received += len(chunk)
        assert received == size
        assert digest.hexdigest() == upstream_app.pattern_sha256(size)

        growth = proxy.peak_rss() - before
        assert growth < 50 * MB, f"the proxy's peak memory grew by {growth / MB:.0f} MB"


# -- pass-through ------------------------------------------------------------


def test_redirects_are_passed_not_followed(client: httpx.Client) -> None:
    response = client.get("/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"


def test_each_set_cookie_header_passes_unchanged(client: httpx.Client) -> None:
    response = client.get("/cookies")
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/; HttpOnly", "b=2; Path=/; Secure"]


@pytest.mark.parametrize("code", [201, 404, 418, 500, 503])
def test_status_codes_pass_unchanged(client: httpx.Client, code: int) -> None:
    response = client.get(f"/status/{code}")
    assert (response.status_code, response.text) == (code, f"status {code}")


# -- connections -------------------------------------------------------------


def test_upstream_connections_are_kept_alive_and_reused(client: httpx.Client) -> None:
    client.get("/hello")
    before = len(upstream_app.connections_seen)
    for _ in range(50):
        assert client.get("/hello").text == "hello"
    assert len(upstream_app.connections_seen) - before <= 1


def test_a_full_pool_makes_requests_wait_not_fail(upstream: UvicornThread) -> None:
    with ProxyProcess(upstream.url, pool_size="1") as proxy:
        with httpx.Client(base_url=proxy.url, timeout=30) as one, httpx.Client(base_url=proxy.url, timeout=30) as two:
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                slow = [pool.submit(c.get, "/slow?seconds=0.3") for c in (one, two)]
                assert [f.result().text for f in slow] == ["slow", "slow"]
            assert time.monotonic() - started >= 0.6  # one after the other on the single connection


def test_connections_closed_by_the_upstream_while_idle_are_not_used(upstream: UvicornThread) -> None:
    with UvicornThread(upstream_app.app, proxy_headers=False, timeout_keep_alive=1) as short:
        with ProxyProcess(short.url) as proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
            assert client.get("/hello").text == "hello"
            time.sleep(1.5)
            assert client.get("/hello").text == "hello"
            assert client.post("/upload", content=b"x").json()["bytes"] == 1


# -- failures ----------------------------------------------------------------


def test_upstream_down_gives_a_502_page_and_one_log_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        proxy = ProxyProcess(f"http://127.0.0.1:{unused.getsockname()[1]}")
        with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
            response = client.get("/anything")
            log = proxy.stop()
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert log.splitlines() == ["proxy GET /anything: cannot connect to the upstream (Connection refused)"]


def test_slow_upstream_gives_a_504_page(upstream: UvicornThread) -> None:
    proxy = ProxyProcess(upstream.url, read_timeout="0.5")
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        response = client.get("/slow?seconds=2")
        assert client.get("/hello").text == "hello"
        log = proxy.stop()
    assert response.status_code == 504
    assert "504 Gateway Timeout" in response.text
    assert log.splitlines() == ["proxy GET /slow: upstream read timeout"]


def test_upstream_dying_mid_response_cuts_the_client_connection_cleanly(upstream: UvicornThread) -> None:
    proxy = ProxyProcess(upstream.url)
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/drop")
        assert client.get("/hello").text == "hello"
        log = proxy.stop()
    assert "proxy GET /drop: upstream closed the connection mid-response" in log
    assert "Traceback" not in log


def test_a_response_delimited_by_the_upstream_closing_arrives_whole() -> None:
    response, _ = get_through_proxy_to(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    assert (response.status_code, response.text) == (200, "until the end")


def test_interim_responses_are_not_forwarded() -> None:
    reply = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    response, _ = get_through_proxy_to(reply)
    assert (response.status_code, response.text) == (200, "ok")
    assert "link" not in response.headers


def test_a_malformed_upstream_response_gives_a_502_page() -> None:
    response, log = get_through_proxy_to(b"SMTP ready\r\n\r\n", "/x")
    assert response.status_code == 502
    assert log.startswith("proxy GET /x: invalid response from upstream")


def test_a_stalled_client_holds_back_the_upstream_and_leaving_releases_it(proxy: ProxyProcess) -> None:
    before = proxy.peak_rss()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET /download?size={50 * 1024 * MB} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        received = 0
        while received < 4 * MB:
            received += len(sock.recv(65536))
        time.sleep(1)  # the client stops reading: the proxy must stop reading too
        assert upstream_app.active_downloads == 1
        growth = proxy.peak_rss() - before
        assert growth < 50 * MB, f"the proxy buffered {growth / MB:.0f} MB for a stalled client"
    deadline = time.monotonic() + 5
    while upstream_app.active_downloads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream_app.active_downloads == 0


def test_the_proxy_works_under_h11_and_the_plain_asyncio_loop(upstream: UvicornThread) -> None:
    proxy = ProxyProcess(upstream.url, http="h11", loop="asyncio")
    with proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        assert headers_named(echo(client.get("/echo", headers={"X_Gateway_User": "m"})), "x-gateway-user") == [
            "https://id.example/alice"
        ]
        body = os.urandom(3 * MB)
        assert client.post("/upload", content=iter([body])).json()["bytes"] == len(body)
        assert len(client.get(f"/download?size={3 * MB}").content) == 3 * MB
        assert client.head("/hello").content == b""
        assert client.get("/status/304").status_code == 304
        log = proxy.stop()
    assert log == ""


# -- the pieces, without sockets ---------------------------------------------


def test_request_head_carries_host_first_and_reframes_the_body() -> None:
    heads = RequestHeads(["X-Gateway-User"], b"upstream:8000")
    head, mode = heads.build(
        b"POST /p HTTP/1.1",
        [(b"host", b"site"), (b"content-length", b"3"), (b"expect", b"100-continue"), (b"x_gateway_user", b"m")],
        [(b"x-gateway-user", b"alice")],
        b"192.0.2.1",
        b"https",
    )
    assert mode == LENGTH
    assert head == (
        b"POST /p HTTP/1.1\r\nhost: site\r\nx-forwarded-for: 192.0.2.1\r\nx-real-ip: 192.0.2.1\r\n"
        b"x-forwarded-proto: https\r\nx-forwarded-host: site\r\nx-forwarded-port: 443\r\nx-gateway-user: alice\r\n"
        b"content-length: 3\r\n\r\n"
    )
    head, mode = heads.build(b"PUT / HTTP/1.1", [(b"transfer-encoding", b"chunked")], [], None, b"http")
    assert mode == CHUNKED
    assert head.startswith(b"PUT / HTTP/1.1\r\nhost: upstream:8000\r\n")
    assert head.endswith(b"transfer-encoding: chunked\r\n\r\n")
    _, mode = heads.build(b"GET / HTTP/1.1", [], [], None, b"http")
    assert mode == NO_BODY


def test_response_headers_lose_what_connection_names_and_keep_repeats() -> None:
    headers = [
        (b"connection", b"close, x-private"),
        (b"x-private", b"1"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"transfer-encoding", b"chunked"),
    ]
    assert response_headers(headers, 200, True) == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    assert response_headers([(b"content-length", b"10"), (b"etag", b"x")], 304, False) == [(b"etag", b"x")]


def test_from_settings_strips_the_configured_identity_headers() -> None:
    settings = Settings(mode="proxy", upstream_url="http://127.0.0.1:8000", header_user="X-Remote-User")
    proxy = UpstreamProxy.from_settings(settings)
    assert proxy.read_timeout == settings.upstream_read_timeout
    assert proxy.pool_size == settings.upstream_pool_size
    forged = [(b"x_remote_user", b"m"), (b"x-remote-user", b"m"), (b"X_REMOTE-USER".lower(), b"m")]
    head, _ = proxy._heads.build(b"GET / HTTP/1.1", forged, [], None, b"http")
    assert b"remote" not in head


def test_an_upstream_url_with_a_path_is_refused() -> None:
    """The proof signs the path the browser asked for; a prefix added on the way would break it (or lie)."""
    with pytest.raises(ValueError, match="origin without a path"):
        UpstreamProxy("http://127.0.0.1:8000/base", strip_headers=(), connect_timeout=1, read_timeout=1, pool_size=1)
