"""SafeFetcher against real servers on loopback: every attack tries and fails.

Nothing here contacts a public address. "Public" hosts are names in a fake
resolver answering public-looking addresses, and :class:`FakeInternet` serves
every such address from the loopback test server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx
import openid.fetchers
import pytest
from openid.consumer import consumer as openid_consumer
from openid.consumer.discover import DiscoveryFailure
from openid.message import Message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.errors import DiscoveryRefused, FetchError, PrivateAddressRefused
from gateway.fetch.addresses import is_forbidden_address
from gateway.fetch.fetcher import GuardedBackend, SafeFetcher, check_url, find_fetch_error, install_fetcher
from gateway.runtime import safe_fetcher
from gateway.settings import Settings
from tests.servers import UvicornThread, free_port

PUBLIC = "93.184.215.14"  # looks public; FakeInternet serves it from loopback, nothing connects to it
hits: Counter[str] = Counter()
MakeFetcher = Callable[..., SafeFetcher]


async def page(request: Request) -> Response:
    hits[request.url.path] += 1
    return HTMLResponse("<html>hello</html>", headers={"X-Custom-Thing": "yes", "X-XRDS-Location": "/xrds"})


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=int(request.query_params.get("status", "302")))


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop-b" if request.url.path == "/loop-a" else "/loop-a")


async def chain(request: Request) -> Response:
    left = int(request.path_params["n"])
    return RedirectResponse(f"/chain/{left - 1}") if left > 0 else HTMLResponse("end of chain")


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"method": request.method, "type": request.headers.get("content-type"), "body": body.decode()})


async def cookie(request: Request) -> Response:
    response = JSONResponse({"cookie": request.headers.get("cookie")})
    response.set_cookie("provider_session", "visitor-1")
    return response


async def slow(request: Request) -> Response:
    await asyncio.sleep(5)
    return HTMLResponse("too late")


async def drip(request: Request) -> Response:
    async def one_byte_at_a_time() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x"
            await asyncio.sleep(0.2)

    return StreamingResponse(one_byte_at_a_time())


async def big(request: Request) -> Response:
    return HTMLResponse("<html>" + "a" * (5 * 1024 * 1024) + "</html>")


async def endless(request: Request) -> Response:
    async def forever() -> AsyncIterator[bytes]:
        chunk = b"<p>" + b"a" * 65536 + b"</p>"
        while True:
            hits["/endless bytes"] += len(chunk)
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(forever(), media_type="text/html")


async def sized(request: Request) -> Response:
    return Response(b"a" * int(request.path_params["n"]), media_type="text/plain")


async def gzipped(request: Request) -> Response:
    return Response(b"\x1f\x8b" + b"\x00" * 20, headers={"Content-Encoding": "gzip"})


async def latin(request: Request) -> Response:
    return Response("café".encode("latin-1"), media_type="text/html; charset=iso-8859-1")


async def missing(request: Request) -> Response:
    return HTMLResponse("no such page", status_code=404)


async def openid_page(request: Request) -> Response:
    endpoint = f"{request.base_url}server"
    return HTMLResponse(f'<html><head><link rel="openid2.provider" href="{endpoint}"></head></html>')


app = Starlette(
    routes=[
        Route("/", page),
        Route("/secret", page),
        Route("/openid/{rest:path}", page),
        Route("/redirect", redirect, methods=["GET", "POST"]),
        Route("/loop-a", loop),
        Route("/loop-b", loop),
        Route("/chain/{n:int}", chain),
        Route("/echo", echo, methods=["POST"]),
        Route("/cookie", cookie),
        Route("/slow", slow, methods=["GET", "POST"]),
        Route("/drip", drip),
        Route("/big", big),
        Route("/endless", endless),
        Route("/sized/{n:int}", sized),
        Route("/gzip", gzipped),
        Route("/latin", latin),
        Route("/missing", missing),
        Route("/identity", openid_page),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    with UvicornThread(app, timeout_graceful_shutdown=1) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_hits() -> None:
    hits.clear()


class FakeInternet(GuardedBackend):
    """Resolves through a table and serves every connection from the loopback test server.

    The guard itself is the real one: only addresses it let through reach
    :meth:`connect_address`, which records them.
    """

    def __init__(self, server: UvicornThread, names: dict[str, Callable[[], list[str]] | list[str]]) -> None:
        super().__init__(resolver=self.lookup)
        self.server = server
        self.names = names
        self.lookups: list[str] = []
        self.connected: list[str] = []

    def lookup(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = self.names[host]
        return answer() if callable(answer) else answer

    def connect_address(
        self,
        address: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.NetworkStream:
        self.connected.append(address)
        assert not is_forbidden_address(ipaddress.ip_address(address))
        return super().connect_address("127.0.0.1", self.server.port, timeout, local_address, socket_options)


Internet = Callable[..., tuple[SafeFetcher, FakeInternet]]


@pytest.fixture
def make_fetcher() -> Iterator[MakeFetcher]:
    made: list[SafeFetcher] = []

    def make(**options: Any) -> SafeFetcher:
        options.setdefault("connect_timeout", 1.0)
        options.setdefault("read_timeout", 1.0)
        fetcher = SafeFetcher(**options)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


@pytest.fixture
def internet(server: UvicornThread, make_fetcher: MakeFetcher) -> Internet:
    def build(names: dict[str, Any] | None = None, **options: Any) -> tuple[SafeFetcher, FakeInternet]:
        net = FakeInternet(server, {"provider.example": [PUBLIC], "localhost": ["127.0.0.1", "::1"], **(names or {})})
        return make_fetcher(network_backend=net, **options), net

    return build


# -- addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "2130706433", "0x7f.1", "127.1",
     "0x7f000001", "0177.0.0.1", "0.0.0.0"],
)
def test_loopback_in_any_spelling_is_refused(host: str, server: UvicornThread, make_fetcher: MakeFetcher) -> None:
    with pytest.raises(DiscoveryRefused):
        make_fetcher().fetch(f"http://{host}:{server.port}/secret")
    assert hits["/secret"] == 0


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/", "http://[fe80::1]/",
            "http://[fd00::1]/", "http://100.64.0.1/", "http://[64:ff9b::a9fe:a9fe]/"],
)
def test_private_and_link_local_addresses_are_refused_before_connecting(
    url: str, make_fetcher: MakeFetcher
) -> None:
    started = time.monotonic()
    with pytest.raises(DiscoveryRefused):
        make_fetcher().fetch(url)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1"])
def test_private_addresses_are_fetched_when_allowed(
    host: str, server: UvicornThread, make_fetcher: MakeFetcher
) -> None:
    response = make_fetcher(allow_private_addresses=True).fetch(f"http://{host}:{server.port}/secret")
    assert (response.status, response.body) == (200, "<html>hello</html>")
    assert hits["/secret"] == 1


def test_a_public_looking_name_resolving_to_loopback_is_refused(internet: Internet) -> None:
    fetcher, net = internet({"innocent.example": ["127.0.0.1"]})
    with pytest.raises(PrivateAddressRefused, match=r"127\.0\.0\.1 is a private address; "
                                                    r"set allow_private_addresses = true to allow it"):
        fetcher.fetch("http://innocent.example/secret")
    assert net.connected == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(internet: Internet) -> None:
    fetcher, net = internet({"mixed.example": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(DiscoveryRefused):
        fetcher.fetch("http://mixed.example/")
    assert net.connected == []


def test_dns_rebinding_is_refused_at_connect(internet: Internet) -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    fetcher, net = internet({"rebind.example": lambda: next(answers)}, limits=httpx.Limits(max_keepalive_connections=0))
    assert fetcher.fetch("http://rebind.example/").status == 200
    with pytest.raises(DiscoveryRefused):
        fetcher.fetch("http://rebind.example/secret")
    # One resolution per connection, and it is the one connected to.
    assert net.lookups == ["rebind.example", "rebind.example"]
    assert net.connected == [PUBLIC]
    assert hits["/secret"] == 0


def test_a_public_name_is_fetched(internet: Internet) -> None:
    fetcher, net = internet()
    response = fetcher.fetch("http://provider.example/")
    assert (response.status, response.final_url) == (200, "http://provider.example/")
    assert net.connected == [PUBLIC]


# -- redirects ---------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/secret", "http://localhost:{port}/secret", "http://[::1]:{port}/secret",
     "http://internal.example/secret", "http://2130706433:{port}/secret"],
)
def test_a_redirect_to_a_private_address_is_refused(target: str, internet: Internet, server: UvicornThread) -> None:
    fetcher, net = internet({"internal.example": ["10.0.0.7"]})
    with pytest.raises(DiscoveryRefused):
        fetcher.fetch("http://provider.example/redirect?" + urlencode({"to": target.format(port=server.port)}))
    assert net.connected == [PUBLIC]
    assert hits["/secret"] == 0


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "gopher://provider.example/", "http://user:pw@provider.example/secret"]
)
def test_a_redirect_to_a_refused_url_is_refused(target: str, internet: Internet) -> None:
    fetcher, _ = internet()
    with pytest.raises(DiscoveryRefused):
        fetcher.fetch("http://provider.example/redirect?" + urlencode({"to": target}))
    assert hits["/secret"] == 0


def test_redirects_are_followed_and_the_final_url_reported(internet: Internet) -> None:
    fetcher, _ = internet(max_redirects=3)
    response = fetcher.fetch("http://provider.example/chain/3")
    assert (response.status, response.body, response.final_url) == (200, "end of chain", "http://provider.example/chain/0")


def test_a_redirect_chain_longer_than_the_cap_fails(internet: Internet) -> None:
    fetcher, _ = internet(max_redirects=3)
    with pytest.raises(FetchError, match="more than 3 redirects") as info:
        fetcher.fetch("http://provider.example/chain/4")
    assert not isinstance(info.value, DiscoveryRefused)


def test_a_redirect_loop_stops(internet: Internet) -> None:
    fetcher, _ = internet(max_redirects=50)
    started = time.monotonic()
    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.fetch("http://provider.example/loop-a")
    assert time.monotonic() - started < 1


def test_a_post_is_never_redirected(internet: Internet) -> None:
    fetcher, _ = internet()
    response = fetcher.fetch("http://provider.example/redirect?to=/secret&status=307", body="openid.mode=associate")
    assert response.status == 307
    assert hits["/secret"] == 0


# -- allow list --------------------------------------------------------------


def test_the_allowlist_admits_urls_under_an_allowed_prefix(internet: Internet) -> None:
    fetcher, _ = internet(allowlist=["http://provider.example/openid"])
    assert fetcher.fetch("http://provider.example/openid/xrds").status == 200


@pytest.mark.parametrize(
    "url", ["http://provider.example/openidx", "http://provider.example/secret", "http://other.example/openid/",
            "https://provider.example/openid/", "http://provider.example/openid/../secret"],
)
def test_the_allowlist_refuses_everything_else(url: str, internet: Internet) -> None:
    fetcher, net = internet({"other.example": [PUBLIC]}, allowlist=["http://provider.example/openid"])
    with pytest.raises(DiscoveryRefused, match="allow list"):
        fetcher.fetch(url)
    assert net.connected == []


def test_the_allowlist_applies_to_every_redirect_hop(internet: Internet) -> None:
    fetcher, _ = internet(allowlist=["http://provider.example/openid", "http://provider.example/redirect"])
    with pytest.raises(DiscoveryRefused, match="allow list"):
        fetcher.fetch("http://provider.example/redirect?to=/secret")
    assert hits["/secret"] == 0


# -- URLs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["=alice", "@example", "xri://=alice", "!1234.5678", "+tag", "$dns", "(foo)", "ftp://example.com/",
     "file:///etc/passwd", "javascript:alert(1)", "http://user:pass@example.com/", "http://@example.com/",
     "http://example.com\\@127.0.0.1/", "http://proxy.xri.net/=alice", "http://proxy.xri.net./=alice", "https://XRI.NET./=x",
     "http:///path", "http://[::1/"],
)
def test_xri_userinfo_and_other_schemes_are_refused_without_network(url: str, make_fetcher: MakeFetcher) -> None:
    with pytest.raises(DiscoveryRefused):
        check_url(url)
    with pytest.raises(DiscoveryRefused):
        make_fetcher(resolver=lambda host, port: pytest.fail(f"resolved {host}")).fetch(url)


# -- size and time -----------------------------------------------------------


def test_an_oversized_declared_body_fails_at_once(internet: Internet) -> None:
    fetcher, _ = internet()
    started = time.monotonic()
    with pytest.raises(FetchError, match="too large"):
        fetcher.fetch("http://provider.example/big")
    assert time.monotonic() - started < 1


def test_an_endless_body_fails_after_max_bytes(internet: Internet) -> None:
    fetcher, _ = internet(max_bytes=256 * 1024)
    started = time.monotonic()
    with pytest.raises(FetchError, match="too large"):
        fetcher.fetch("http://provider.example/endless")
    assert time.monotonic() - started < 2


def test_a_body_of_exactly_max_bytes_is_read(internet: Internet) -> None:
    fetcher, _ = internet(max_bytes=1000)
    assert len(fetcher.fetch("http://provider.example/sized/1000").body) == 1000
    with pytest.raises(FetchError, match="too large"):
        fetcher.fetch("http://provider.example/sized/1001")


def test_a_slow_server_times_out(internet: Internet) -> None:
    fetcher, _ = internet(read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out") as info:
        fetcher.fetch("http://provider.example/slow")
    assert 0.4 < time.monotonic() - started < 1.5
    assert not isinstance(info.value, DiscoveryRefused)


def test_a_trickling_server_is_cut_off_by_the_overall_deadline(internet: Internet) -> None:
    fetcher, _ = internet(connect_timeout=0.5, read_timeout=0.5, total_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetcher.fetch("http://provider.example/drip")
    assert time.monotonic() - started < 2


def test_a_dead_port_fails_fast(make_fetcher: MakeFetcher) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        make_fetcher(allow_private_addresses=True).fetch(f"http://127.0.0.1:{free_port()}/")
    assert time.monotonic() - started < 1
    assert not isinstance(info.value, DiscoveryRefused)


def test_a_stalled_resolver_times_out(make_fetcher: MakeFetcher) -> None:
    def stalled(host: str, port: int) -> Sequence[str]:
        time.sleep(3)
        return [PUBLIC]

    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        make_fetcher(connect_timeout=0.3, resolver=stalled).fetch("http://slow-dns.example/")
    assert time.monotonic() - started < 1


# -- the HTTP exchange python3-openid expects --------------------------------


def test_a_post_body_is_sent_url_encoded(internet: Internet) -> None:
    fetcher, _ = internet()
    body = "openid.mode=check_authentication&a=b"
    response = fetcher.fetch("http://provider.example/echo", body=body, headers={"content-type": "text/xml"})
    assert response.status == 200
    assert httpx.Response(200, content=response.body).json() == {
        "method": "POST", "type": "application/x-www-form-urlencoded", "body": body
    }


def test_response_headers_are_a_lower_case_dict(internet: Internet) -> None:
    fetcher, _ = internet()
    response = fetcher.fetch("http://provider.example/", headers={"Accept": "application/xrds+xml"})
    assert isinstance(response, openid.fetchers.HTTPResponse)
    assert response.headers["x-custom-thing"] == "yes"
    assert response.headers["x-xrds-location"] == "/xrds"
    assert all(name == name.lower() for name in response.headers)


def test_an_error_status_is_returned_not_raised(internet: Internet) -> None:
    fetcher, _ = internet()
    assert fetcher.fetch("http://provider.example/missing").status == 404


def test_the_body_is_decoded_with_the_declared_charset(internet: Internet) -> None:
    fetcher, _ = internet()
    assert fetcher.fetch("http://provider.example/latin").body == "café"


def test_a_compressed_body_is_refused(internet: Internet) -> None:
    fetcher, _ = internet()
    with pytest.raises(FetchError, match="compressed"):
        fetcher.fetch("http://provider.example/gzip")


def test_proxy_variables_are_ignored(monkeypatch: pytest.MonkeyPatch, internet: Internet) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    fetcher, _ = internet()
    assert fetcher.fetch("http://provider.example/").status == 200


def test_cookies_set_for_one_visitor_are_not_sent_for_the_next(internet: Internet) -> None:
    fetcher, _ = internet()
    assert "provider_session" in fetcher.fetch("http://provider.example/cookie").headers["set-cookie"]
    assert fetcher.fetch("http://provider.example/cookie").body == '{"cookie":null}'


def test_one_fetcher_serves_many_threads(internet: Internet) -> None:
    fetcher, net = internet()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: fetcher.fetch(f"http://provider.example/sized/{n}").status, range(64)))
    assert statuses == [200] * 64
    assert set(net.connected) == {PUBLIC}


def test_each_thread_keeps_its_own_connections(internet: Internet) -> None:
    """A pool per thread: a thread reuses its keep-alive connection, another thread opens its own."""
    fetcher, net = internet()

    def twice() -> None:
        for _ in range(2):
            assert fetcher.fetch("http://provider.example/").status == 200

    for expected in (1, 2):
        worker = threading.Thread(target=twice)
        worker.start()
        worker.join()
        assert net.connected == [PUBLIC] * expected


def test_a_connection_left_mid_body_is_not_reused(internet: Internet) -> None:
    fetcher, net = internet(max_bytes=1000)
    with pytest.raises(FetchError, match="too large"):
        fetcher.fetch("http://provider.example/sized/200000")  # refused before the body was read to its end
    assert fetcher.fetch("http://provider.example/sized/10").status == 200
    assert net.connected == [PUBLIC, PUBLIC]


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[int, list[int]]]:
    """Answers one request per connection as if keeping it alive (no ``Connection: close``), then hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(4096)
                    if not data:
                        break
                    request += data
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    listener.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(
        hanging_up_server: tuple[int, list[int]], make_fetcher: MakeFetcher) -> None:
    port, accepted = hanging_up_server
    fetcher = make_fetcher(allow_private_addresses=True)
    for n in range(1, 4):
        response = fetcher.fetch(f"http://127.0.0.1:{port}/")
        assert (response.status, response.body) == (200, "ok")
        assert len(accepted) == n  # each fetch on a new connection, none failed on the closed one


