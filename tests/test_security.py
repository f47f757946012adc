"""Attacks on the gateway's own pages, each tried over real HTTP and seen to fail."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.conftest import GatewayFactory, RunningGateway
from tests.pages.test_login_callback import intercept_callback
from tests.payloads import generated_payloads, load_payloads
from tests.servers import UvicornThread
from tests.signin_steps import follow_autopost, sign_in, start_login


def csrf_token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def signed_in(client: httpx.Client, gateway: RunningGateway) -> bool:
    return client.get(gateway.url + "/echo", follow_redirects=False).status_code == 200


# -- CSRF ------------------------------------------------------------------------------------------


def test_cross_site_login_post_does_nothing(gateway: RunningGateway, provider: UvicornThread) -> None:
    """A form on another site posting to /login carries no CSRF cookie or token."""
    response = httpx.post(gateway.url + "/login", data={"identifier": f"{provider.url}/id/alice"})
    assert response.status_code == 403
    assert "location" not in response.headers


def test_login_post_with_a_token_from_another_browser_is_refused(gateway: RunningGateway,
                                                                  provider: UvicornThread) -> None:
    with httpx.Client() as attacker, httpx.Client() as victim:
        token = csrf_token(attacker.get(gateway.url + "/login"))
        victim.get(gateway.url + "/login")  # the victim has a CSRF cookie of its own
        response = victim.post(gateway.url + "/login", data={"identifier": f"{provider.url}/id/a", "csrf_token": token})
        assert response.status_code == 403


def test_cross_site_logout_post_does_nothing(gateway: RunningGateway, provider: UvicornThread,
                                             browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    response = browser.post(gateway.url + "/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert signed_in(browser, gateway)


def test_cross_site_logout_get_asks_for_confirmation(gateway: RunningGateway, provider: UvicornThread,
                                                     browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    page = browser.get(gateway.url + "/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert page.status_code == 200 and "Sign out?" in page.text
    assert signed_in(browser, gateway)
    response = browser.post(gateway.url + "/logout", data={"csrf_token": csrf_token(page), "next": "/"},
                            follow_redirects=False)
    assert response.status_code == 303
    assert not signed_in(browser, gateway)


def test_cross_site_post_callback_is_reposted_from_our_origin(gateway: RunningGateway, provider: UvicornThread,
                                                              browser: httpx.Client) -> None:
    """Providers answer long responses with an auto-submitted POST; SameSite=Lax cookies stay behind."""
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    parts = urlsplit(url)
    openid_fields = {k: v[0] for k, v in parse_qs(parts.query).items() if k.startswith("openid.")}
    own = {k: v[0] for k, v in parse_qs(parts.query).items() if not k.startswith("openid.")}
    action = f"{gateway.url}{parts.path}?" + httpx.QueryParams(own).__str__()
    cross_site = httpx.post(action, data=openid_fields)  # no cookies, as the browser would send it
    assert cross_site.status_code == 200 and 'id="autopost"' in cross_site.text
    final = follow_autopost(browser, cross_site)  # the same page submitted by the browser: cookies go along
    assert urlsplit(str(final.url)).path == "/"
    assert signed_in(browser, gateway)


# -- rate limits -----------------------------------------------------------------------------------


def test_sign_in_starts_are_rate_limited(gateway_factory: GatewayFactory, provider: UvicornThread) -> None:
    gateway = gateway_factory(login_rate_limit=3)
    with httpx.Client() as client:
        token = csrf_token(client.get(gateway.url + "/login"))
        statuses = [client.post(gateway.url + "/login", data={"csrf_token": token, "identifier": "=xri"}).status_code
                    for _ in range(4)]
        assert statuses == [400, 400, 400, 429]
        limited = client.post(gateway.url + "/login", data={"csrf_token": token, "identifier": "=xri"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "Too many attempts" in limited.text


def test_failed_callbacks_are_rate_limited(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(failure_rate_limit=2)
    with httpx.Client() as client:
        statuses = [client.get(gateway.url + "/_gateway/callback?openid.mode=id_res").status_code for _ in range(3)]
        assert statuses == [303, 303, 429]


def test_client_address_from_untrusted_peers_is_not_believed(gateway_factory: GatewayFactory) -> None:
    """Spoofing X-Forwarded-For does not reset a limit: only trusted proxies are believed."""
    gateway = gateway_factory(failure_rate_limit=1, trusted_proxies=("10.255.255.254/32",))
    with httpx.Client() as client:
        client.get(gateway.url + "/_gateway/callback", headers={"X-Forwarded-For": "1.1.1.1"})
        second = client.get(gateway.url + "/_gateway/callback", headers={"X-Forwarded-For": "2.2.2.2"})
        assert second.status_code == 429


# -- garbage and oversized input -------------------------------------------------------------------


def test_oversized_form_is_refused(gateway: RunningGateway) -> None:
    with httpx.Client() as client:
        token = csrf_token(client.get(gateway.url + "/login"))
        response = client.post(gateway.url + "/login", data={"csrf_token": token, "identifier": "x" * 100_000})
        assert response.status_code == 413


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"a=%ff%fe&csrf_token=%80", b"=" * 5000, b"&" * 5000])
def test_garbage_forms_get_a_4xx(gateway: RunningGateway, body: bytes) -> None:
    for path in ("/login", "/logout"):
        response = httpx.post(gateway.url + path, content=body,
                              headers={"content-type": "application/x-www-form-urlencoded"})
        assert 400 <= response.status_code < 500, (path, response.status_code)
    # A garbage callback is a failed sign-in: back to the login page with a message.
    response = httpx.post(gateway.url + "/_gateway/callback", content=body,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code in (303, 400, 413) and "gw_session=" not in response.headers.get("set-cookie", "")


def test_garbage_multipart_gets_a_4xx(gateway: RunningGateway) -> None:
    response = httpx.post(gateway.url + "/login", content=b"--x\r\nbroken",
                          headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("query", ["next=%ff%fe", "next=" + "a" * 10_000, "m=%00", "next=%0d%0aSet-Cookie:x=1"])
def test_garbage_queries_get_a_page_not_a_500(gateway: RunningGateway, query: str) -> None:
    response = httpx.get(f"{gateway.url}/login?{query}")
    assert response.status_code == 200
    assert "set-cookie: x=1" not in str(response.headers).lower()


def test_huge_and_garbage_cookies_are_not_signed_in(gateway: RunningGateway) -> None:
    for cookie in ("gw_session=" + "A" * 8000, "gw_remember=%%%; gw_csrf=" + "z" * 500, "gw_session=\"\"\""):
        response = httpx.get(gateway.url + "/echo", headers={"cookie": cookie})
        assert response.status_code == 302
        assert httpx.get(gateway.url + "/login", headers={"cookie": cookie}).status_code == 200
    # Control characters never reach the gateway: the HTTP server refuses the request.
    assert httpx.get(gateway.url + "/echo", headers={"cookie": "gw_session=\x7f\x01"}).status_code == 400


def test_xri_and_odd_identifiers_are_refused(gateway: RunningGateway) -> None:
    with httpx.Client() as client:
        token = csrf_token(client.get(gateway.url + "/login"))
        for identifier in ("=alice", "@corp", "xri://=x", "file:///etc/passwd", "http://user:pw@127.0.0.1/"):
            response = client.post(gateway.url + "/login", data={"csrf_token": token, "identifier": identifier})
            assert response.status_code == 400, identifier
            assert 'class="flash flash-error"' in response.text and "not" in response.text


def test_loopback_provider_is_refused_by_default(gateway_factory: GatewayFactory, provider: UvicornThread) -> None:
    gateway = gateway_factory(allow_private_addresses=False)
    with httpx.Client() as client:
        token = csrf_token(client.get(gateway.url + "/login"))
        response = client.post(gateway.url + "/login", data={"csrf_token": token,
                                                             "identifier": f"{provider.url}/id/alice"})
        assert response.status_code == 400
        assert "private network address" in response.text and "allow_private_addresses" in response.text


# -- open redirects through the real flows -------------------------------------------------------


def assert_stays_on_site(response: httpx.Response, payload: str) -> None:
    location = response.headers.get("location", "")
    assert response.status_code == 303, (payload, response.status_code)
    assert location.startswith("/") and not location.startswith(("//", "/\\")), (payload, location)
    assert not urlsplit(location).netloc, (payload, location)


def test_open_redirect_corpus_falls_back_on_login_and_logout(gateway: RunningGateway, provider: UvicornThread,
                                                             browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    payloads = (*load_payloads(), *generated_payloads()[::5])
    assert len(payloads) > 500
    with httpx.Client() as anonymous:
        for payload in payloads:
            encoded = quote(payload, safe="")
            forms = [encoded] + ([payload] if payload.isprintable() and payload.isascii() and " " not in payload
                                 and "#" not in payload else [])
            for raw in forms:
                assert_stays_on_site(browser.get(f"{gateway.url}/login?next={raw}", follow_redirects=False), payload)
                logout = anonymous.get(f"{gateway.url}/logout?next={raw}", follow_redirects=False)
                assert_stays_on_site(logout, payload)


def test_next_survives_a_whole_round_trip(gateway: RunningGateway, provider: UvicornThread,
                                          browser: httpx.Client) -> None:
    target = "/echo?q=a%20b&list=1&list=2&unicode=%C3%A9#frag"
    final = sign_in(browser, gateway.url, f"{provider.url}/id/alice", next_target=target)
    assert str(final.url).endswith(target)


# -- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/logout", "/_gateway/account", "/_gateway/nothing"])
def test_security_headers_on_gateway_pages(gateway: RunningGateway, path: str) -> None:
    response = httpx.get(gateway.url + path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_auth_answers_are_not_cacheable(gateway: RunningGateway) -> None:
    assert httpx.get(gateway.url + "/_gateway/auth").headers["cache-control"] == "no-store"


# -- fail closed --------------------------------------------------------------------------------------


def test_store_outage_refuses_protected_requests_and_recovers(gateway: RunningGateway, provider: UvicornThread,
                                                              browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    database = Path(gateway.settings.sqlite_path)
    hidden = database.with_suffix(".away")
    database.rename(hidden)
    try:
        deadline = time.monotonic() + 20
        while signed_in(browser, gateway) and time.monotonic() < deadline:
            time.sleep(0.25)
        response = browser.get(gateway.url + "/echo", follow_redirects=False)
        assert response.status_code == 503 and "Temporarily unavailable" in response.text
        assert httpx.get(gateway.url + "/_gateway/ready").status_code == 503  # not ready...
        assert httpx.get(gateway.url + "/_gateway/health").status_code == 200  # ...but alive: no restart
    finally:
        hidden.rename(database)
    deadline = time.monotonic() + 20
    while not signed_in(browser, gateway) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert signed_in(browser, gateway)
    assert httpx.get(gateway.url + "/_gateway/ready").status_code == 200


def test_login_during_store_outage_is_a_clean_503(gateway: RunningGateway, provider: UvicornThread,
                                                  browser: httpx.Client) -> None:
    page = start_login(browser, gateway.url, f"{provider.url}/id/alice")
    database = Path(gateway.settings.sqlite_path)
    database.rename(database.with_suffix(".away"))
    try:
        from tests.signin_steps import consent

        final = consent(browser, page, "alice")
        assert final.status_code in (200, 503), final.status_code
        if final.status_code == 200:
            assert urlsplit(str(final.url)).path == "/login"
    finally:
        database.with_suffix(".away").rename(database)
    assert not signed_in(browser, gateway)


def test_oversized_request_headers_are_refused_with_431(gateway: RunningGateway) -> None:
    for path in ("/login", "/_gateway/auth", "/echo"):
        response = httpx.get(gateway.url + path, headers={"x-big": "a" * 40_000})
        assert response.status_code == 431, path
    cookies = "; ".join(f"c{i}={'v' * 100}" for i in range(400))
    assert httpx.get(gateway.url + "/login", headers={"cookie": cookies}).status_code == 431
    assert httpx.get(gateway.url + "/login").status_code == 200


def raw_get(url: str, target: str) -> int:
    """Send a request line exactly as written (httpx would normalise dot segments away)."""
    import socket

    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("target", ["/static/../echo", "/static/%2e%2e/echo", "/static/%2E%2E;/echo",
                                    "/static/..;/echo", "/static/..//echo", "/static/.%2e/echo", "/static/..%5cecho",
                                    "/static%2f..%2fecho", "/static/./../echo", "/STATIC/../echo"])
def test_public_prefix_with_dot_segments_is_not_public(gateway_factory: GatewayFactory, target: str) -> None:
    """An app that normalises /static/../echo to /echo would otherwise serve it without sign-in."""
    gateway = gateway_factory(public_paths=("/static/",))
    assert raw_get(gateway.url, "/static/file.css") != 302  # public: reaches the app
    assert raw_get(gateway.url, target) == 302, target  # ambiguous: sign in first
