"""nginx in front of a real app, with the project's own nginx.conf and deploy/nginx/ snippets.

Every test runs in both modes (the fixtures are parametrized): mode 1, nginx
asks the gateway with ``auth_request`` and proxies to the app itself; mode 2,
nginx sends everything to the gateway, which forwards. Real processes on
loopback ports: the development provider, the microblog (or the echo app of
tests/upstream_app.py), the gateway and nginx.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

from devtools import stack as stack_module
from devtools.stack import NGINX_CONF, NginxNotFound, Ports, Stack, find_nginx, render_nginx_conf
from gateway.proof import ProofVerifier
from tests import upstream_app
from tests.htmlforms import submit
from tests.payloads import generated_payloads, load_payloads
from tests.signin_steps import consent, follow_autopost, sign_in
from tests.stack_fixtures import echo_stack_fixture, stack_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.nginx

FORGED = [
    ("X-Gateway-User", "https://evil.example/id/mallory"),
    ("x-gateway-user", "https://evil.example/id/mallory2"),
    ("X-GATEWAY-NICKNAME", "mallory"),
    ("X-Gateway-Email", "mallory@evil.example"),
    ("X-Gateway-Proof", "1700000000.forged"),
    ("X_Gateway_User", "https://evil.example/id/underscore"),
    ("x_gateway_proof", "1700000000.forged"),
    ("X-Gateway-Auth-Time", "9999999999"),  # a sign-in "in the future": fresh for every step-up rule
    ("X-Gateway-Acr", "urn:forged:mfa"),
]
IDENTITY_HEADERS = ("x-gateway-user", "x-gateway-nickname", "x-gateway-email", "x-gateway-proof")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A cookie-keeping client that does not follow redirects (to look at each answer)."""
    with httpx.Client(timeout=15) as c:
        yield c


def signed_in(stack: Stack, username: str) -> httpx.Client:
    """A browser signed in as ``username`` through nginx, as a client that does not follow redirects."""
    browser = httpx.Client(follow_redirects=True, timeout=15)
    sign_in(browser, stack.url, stack.provider_identifier, username)
    client = httpx.Client(timeout=15, cookies=browser.cookies)
    browser.close()
    assert client.cookies.get("gw_session"), f"no session after sign-in\n{stack.logs()}"
    return client


@pytest.fixture
def alice(stack: Stack) -> Iterator[httpx.Client]:
    with signed_in(stack, "alice") as c:
        yield c


def whoami(client: httpx.Client, stack: Stack, headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    return client.get(stack.url + "/api/whoami", headers=headers)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.2)


# -- the configuration itself ------------------------------------------------------------------


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_nginx(), "-t", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr"],
                          capture_output=True, text=True, timeout=30)