def test_pools_of_ended_threads_are_closed(internet: Internet) -> None:
    fetcher, _ = internet()
    for _ in range(3):
        worker = threading.Thread(target=fetcher.fetch, args=("http://provider.example/",))
        worker.start()
        worker.join()
    assert len(fetcher._pools) == 1  # the last thread's: the others were closed when the next one came


def test_a_closed_fetcher_refuses_to_fetch(internet: Internet) -> None:
    fetcher, _ = internet()
    fetcher.close()
    with pytest.raises(FetchError, match="closed"):
        fetcher.fetch("http://provider.example/")


def test_from_settings_uses_the_fetch_settings() -> None:
    settings = Settings(fetch_connect_timeout=1.5, fetch_read_timeout=2.5, fetch_max_bytes=10, fetch_max_redirects=2,
                        provider_allowlist=("https://steamcommunity.com/openid",))
    with safe_fetcher(settings, allowlist=settings.provider_allowlist) as fetcher:
        assert (fetcher.connect_timeout, fetcher.read_timeout, fetcher.total_timeout) == (1.5, 2.5, 6.5)
        assert (fetcher.max_bytes, fetcher.max_redirects) == (10, 2)
        assert fetcher.allowlist == ("https://steamcommunity.com/openid",)


# -- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UvicornThread, Path]]:
    assert shutil.which("openssl"), "the TLS tests need the openssl command (make test installs it)"
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    with UvicornThread(app, ssl_keyfile=str(key), ssl_certfile=str(cert)) as running:
        yield running, cert


