"""/logout ends the whole login, over real HTTP against a running gateway (proxy mode, upstream echo app).

"The whole login": every session cookie the browser sent, the remember-me
series, and every session restored from that series on other browsers. Most
gateways here refresh their revocation list only once a minute, so what is
signed out must be signed out by the logout itself, in this process, at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.observe.events import hash_id
from gateway.store import SessionRecord
from gateway.types import Identity
from tests.conftest import GatewayFactory, RunningGateway
from tests.servers import UvicornThread
from tests.signin_steps import sign_in

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # a click on the site's own "Sign out" link
SLOW_REFRESH = 60.0  # the background refresh cannot be what signs anyone out in these tests


@pytest.fixture
def slow_gateway(gateway_factory: GatewayFactory) -> RunningGateway:
    return gateway_factory(revocation_refresh=SLOW_REFRESH)


@pytest.fixture
def clients() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with httpx.Client(follow_redirects=True, timeout=15) as laptop, \
            httpx.Client(follow_redirects=True, timeout=15) as phone:
        yield laptop, phone


def status(gateway: RunningGateway, session_cookie: str) -> int:
    """What a protected page answers to a browser holding only this session cookie (200, or 302 to login)."""
    with httpx.Client(timeout=15) as client:
        client.cookies.set(gateway.app.runtime.session_cookie_name, session_cookie)
        return client.get(gateway.url + "/echo").status_code


def wait_status(gateway: RunningGateway, session_cookie: str, expected: int, within: float = 5.0) -> int:
    """Poll until the page answers ``expected`` (a revocation made in the store reaches the cache) or time is up."""
    deadline = time.monotonic() + within
    while (answer := status(gateway, session_cookie)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def restore_on_another_device(gateway: RunningGateway, laptop: httpx.Client, phone: httpx.Client) -> str:
    """Copy the laptop's remember-me cookie to the phone and let it sign the phone in; the phone's session cookie."""
    runtime = gateway.app.runtime
    phone.cookies.set(runtime.remember_cookie_name, laptop.cookies[runtime.remember_cookie_name], domain="127.0.0.1")
    assert phone.get(gateway.url + "/login?next=/echo").status_code == 200  # restored, then on to the app
    restored = runtime.sessions.decode(phone.cookies[runtime.session_cookie_name], time.time())
    assert restored is not None and restored.series_id is not None
    return phone.cookies[runtime.session_cookie_name]


def test_logout_ends_the_sessions_restored_from_its_remember_me_series(
        slow_gateway: RunningGateway, provider: UvicornThread, clients: tuple[httpx.Client, httpx.Client]) -> None:
    gateway, (laptop, phone) = slow_gateway, clients
    sign_in(laptop, gateway.url, f"{provider.url}/id/erin", remember=True)
    laptop_session = laptop.cookies[gateway.app.runtime.session_cookie_name]
    phone_session = restore_on_another_device(gateway, laptop, phone)
    assert status(gateway, phone_session) == 200
    response = laptop.get(gateway.url + "/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 303
    assert status(gateway, laptop_session) == 302
    assert status(gateway, phone_session) == 302  # at once, not a refresh interval later


def test_logout_ends_the_series_named_by_the_session_even_without_the_remember_cookie(
        gateway: RunningGateway, provider: UvicornThread, clients: tuple[httpx.Client, httpx.Client]) -> None:
    laptop, phone = clients
    runtime = gateway.app.runtime
    sign_in(laptop, gateway.url, f"{provider.url}/id/erin", remember=True)
    phone_session = restore_on_another_device(gateway, laptop, phone)
    copied_remember = phone.cookies[runtime.remember_cookie_name]
    laptop.cookies.delete(runtime.remember_cookie_name)  # cleared by hand, or never came back
    laptop.get(gateway.url + "/logout", headers=SAME_ORIGIN)
    assert wait_status(gateway, phone_session, 302) == 302
    with httpx.Client(timeout=15) as restarted:  # the series itself is over
        restarted.cookies.set(runtime.remember_cookie_name, copied_remember)
        page = restarted.get(gateway.url + "/login")
        assert page.status_code == 200 and runtime.session_cookie_name not in restarted.cookies


def test_logout_while_the_store_is_down_revokes_in_this_process_and_says_so(
        gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client,
        caplog: pytest.LogCaptureFixture) -> None:
    runtime = gateway.app.runtime
    sign_in(browser, gateway.url, f"{provider.url}/id/erin")
    copied = browser.cookies[runtime.session_cookie_name]
    session = runtime.sessions.decode(copied, time.time())
    assert session is not None
    store_file = runtime.store.path  # type: ignore[attr-defined]
    away = store_file.with_name("away.sqlite3")
    store_file.rename(away)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.login"):
            response = browser.get(gateway.url + "/logout", headers=SAME_ORIGIN, follow_redirects=False)
    finally:
        away.rename(store_file)
    assert response.status_code == 503 and "Sign-out incomplete" in response.text
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert status(gateway, copied) == 302  # a copy of the cookie signs no one in here
    # Named by its hash, as every log line names a session: enough to correlate, useless to sign in.
    assert any(hash_id(session.session_id) in r.getMessage() and "this process only" in r.getMessage()
               and session.session_id not in r.getMessage() for r in caplog.records)


def test_a_get_logout_without_fetch_metadata_or_from_a_sibling_site_asks_first(
        gateway: RunningGateway, provider: UvicornThread, browser: httpx.Client) -> None:
    sign_in(browser, gateway.url, f"{provider.url}/id/erin")
    session = browser.cookies[gateway.app.runtime.session_cookie_name]
    for headers in ({}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "Same-Origin"}, {"Sec-Fetch-Site": "same-origin, none"}):
        page = browser.get(gateway.url + "/logout", headers=headers, follow_redirects=False)
        assert page.status_code == 200, headers
        assert 'name="csrf_token"' in page.text and "Max-Age=0" not in page.headers.get("set-cookie", "")
        assert status(gateway, session) == 200, headers
    for fetch_site in ("same-origin", "none"):  # the site's own link; typed or bookmarked
        with httpx.Client(follow_redirects=True, timeout=15) as fresh:
            sign_in(fresh, gateway.url, f"{provider.url}/id/erin")
            session = fresh.cookies[gateway.app.runtime.session_cookie_name]
            response = fresh.get(gateway.url + "/logout", headers={"Sec-Fetch-Site": fetch_site},
                                 follow_redirects=False)
            assert response.status_code == 303 and status(gateway, session) == 302


def test_logout_revokes_every_copy_of_the_session_cookie(
        slow_gateway: RunningGateway, provider: UvicornThread, clients: tuple[httpx.Client, httpx.Client]) -> None:
    """A sibling subdomain planted a second gw_session (its own valid session) next to the victim's."""
    gateway, (victim, planter) = slow_gateway, clients
    name = gateway.app.runtime.session_cookie_name
    for mine_first in (True, False):  # whichever order the browser sends them in
        sign_in(victim, gateway.url, f"{provider.url}/id/vera")
        sign_in(planter, gateway.url, f"{provider.url}/id/mallory")
        mine, planted = victim.cookies[name], planter.cookies[name]
        both = f"{name}={mine}; {name}={planted}" if mine_first else f"{name}={planted}; {name}={mine}"
        response = httpx.get(gateway.url + "/logout", follow_redirects=False, headers={**SAME_ORIGIN, "Cookie": both})
        assert response.status_code == 303
        assert status(gateway, mine) == 302 and status(gateway, planted) == 302