def test_checked_in_nginx_conf_is_usable_as_it_is(tmp_path: Path) -> None:
    result = nginx_test(NGINX_CONF, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", ["auth_request", "proxy"])
def test_rendered_nginx_conf_passes_nginx_t(tmp_path: Path, mode: stack_module.Mode) -> None:
    ports = Ports(nginx=18080, gateway=19000, app=18000, provider=18001)
    conf = stack_module.write_nginx_prefix(tmp_path, render_nginx_conf(mode, ports))
    text = conf.read_text()
    assert "listen 127.0.0.1:18080;" in text and "server 127.0.0.1:19000;" in text and "127.0.0.1:18000;" in text
    directives = {line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")}
    assert ("include deploy/nginx/proxy-mode.conf;" in directives) == (mode == "proxy")
    assert ("include deploy/nginx/protect.conf;" in directives) == (mode == "auth_request")
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr


def test_rendering_refuses_a_config_it_cannot_render_exactly() -> None:
    with pytest.raises(ValueError, match="exactly once"):
        render_nginx_conf("auth_request", Ports.free(), template="server { listen 127.0.0.1:8080; }")


def test_missing_nginx_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devtools.stack.shutil.which", lambda name: None)
    monkeypatch.setattr(stack_module, "NGINX_CANDIDATES", ())
    with pytest.raises(NginxNotFound, match="apt-get install nginx"):
        Stack()


# -- signing in ---------------------------------------------------------------------------------


def test_anonymous_request_is_redirected_to_login_with_the_original_uri(stack: Stack, client: httpx.Client) -> None:
    target = "/?page=2&q=two%20words&x=%2F"
    response = client.get(stack.url + target)
    assert response.status_code == 302, stack.logs()
    assert response.headers["location"] == "/login?" + urlencode({"next": target})
    assert response.headers["cache-control"] == "no-store"


def test_sign_in_through_nginx_lands_on_the_original_page(stack: Stack, browser: httpx.Client) -> None:
    target = "/?page=1&q=two%20words"
    page = browser.get(stack.url + target)
    assert page.url.path == "/login" and "Local dev provider" in page.text
    # As a person would: click "Local dev provider", type a user name, Allow.
    consent_page = follow_autopost(browser, submit(browser, page, button=("provider", stack.provider_identifier)))
    final = consent(browser, consent_page, "alice")
    assert final.status_code == 200, stack.logs()
    assert str(final.url) == stack.url + target
    assert "alice" in final.text


def test_a_post_written_through_nginx_appears_with_its_authors_nickname(stack: Stack, alice: httpx.Client) -> None:
    text = f"Hello through nginx in mode {stack.mode}"
    response = alice.post(stack.url + "/", data={"body": text})
    # The app's redirect after the POST reaches the browser unchanged.
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == "/"
    home = alice.get(stack.url + "/")
    assert home.status_code == 200
    assert text in home.text
    assert "alice" in home.text


# -- identity headers -----------------------------------------------------------------------------


def test_identity_headers_from_the_client_are_replaced_by_the_real_identity(
    stack: Stack, alice: httpx.Client
) -> None:
    response = whoami(alice, stack, FORGED)
    # Had any forged header reached the app, it would refuse the request (bad proof or header sent twice).
    assert response.status_code == 200, response.text[:500]
    seen = response.json()
    assert {key: seen[key] for key in ("user", "nickname", "email", "acr")} == {
        "user": stack.provider_url + "/id/alice", "nickname": "alice", "email": "alice@example.test", "acr": ""}
    assert time.time() - 600 < seen["auth_time"] <= time.time()  # the real sign-in's, not the forged one


def test_identity_headers_do_not_get_an_anonymous_request_in(stack: Stack, client: httpx.Client) -> None:
    response = whoami(client, stack, FORGED)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?next=")


def test_public_path_is_served_to_anyone_and_never_with_a_forged_identity(
    stack: Stack, client: httpx.Client, alice: httpx.Client
) -> None:
    for who in (client, alice):
        plain = who.get(stack.url + "/static/style.css")
        assert plain.status_code == 200, plain.text[:500]
        # The microblog answers 401 to identity headers without a valid proof: 200 means they were removed.
        forged = who.get(stack.url + "/static/style.css", headers=FORGED)
        assert forged.status_code == 200, forged.text[:500]
        assert forged.content == plain.content


def test_app_refuses_forged_identity_sent_straight_to_it(stack: Stack) -> None:
    response = httpx.get(stack.app_url + "/api/whoami", headers=FORGED[:1] + FORGED[4:5])
    assert response.status_code == 401
    assert httpx.get(stack.app_url + "/api/whoami").json() == {"user": None}


def test_identity_reaches_the_app_once_with_a_proof_for_the_uri_it_receives(echo_stack: Stack) -> None:
    with signed_in(echo_stack, "bob") as bob:
        uri = "/echo?q=two%20words&path=%2Fa%2Fb&caf%C3%A9=1"
        response = bob.get(echo_stack.url + uri, headers=FORGED)
    assert response.status_code == 200, response.text[:500]
    echo = response.json()
    names = [name.lower() for name, _ in echo["headers"]]
    for name in IDENTITY_HEADERS:
        assert names.count(name) == 1, echo["headers"]
    assert not [name for name in names if "_" in name], "header names with underscores must not pass"
    received = echo["raw_path"] + "?" + echo["query_string"]
    assert received == uri
    headers = httpx.Headers(echo["headers"])
    identity = ProofVerifier(echo_stack.proof_key).verify(headers, "GET", headers["host"], received)
    assert identity is not None
    assert (identity.user_id, identity.nickname) == (echo_stack.provider_url + "/id/bob", "bob")


def test_a_session_cookie_in_one_of_several_cookie_headers_still_signs_in(echo_stack: Stack) -> None:
    """HTTP/2 clients split Cookie into several headers; the check gets them joined (the auth location passes
    only the headers it reads, Cookie among them as nginx's ``$http_cookie``), and the app gets its own."""
    with signed_in(echo_stack, "dave") as dave:
        session = dave.cookies["gw_session"]
        headers = [("Cookie", "theme=dark"), ("Cookie", f"gw_session={session}"), ("Cookie", "lang=fr")]
        response = httpx.get(echo_stack.url + "/echo", headers=headers, timeout=15)
    assert response.status_code == 200, response.text[:500]
    echo = httpx.Headers(response.json()["headers"])
    assert echo["x-gateway-nickname"] == "dave"
    assert "gw_session" not in echo.get("cookie", "")
    assert "theme=dark" in echo["cookie"] and "lang=fr" in echo["cookie"]


# -- cookies and redirects --------------------------------------------------------------------------


def test_refreshed_session_cookie_reaches_the_browser(echo_stack: Stack) -> None:
    with signed_in(echo_stack, "carol") as carol:
        time.sleep(1.2)  # the session cookie is re-signed once a tenth of the 10 s idle timeout has passed
        response = carol.get(echo_stack.url + "/echo")
        assert response.status_code == 200, echo_stack.logs()
        cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("gw_session=")]
        assert len(cookies) == 1, response.headers
        assert "HttpOnly" in cookies[0]
        assert carol.get(echo_stack.url + "/echo").status_code == 200


def test_app_redirects_and_cookies_pass_through_unchanged(echo_stack: Stack) -> None:
    with signed_in(echo_stack, "dave") as dave:
        redirect = dave.get(echo_stack.url + "/redirect")
        assert redirect.status_code == 302
        assert redirect.headers["location"] == "/elsewhere"
        cookies = dave.get(echo_stack.url + "/cookies")
        app_cookies = [c for c in cookies.headers.get_list("set-cookie") if not c.startswith("gw_")]
        assert len(app_cookies) == 2, cookies.headers


def gateway_peak_rss_kib(stack: Stack) -> int:
    proc = stack.processes["gateway"].proc
    assert proc is not None
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_download_and_upload_stream_through_with_bounded_gateway_memory(echo_stack: Stack) -> None:
    """Mode 2 streams bodies through the gateway; mode 1 never sees them. Either way its memory stays flat."""
    size = 64 * 1024 * 1024
    with signed_in(echo_stack, "frank") as frank:
        before = gateway_peak_rss_kib(echo_stack)
        digest = hashlib.sha256()
        received = 0
        with frank.stream("GET", echo_stack.url + f"/download?size={size}") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received += len(chunk)
                digest.update(chunk)
        assert received == size
        assert digest.hexdigest() == hashlib.sha256(b"".join(upstream_app.pattern(size))).hexdigest()
        body = b"x" * (900 * 1024)  # under nginx.conf's client_max_body_size (10m)
        upload = frank.post(echo_stack.url + "/upload", content=body)
        assert upload.status_code == 200 and upload.json()["bytes"] == len(body)
        assert gateway_peak_rss_kib(echo_stack) - before < 32 * 1024, "the gateway held the body in memory"


def test_open_redirect_corpus_falls_back_through_nginx(stack: Stack, alice: httpx.Client,
                                                       client: httpx.Client) -> None:
    """The corpus, raw and percent-encoded, through nginx's real login and logout flows."""
    payloads = (*load_payloads(), *generated_payloads()[::10])
    for payload in payloads:
        forms = [quote(payload, safe="")]
        if payload.isascii() and payload.isprintable() and " " not in payload and "#" not in payload:
            forms.append(payload)
        for raw in forms:
            for who, path in ((alice, "/login"), (client, "/logout")):
                response = who.get(f"{stack.url}{path}?next={raw}")
                location = response.headers.get("location", "")
                assert response.status_code in (302, 303), (payload, response.status_code)
                assert location.startswith("/") and not location.startswith(("//", "/\\")), (payload, location)


# -- signing out, the auth endpoint, failures -------------------------------------------------------


def test_after_logout_protected_pages_go_to_the_login_page(stack: Stack) -> None:
    with signed_in(stack, "erin") as erin:
        old_cookie = erin.cookies["gw_session"]
        assert whoami(erin, stack).status_code == 200
        # A browser's own click (Fetch Metadata): signs out at once, no confirmation page.
        logout = erin.get(stack.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert logout.status_code in (302, 303)
        assert logout.headers["location"].startswith("/login")
        after = erin.get(stack.url + "/")
        assert after.status_code == 302
        assert after.headers["location"] == "/login"
    # A copy of the cookie taken before signing out is revoked on the server, not only deleted.
    with httpx.Client(timeout=15, cookies={"gw_session": old_cookie}) as thief:
        replay = thief.get(stack.url + "/api/whoami")
    assert replay.status_code == 302
    assert replay.headers["location"].startswith("/login")


@pytest.mark.parametrize("path", [
    "/_gateway/auth", "/_gateway/auth?x=1", "/_gateway/%61uth", "//_gateway/auth", "/_gateway//auth",
    "/_gateway/auth/",
])
def test_auth_endpoint_answers_nothing_from_outside(stack: Stack, alice: httpx.Client, path: str) -> None:
    response = alice.get(stack.url + path, headers={"X-Original-URI": "/api/whoami", "X-Original-Method": "GET"})
    assert response.status_code == 404
    assert not [name for name in response.headers if name.lower().startswith("x-gateway")]
    assert "alice" not in response.text


def test_store_outage_gives_a_503_page_not_the_app_and_recovers(stack: Stack, alice: httpx.Client) -> None:
    assert alice.get(stack.url + "/").status_code == 200
    store = stack.gateway_state_dir / "gateway.sqlite3"
    away = store.with_name(store.name + ".away")
    store.rename(away)
    try:
        # The gateway trusts its revocation list for max(5 s, 3 x refresh) without the store.
        wait_for(lambda: alice.get(stack.url + "/").status_code == 503, 15, "503 while the store is away")
        page = alice.get(stack.url + "/")
        assert "Temporarily unavailable" in page.text
        if stack.mode == "auth_request":  # nginx's own page (gateway-locations.conf)
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["retry-after"] == "10"
        assert alice.post(stack.url + "/", data={"body": "written during the outage"}).status_code == 503
    finally:
        away.rename(store)
    wait_for(lambda: alice.get(stack.url + "/").status_code == 200, 10, "back to 200 with the store restored")
    assert "written during the outage" not in alice.get(stack.url + "/").text