def test_https_connects_to_the_checked_address_but_verifies_the_host_name(
    tls_server: tuple[UvicornThread, Path], make_fetcher: MakeFetcher
) -> None:
    server, cert = tls_server
    fetcher = make_fetcher(allow_private_addresses=True, ssl_context=ssl.create_default_context(cafile=str(cert)))
    # The certificate names only "localhost": this works only if SNI and verification use the name.
    assert fetcher.fetch(f"https://localhost:{server.port}/").status == 200
    with pytest.raises(FetchError):
        fetcher.fetch(f"https://127.0.0.1:{server.port}/")


# -- what python3-openid makes of our errors ---------------------------------


@pytest.fixture
def installed(make_fetcher: MakeFetcher) -> Iterator[Callable[[SafeFetcher], None]]:
    previous = openid.fetchers.getDefaultFetcher()
    yield install_fetcher
    openid.fetchers.setDefaultFetcher(previous, wrap_exceptions=False)


def test_discovery_of_a_refused_identifier_fails_cleanly(
    installed: Callable[[SafeFetcher], None], server: UvicornThread, make_fetcher: MakeFetcher
) -> None:
    installed(make_fetcher())
    with pytest.raises(DiscoveryFailure) as info:
        openid_consumer.Consumer({}, None).begin(f"http://127.0.0.1:{server.port}/identity")
    assert isinstance(find_fetch_error(info.value), DiscoveryRefused)