def test_ending_a_remembered_session_on_the_account_page_ends_the_sessions_restored_from_it(
        slow_gateway: RunningGateway, provider: UvicornThread, clients: tuple[httpx.Client, httpx.Client]) -> None:
    gateway, (laptop, phone) = slow_gateway, clients
    runtime = gateway.app.runtime
    sign_in(laptop, gateway.url, f"{provider.url}/id/erin", remember=True)
    laptop_session = runtime.sessions.decode(laptop.cookies[runtime.session_cookie_name], time.time())
    assert laptop_session is not None
    phone_session = restore_on_another_device(gateway, laptop, phone)
    with httpx.Client(follow_redirects=True, timeout=15) as desktop:
        sign_in(desktop, gateway.url, f"{provider.url}/id/erin")
        page = desktop.get(gateway.url + "/_gateway/account")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        desktop.post(gateway.url + "/_gateway/account/revoke",
                     data={"csrf_token": token, "session_id": laptop_session.session_id})
        assert desktop.get(gateway.url + "/echo", follow_redirects=False).status_code == 200
    assert status(gateway, laptop.cookies[runtime.session_cookie_name]) == 302
    assert status(gateway, phone_session) == 302  # restored from the same series: ended with it


def test_signing_out_everywhere_ends_every_device_and_series_at_once(
        slow_gateway: RunningGateway, provider: UvicornThread, clients: tuple[httpx.Client, httpx.Client]) -> None:
    gateway, (laptop, phone) = slow_gateway, clients
    runtime = gateway.app.runtime
    sign_in(laptop, gateway.url, f"{provider.url}/id/sam", remember=True)
    phone_session = restore_on_another_device(gateway, laptop, phone)
    phone_remember = [c.value for c in phone.cookies.jar if c.name == runtime.remember_cookie_name]
    page = laptop.get(gateway.url + "/_gateway/account")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    laptop.post(gateway.url + "/_gateway/account/signout-everywhere", data={"csrf_token": token})
    assert status(gateway, phone_session) == 302
    with httpx.Client(timeout=15) as restarted:
        restarted.cookies.set(runtime.remember_cookie_name, phone_remember[-1])
        assert restarted.get(gateway.url + "/login").status_code == 200
        assert runtime.session_cookie_name not in restarted.cookies


