"""OpenID Connect logout of a remember-me sign-in whose first session is long over, end to end.

The gateway's record of a sign-in at the provider (its ``sid``/``sub``, its ID
token) used to end with the sign-in's session (``session_max_lifetime``) and
be purged: a back-channel logout the day after then found nothing, and the
remember-me cookie kept signing the browser back in for the rest of its 30
days, after the person had signed out at the provider. Here the session
lifetime is two seconds, so "the day after" comes at once: sign in with
remember-me, let the session expire, come back (the cookie restores a new
session), purge, then log out at the provider — on SQLite and on Redis. And
a browser restarted once every session of its series was over holds only the
remember-me cookie: its ``/logout`` still goes to the provider.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from gateway.app import GatewayApp
from gateway.observe.events import Event, TheftSuspected, hash_id
from gateway.settings import Provider
from gateway.store import SessionRecord
from tests.conftest import RunningGateway, make_settings
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import submit
from tests.pages.test_login_callback import whoami
from tests.servers import UvicornThread, free_port

CLIENT_ID = "gateway"
SECRET = "gateway-oidc-secret"
SESSION_LIFETIME = 2  # seconds: the sign-in's own session is over almost at once
DEADLINE = 10.0


@dataclasses.dataclass
class Setup:
    op_url: str
    gateway: RunningGateway
    http: httpx.Client

    def backchannel(self, username: str) -> list[int | None]:
        answer = self.http.post(f"{self.op_url}/_dev/backchannel-logout", json={"username": username})
        assert answer.status_code == 200, answer.text
        return [delivery["status"] for delivery in answer.json()["deliveries"]]


@pytest.fixture(params=["sqlite", "redis"])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          upstream: UvicornThread) -> Iterator[Setup]:
    store = str(request.getfixturevalue("redis_url")) if request.param == "redis" else ""
    op_port, gateway_port = free_port(), free_port()
    op_url, gateway_url = f"http://127.0.0.1:{op_port}", f"http://127.0.0.1:{gateway_port}"
    client = Client(CLIENT_ID, SECRET, (gateway_url + "/_gateway/callback",), (gateway_url + "/login?m=signed-out",),
                    gateway_url + "/_gateway/backchannel-logout")
    provider = Provider("Local OpenID Connect", op_url, "oidc", CLIENT_ID, Secret(SECRET), logout_at_provider=True)
    settings = make_settings(tmp_path_factory.mktemp("oidc-remember"), gateway_port, mode="proxy",
                             upstream_url=upstream.url, providers=(provider,), store=store,
                             session_max_lifetime=SESSION_LIFETIME, login_rate_limit=1000, failure_rate_limit=1000)
    app = GatewayApp(settings)
    with (UvicornThread(create_app(op_url, [client]), port=op_port), UvicornThread(app, port=gateway_port) as server,
          httpx.Client(trust_env=False, timeout=10) as http):
        yield Setup(op_url, RunningGateway(server, app, settings), http)


def remembered(browser: httpx.Client, setup: Setup, username: str) -> SessionRecord:
    """Sign in with remember-me and outlive the session; the session's record."""
    gateway = setup.gateway
    page = browser.get(gateway.url + "/login", params={"next": "/echo"})
    consent = submit(browser, page, button=("provider", setup.op_url), check=("remember",))
    assert decide(browser, consent, username=username).status_code == 200
    user = whoami(browser, gateway)["user"]
    store = gateway.app.runtime.store
    [first] = store.list_sessions(user, time.time())
    assert first.series_id is not None and store.get_provider_session(first.session_id) is not None
    deadline = time.monotonic() + DEADLINE
    while time.time() <= first.expires:  # wait for the session's end (the clock is the thing waited for)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return first


def remembered_then_restored(browser: httpx.Client, setup: Setup, username: str) -> str:
    """Sign in with remember-me, outlive the session, come back restored, purge; the user id."""
    gateway = setup.gateway
    first = remembered(browser, setup, username)
    user = first.user_id
    store = gateway.app.runtime.store
    assert whoami(browser, gateway)["user"] == user  # the remember-me cookie signed the browser back in
    [restored] = store.list_sessions(user, time.time())
    assert restored.session_id != first.session_id and restored.series_id == first.series_id
    store.purge_expired(time.time())  # the first session is gone from the store now
    return user