def test_discovery_through_the_fetcher_finds_the_provider(
    installed: Callable[[SafeFetcher], None], server: UvicornThread, make_fetcher: MakeFetcher
) -> None:
    installed(make_fetcher(allow_private_addresses=True))
    request = openid_consumer.Consumer({}, None).begin(f"http://127.0.0.1:{server.port}/identity")
    assert request.endpoint.server_url == f"http://127.0.0.1:{server.port}/server"


def test_a_failed_direct_request_reaches_the_library_as_http_fetching_error(
    installed: Callable[[SafeFetcher], None], server: UvicornThread, make_fetcher: MakeFetcher
) -> None:
    # associate and check_authentication go through makeKVPost; the library catches HTTPFetchingError there.
    installed(make_fetcher(read_timeout=0.3, allow_private_addresses=True))
    message = Message.fromPostArgs({"openid.mode": "check_authentication"})
    with pytest.raises(openid.fetchers.HTTPFetchingError) as info:
        openid_consumer.makeKVPost(message, f"http://127.0.0.1:{server.port}/slow")
    assert isinstance(info.value.why, FetchError)
    assert find_fetch_error(info.value) is info.value.why


def test_find_fetch_error_is_none_for_unrelated_errors() -> None:
    assert find_fetch_error(DiscoveryFailure("no services", None)) is None
    assert find_fetch_error(openid.fetchers.HTTPFetchingError("bad status code")) is None