# -- __Host- cookie names ---------------------------------------------------------------------


def hand_made_session(gateway: RunningGateway) -> str:
    """A session cookie the gateway itself would issue (the https gateway cannot finish a sign-in over http)."""
    runtime = gateway.app.runtime
    now = time.time()
    runtime.store.create_session(SessionRecord("sid-host", "https://op.example/id/h", now, now + 3600))
    return runtime.sessions.encode("sid-host", Identity("https://op.example/id/h", "h", ""), now, None)


def test_on_https_without_a_cookie_domain_the_cookies_are_host_only_by_name(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_url="https://gateway.example")
    runtime = gateway.app.runtime
    assert (runtime.session_cookie_name, runtime.remember_cookie_name, runtime.csrf_cookie_name) == (
        "__Host-gw_session", "__Host-gw_remember", "__Host-gw_csrf")
    csrf = httpx.get(gateway.url + "/login").headers["set-cookie"]
    assert csrf.startswith("__Host-gw_csrf=") and "; Path=/;" in csrf and "Secure" in csrf and "Domain" not in csrf
    value = hand_made_session(gateway)
    with httpx.Client(timeout=15) as client:
        assert client.get(gateway.url + "/echo", headers={"Cookie": f"__Host-gw_session={value}"}).status_code == 200
        # The plain name is what a sibling subdomain can plant: it signs no one in.
        assert client.get(gateway.url + "/echo", headers={"Cookie": f"gw_session={value}"}).status_code == 302
        bye = client.get(gateway.url + "/logout", follow_redirects=False,
                         headers={**SAME_ORIGIN, "Cookie": f"__Host-gw_session={value}"})
        assert bye.status_code == 303
        cleared = bye.headers.get_list("set-cookie")
        assert any(c.startswith("__Host-gw_session=;") and "Max-Age=0" in c for c in cleared)
        assert client.get(gateway.url + "/echo", headers={"Cookie": f"__Host-gw_session={value}"}).status_code == 302


def test_with_a_cookie_domain_the_names_stay_plain_and_logout_clears_both_copies(
        gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(public_url="https://gateway.example", cookie_domain="gateway.example")
    runtime = gateway.app.runtime
    assert (runtime.session_cookie_name, runtime.csrf_cookie_name) == ("gw_session", "gw_csrf")
    value = hand_made_session(gateway)
    bye = httpx.get(gateway.url + "/logout", follow_redirects=False,
                    headers={**SAME_ORIGIN, "Cookie": f"gw_session={value}"})
    cleared = [c for c in bye.headers.get_list("set-cookie") if c.startswith("gw_session=;")]
    assert len(cleared) == 2 and sum("Domain=gateway.example" in c for c in cleared) == 1