def remember_cookie_only(browser: httpx.Client, setup: Setup) -> httpx.Client:
    """A browser restarted: the remember-me cookie only."""
    name = setup.gateway.settings.remember_cookie
    value = browser.cookies.get(name)
    assert value, "no remember-me cookie"
    return httpx.Client(follow_redirects=True, timeout=15, cookies={name: value})


def test_backchannel_logout_ends_remember_me_after_the_first_session_was_purged(setup: Setup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        remembered_then_restored(browser, setup, "rita")
        assert setup.backchannel("rita") == [200]
        with remember_cookie_only(browser, setup) as restarted:
            landed = restarted.get(setup.gateway.url + "/echo")
        assert landed.url.path == "/login", f"the remember-me cookie still signs in ({landed.url})"
        deadline = time.monotonic() + DEADLINE
        while (answer := browser.get(setup.gateway.url + "/echo")).url.path != "/login":  # the restored session
            assert answer.status_code == 200 and time.monotonic() < deadline, "still signed in"
            time.sleep(0.05)


def test_rp_initiated_logout_finds_the_id_token_after_the_first_session_was_purged(setup: Setup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        remembered_then_restored(browser, setup, "sam")
        with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
            leave = no_follow.get(setup.gateway.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert leave.status_code == 303
        location = urlsplit(leave.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == setup.op_url + "/logout", location
        assert dict(parse_qsl(location.query))["id_token_hint"].count(".") == 2


def test_rp_initiated_logout_with_only_the_remember_me_cookie_after_every_session_was_purged(setup: Setup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        first = remembered(browser, setup, "tess")
        store = setup.gateway.app.runtime.store
        login = store.get_provider_session(first.session_id)
        assert login is not None and first.series_id is not None
        store.purge_expired(time.time())
        assert store.list_sessions(first.user_id, time.time()) == []  # no session of the series is left
        with remember_cookie_only(browser, setup) as restarted:
            leave = restarted.get(setup.gateway.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"},
                                  follow_redirects=False)
    assert leave.status_code == 303
    location = urlsplit(leave.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == setup.op_url + "/logout", \
        f"signed out here only ({leave.headers['location']})"
    assert dict(parse_qsl(location.query))["id_token_hint"] == login.id_token
    series = store.get_series(first.series_id)
    assert series is not None and series.revoked_at is not None  # and the series ended here


def test_a_stale_remember_me_cookie_at_logout_is_theft_and_gets_no_id_token(setup: Setup) -> None:
    """A copy of the cookie taken before its browser came back twice (each return rotates the token) is not
    that browser's any more: sent to /logout it must not get the person's ID token in the provider's logout
    URL (id_token_hint). It is theft evidence, as at restore: the series ends, the owner signs in again."""
    gateway, name = setup.gateway, setup.gateway.settings.remember_cookie
    store = gateway.app.runtime.store
    heard: list[Event] = []
    gateway.app.runtime.events.subscribe(heard.append)
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        first = remembered(browser, setup, "ursula")
        stolen = browser.cookies.get(name)
        assert stolen and whoami(browser, gateway)["user"] == first.user_id  # restored: rotated once
        rotated = browser.cookies.get(name)
        with remember_cookie_only(browser, setup) as restarted:  # the browser restarted: rotated again
            assert whoami(restarted, gateway)["user"] == first.user_id
            [current] = [c.value for c in restarted.cookies.jar if c.name == name and c.value != rotated]
    assert current and stolen != rotated != current
    with httpx.Client(timeout=10, cookies={name: stolen}) as thief:
        leave = thief.get(gateway.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert leave.status_code == 303
    location = leave.headers["location"]
    assert urlsplit(location).path == "/login" and "id_token_hint" not in location, f"sent on to {location}"
    assert first.series_id is not None
    series = store.get_series(first.series_id)
    assert series is not None and series.revoked_at is not None
    assert TheftSuspected(first.user_id, hash_id(first.series_id)) in heard
    with httpx.Client(follow_redirects=True, timeout=15, cookies={name: current}) as owner:
        assert owner.get(gateway.url + "/echo").url.path == "/login"  # the series is over for everyone
