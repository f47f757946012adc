"""Sign-in end to end over real HTTP: gateway, development provider and app, each under uvicorn."""

from __future__ import annotations

import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from gateway.app import GatewayApp
from gateway.pages.render import MESSAGES
from gateway.proof import ProofVerifier
from tests.conftest import PROOF_KEY, GatewayFactory, RunningGateway, make_settings
from tests.htmlforms import forms, submit
from tests.servers import UvicornThread, free_port
from tests.signin_steps import consent, sign_in, start_login


def whoami(client: httpx.Client, gateway: RunningGateway, path: str = "/echo") -> dict[str, str]:
    """The identity headers the protected app received, after checking the gateway's proof."""
    response = client.get(gateway.url + path)
    assert response.status_code == 200, response.text[:500]
    echo = response.json()
    headers = httpx.Headers([tuple(pair) for pair in echo["headers"]])
    uri = echo["raw_path"] + ("?" + echo["query_string"] if echo["query_string"] else "")
    identity = ProofVerifier(PROOF_KEY).verify(headers, echo["method"], headers.get("host", ""), uri)
    assert identity is not None
    return {"user": identity.user_id, "nickname": identity.nickname, "email": identity.email}


def cookie_header(response: httpx.Response, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def history_cookies(response: httpx.Response, name: str) -> list[str]:
    return [v for r in [*response.history, response] for v in r.headers.get_list("set-cookie")
            if v.startswith(name + "=") and "Max-Age=0" not in v]


# -- the happy paths ---------------------------------------------------------------------------


def test_anonymous_request_is_sent_to_login_with_next(gateway: RunningGateway) -> None:
    response = httpx.get(gateway.url + "/echo?a=1&b=two%20words")
    assert response.status_code == 302
    assert response.headers["location"] == "/login?" + urlencode({"next": "/echo?a=1&b=two%20words"})


def test_login_page_is_a_real_page_with_providers(gateway: RunningGateway) -> None:
    response = httpx.get(gateway.url + "/login")
    assert response.status_code == 200
    assert "<form" in response.text and 'name="identifier"' in response.text and 'name="remember"' in response.text
    assert "Steam" in response.text and "Ubuntu One" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_claimed_identifier_sign_in_lands_on_next_with_identity(
    gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client
) -> None:
    final = sign_in(browser, gateway.url, f"{provider.url}/id/alice", "alice", next_target="/echo?x=1&y=2")
    assert urlsplit(str(final.url)).path == "/echo"
    assert final.json()["query_string"] == "x=1&y=2"
    assert whoami(browser, gateway) == {
        "user": f"{provider.url}/id/alice", "nickname": "alice", "email": "alice@example.test"}


def test_identifier_select_sign_in(gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/openid", "bob")
    me = whoami(browser, gateway)
    assert me["user"].startswith(provider.url) and me["user"].endswith("/bob")
    assert me["nickname"] == "bob"


@pytest.mark.parametrize(("profile", "email"), [("sreg-only", True), ("ax-only", True), ("no-email", False)])
def test_extension_profiles(gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client,
                            profile: str, email: bool) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/{profile}/id/carol", "carol")
    me = whoami(browser, gateway)
    assert me["nickname"] == "carol"
    assert me["email"] == ("carol@example.test" if email else "")


def test_steam_like_provider_uses_stateless_check_authentication(
    gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client
) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/steam/openid", "gabe")
    me = whoami(browser, gateway)
    assert re.fullmatch(re.escape(provider.url) + r"/steam/openid/id/7656119\d{10}", me["user"])
    assert me["nickname"] == me["user"].rsplit("/", 1)[1]  # no SReg/AX: last path segment
    assert me["email"] == ""


def test_email_can_be_required(gateway_factory, provider: UvicornThread, browser: httpx.Client) -> None:
    gateway = gateway_factory(require_email=True)
    final = sign_in(browser, gateway.url, f"{provider.url}/no-email/id/dave", "dave")
    assert urlsplit(str(final.url)).path == "/login"
    assert "did not send one" in final.text


def test_signed_in_user_opening_login_goes_to_next(gateway: RunningGateway, provider: UvicornThread,
                                                   browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    response = browser.get(gateway.url + "/login", params={"next": "/echo?again=1"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/echo?again=1"


# -- cookies -------------------------------------------------------------------------------------


def test_without_remember_me_only_a_browser_session_cookie(gateway: RunningGateway, provider: UvicornThread,
                                                           browser: httpx.Client) -> None:
    final = sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    [session] = history_cookies(final, gateway.settings.session_cookie)
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Max-Age" not in session
    assert history_cookies(final, gateway.settings.remember_cookie) == []


def test_remember_me_sets_a_persistent_cookie(gateway: RunningGateway, provider: UvicornThread,
                                              browser: httpx.Client) -> None:
    final = sign_in(browser, gateway.url, f"{provider.url}/id/alice", remember=True)
    [remember] = history_cookies(final, gateway.settings.remember_cookie)
    assert f"Max-Age={30 * 86400}" in remember and "HttpOnly" in remember
    # A browser restart keeps only persistent cookies: the remember-me cookie signs back in.
    value = remember.split(";", 1)[0].split("=", 1)[1]
    with httpx.Client(follow_redirects=True) as restarted:
        restarted.cookies.set(gateway.settings.remember_cookie, value)
        assert whoami(restarted, gateway)["user"] == f"{provider.url}/id/alice"


def test_tampered_session_cookie_is_not_signed_in(gateway: RunningGateway, provider: UvicornThread,
                                                  browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    name = gateway.settings.session_cookie
    value = browser.cookies[name]
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    with httpx.Client() as other:
        other.cookies.set(name, forged)
        assert other.get(gateway.url + "/echo").status_code == 302


def test_logout_clears_both_cookies_and_signs_out(gateway: RunningGateway, provider: UvicornThread,
                                                  browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice", remember=True)
    response = browser.get(gateway.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"},
                           follow_redirects=False)  # a click on this site's own link
    assert response.status_code == 303
    assert response.headers["location"] == "/login?m=signed-out"
    for name in (gateway.settings.session_cookie, gateway.settings.remember_cookie):
        assert "Max-Age=0" in cookie_header(response, name)
    page = browser.get(gateway.url + "/login?m=signed-out")
    assert "You have been signed out." in page.text
    assert browser.get(gateway.url + "/echo", follow_redirects=False).status_code == 302


def test_logout_post_redirects_to_a_validated_next(gateway: RunningGateway, provider: UvicornThread,
                                                   browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/alice")
    page = browser.get(gateway.url + "/_gateway/account")  # gets a CSRF cookie and token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    for target, expected in (("/echo?bye=1", "/echo?bye=1"), ("//evil.example/", "/")):
        response = browser.post(gateway.url + "/logout", data={"csrf_token": token.group(1), "next": target},
                                follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == expected


# -- failures end on the login page, never with a session -----------------------------------------------


def no_follow(client: httpx.Client, url: str) -> httpx.Response:
    return client.get(url, follow_redirects=False)


def assert_refused(response: httpx.Response, message: str = "Invalid login. Please try again.") -> None:
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"].startswith("/login")
    assert "set-cookie" not in response.headers or "gw_session=" not in " ".join(
        v for v in response.headers.get_list("set-cookie") if "Max-Age=0" not in v)


def intercept_callback(client: httpx.Client, gateway: RunningGateway, identifier: str) -> tuple[str, dict[str, str]]:
    """The callback URL as the provider sent it, without letting the browser follow it yet."""
    page = start_login(client, gateway.url, identifier)
    data = {"username": "alice"} if "readonly" not in page.text else {}
    form = forms(page.text)[0]
    values = {**dict(form.fields), **data, "decision": "allow"}
    answer = client.post(str(page.url.join(form.action)), data=values, follow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["location"], dict(client.cookies)


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_cancel_at_the_provider_returns_to_login(gateway: RunningGateway, provider: UvicornThread,
                                                 browser: httpx.Client) -> None:
    page = start_login(browser, gateway.url, f"{provider.url}/id/alice", next_target="/echo")
    final = consent(browser, page, "alice", decision="deny")
    assert urlsplit(str(final.url)).path == "/login"
    assert "cancelled" in final.text
    assert parse_qs(urlsplit(str(final.url)).query)["next"] == ["/echo"]
    assert browser.get(gateway.url + "/echo", follow_redirects=False).status_code == 302


def test_tampered_signature_is_refused(gateway: RunningGateway, provider: UvicornThread,
                                       browser: httpx.Client) -> None:
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    query = parse_qs(urlsplit(url).query)
    sig = query["openid.sig"][0]
    forged = with_param(url, "openid.sig", ("A" if sig[0] != "A" else "B") + sig[1:])
    assert_refused(no_follow(browser, forged))


def test_tampered_signed_field_is_refused(gateway: RunningGateway, provider: UvicornThread,
                                          browser: httpx.Client) -> None:
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    assert_refused(no_follow(browser, with_param(url, "openid.sreg.email", "admin@example.test")))


def test_replayed_callback_is_refused(gateway: RunningGateway, provider: UvicornThread,
                                      browser: httpx.Client) -> None:
    url, cookies = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    first = no_follow(browser, url)
    assert first.status_code == 303 and not first.headers["location"].startswith("/login")
    # Replay with the state cookie put back: the login state is used up (the nonce store would refuse it too).
    with httpx.Client() as attacker:
        for name, value in cookies.items():
            if name.startswith("gw_state_"):
                attacker.cookies.set(name, value)
        assert_refused(no_follow(attacker, url))


def test_callback_for_another_return_to_is_refused(gateway: RunningGateway, provider: UvicornThread,
                                                   browser: httpx.Client) -> None:
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    assert_refused(no_follow(browser, with_param(url, "next", "/echo?elsewhere=1")))


def test_callback_opened_in_another_browser_is_refused(gateway: RunningGateway, provider: UvicornThread,
                                                       browser: httpx.Client) -> None:
    """Login CSRF: the attacker's own valid assertion, opened in the victim's browser."""
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/mallory")
    with httpx.Client() as victim:
        response = no_follow(victim, url)
        assert_refused(response)
        assert "m=expired" in response.headers["location"]


# -- a provider that asserts someone else's identifier -------------------------------------------


def test_assertion_from_an_endpoint_not_discovered_for_the_identifier_is_refused(
    gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client
) -> None:
    from tests.rogue_provider import rogue_provider

    victim = f"{provider.url}/id/alice"
    with rogue_provider(victim) as rogue:
        page = start_login(browser, gateway.url, f"{rogue.url}/openid")
        final = page  # the rogue answers at once, asserting the victim's identifier
        assert urlsplit(str(final.url)).path == "/login", final.text[:300]
        assert "Invalid login" in final.text
    assert browser.get(gateway.url + "/echo", follow_redirects=False).status_code == 302


# -- unreachable providers -------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def login_attempt(client: httpx.Client, gateway: RunningGateway, identifier: str) -> tuple[httpx.Response, float]:
    page = client.get(gateway.url + "/login")
    started = time.monotonic()
    response = submit(client, page, {"identifier": identifier})
    return response, time.monotonic() - started


def test_unreachable_provider_gives_a_clean_error(gateway: RunningGateway, browser: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    response, elapsed = login_attempt(browser, gateway, f"http://127.0.0.1:{dead_port}/id/x")
    assert response.status_code == 400
    assert "Could not find an OpenID provider" in response.text
    assert elapsed < 10


def test_provider_that_never_answers_gives_a_clean_error_within_the_timeout(
    gateway: RunningGateway, browser: httpx.Client, silent_server: int
) -> None:
    response, elapsed = login_attempt(browser, gateway, f"http://127.0.0.1:{silent_server}/id/x")
    assert response.status_code == 400
    assert "Could not find an OpenID provider" in response.text
    # read timeout is 2 s in the tests; the budget allows a few of them, never a hang
    assert elapsed < 15


# -- setup mistakes get a message that names the setting ------------------------------------------


def test_public_url_on_another_host_than_the_browser_is_named_before_the_provider(
    tmp_path: Path, upstream: UvicornThread, provider: UvicornThread, browser: httpx.Client,
    caplog: pytest.LogCaptureFixture
) -> None:
    """public_url says localhost, the browser uses 127.0.0.1: the state cookie could never come back."""
    port = free_port()
    settings = make_settings(tmp_path, port, public_url=f"http://localhost:{port}", mode="proxy",
                             upstream_url=upstream.url)
    with UvicornThread(GatewayApp(settings), port=port) as server:
        page = browser.get(server.url + "/login")
        response = submit(browser, page, {"identifier": f"{provider.url}/id/alice"})
    assert response.status_code == 400 and response.url.host == "127.0.0.1", response.text[:300]
    assert MESSAGES["wrong-host"][1] in html.unescape(response.text)
    assert f"public_url is http://localhost:{port}" in caplog.text
    assert "state" not in "".join(browser.cookies.keys())  # no round trip was started


def test_callback_on_another_host_than_public_url_is_named(
    gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy that rewrites Host: the callback arrives for a host the state cookie was not set for."""
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    with httpx.Client() as elsewhere:
        response = elsewhere.get(url, headers={"Host": f"localhost:{gateway.server.port}"}, follow_redirects=False)
    assert_refused(response)
    assert "m=wrong-host" in response.headers["location"]
    assert f"not to public_url {gateway.settings.public_url}" in caplog.text


def test_callback_without_any_state_cookie_names_public_url_in_the_log(
    gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = intercept_callback(browser, gateway, f"{provider.url}/id/alice")
    with httpx.Client() as cookieless:
        response = no_follow(cookieless, url)
        assert_refused(response)
        page = cookieless.get(gateway.url + response.headers["location"])
    assert MESSAGES["expired"][1] in html.unescape(page.text)
    assert "no gw_state_* cookie came back" in caplog.text
    assert f"an address other than public_url ({gateway.settings.public_url}" in caplog.text


def test_provider_on_a_private_address_names_allow_private_addresses(
    gateway_factory: GatewayFactory, provider: UvicornThread, browser: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = gateway_factory(allow_private_addresses=False)
    response, _ = login_attempt(browser, gateway, f"{provider.url}/id/alice")
    assert response.status_code == 400
    assert MESSAGES["private-address"][1] in html.unescape(response.text)
    assert "allow_private_addresses" in response.text  # a hint for the operator, not the address itself
    assert "127.0.0.1 refused: 127.0.0.1 is a private address; set allow_private_addresses = true to allow it" \
        in caplog.text
