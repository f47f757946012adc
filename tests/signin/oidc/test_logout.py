"""OpenID Connect logout end to end with the development provider, over real servers.

Back-channel: two gateway workers share one store (two apps, one SQLite file): the
provider tells worker A, and the browser's next request to worker B must be refused
within the revocation refresh. Every broken logout token the provider can send is
refused with a 400 and signs nobody out; a replayed token too.

RP-initiated: ``/logout`` ends the session here, then at the provider
(``end_session_endpoint`` with ``id_token_hint``), which sends the person back to our
login page — only for a provider set to ``logout_at_provider``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from devtools.oidc_provider.state import User
from devtools.stack import MODES, Stack
from gateway.app import GatewayApp
from gateway.settings import Provider
from gateway.signin.logout_return import MAX_AGE, LogoutReturn
from gateway.signin.oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT
from tests.conftest import GatewayFactory, RunningGateway, make_settings
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import forms, submit
from tests.pages.test_login_callback import whoami
from tests.servers import UvicornThread, free_port
from tests.signin_steps import sign_in as openid2_sign_in
from tests.stack_fixtures import ECHO_APP, echo_stack_fixture, start_stack  # noqa: F401

CLIENT_ID = "gateway"
SECRET = "gateway-oidc-secret"
NAME = "Local OpenID Connect"
BACKCHANNEL = "/_gateway/backchannel-logout"
DEADLINE = 10.0  # seconds: far above the revocation refresh (0.2 s in these settings)
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@dataclasses.dataclass
class LogoutSetup:
    op_url: str
    op_app: object
    gateway: RunningGateway  # worker A: the provider's back-channel logout goes here
    other: RunningGateway  # worker B: the same store, another process's memory
    plain: RunningGateway  # a gateway whose provider is not set to logout_at_provider
    http: httpx.Client

    def misbehave(self, mode: str) -> None:
        assert self.http.post(f"{self.op_url}/_dev/misbehave", json={"mode": mode}).json()["mode"] == mode

    def backchannel(self, username: str) -> list[int | None]:
        """Ask the provider to log ``username`` out; the statuses the gateway answered its logout tokens."""
        answer = self.http.post(f"{self.op_url}/_dev/backchannel-logout", json={"username": username})
        assert answer.status_code == 200, answer.text
        return [delivery["status"] for delivery in answer.json()["deliveries"]]

    def logout_token(self, username: str, sid: str | None = None) -> str:
        """A well-formed logout token, minted by the provider's own signer (to send it twice)."""
        provider = self.op_app.state.provider  # type: ignore[attr-defined]
        client = provider.clients.get(CLIENT_ID)
        return str(provider.signer.logout_token(self.op_url, client, User(username, username, None, False, ()), sid))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, upstream: UvicornThread) -> Iterator[LogoutSetup]:
    op_port, gateway_port, other_port, plain_port = free_port(), free_port(), free_port(), free_port()
    op_url = f"http://127.0.0.1:{op_port}"
    gateway_url, plain_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{plain_port}"
    client = Client(CLIENT_ID, SECRET, (gateway_url + "/_gateway/callback",),
                    (gateway_url + "/login?m=signed-out",), gateway_url + BACKCHANNEL)
    plain_client = Client("plain", SECRET, (plain_url + "/_gateway/callback",), (plain_url + "/login?m=signed-out",))
    op_app = create_app(op_url, [client, plain_client])
    provider = Provider(NAME, op_url, "oidc", CLIENT_ID, Secret(SECRET), groups_claim="groups",
                        logout_at_provider=True)
    settings = make_settings(tmp_path_factory.mktemp("oidc-logout"), gateway_port, mode="proxy",
                             upstream_url=upstream.url, providers=(provider,), login_rate_limit=1000,
                             failure_rate_limit=1000)
    plain_settings = make_settings(tmp_path_factory.mktemp("oidc-plain"), plain_port, mode="proxy",
                                   upstream_url=upstream.url, login_rate_limit=1000, failure_rate_limit=1000,
                                   providers=(dataclasses.replace(provider, client_id="plain",
                                                                  logout_at_provider=False),))
    app, other_app, plain_app = GatewayApp(settings), GatewayApp(settings), GatewayApp(plain_settings)
    with (UvicornThread(op_app, port=op_port), UvicornThread(app, port=gateway_port) as server,
          UvicornThread(other_app, port=other_port) as other_server,
          UvicornThread(plain_app, port=plain_port) as plain_server,
          httpx.Client(trust_env=False, timeout=10) as http):
        yield LogoutSetup(op_url, op_app, RunningGateway(server, app, settings),
                          RunningGateway(other_server, other_app, settings),
                          RunningGateway(plain_server, plain_app, plain_settings), http)


@pytest.fixture
def oidc(setup: LogoutSetup) -> Iterator[LogoutSetup]:
    setup.misbehave("none")
    yield setup
    setup.misbehave("none")


def sign_in(browser: httpx.Client, setup: LogoutSetup, username: str = "alice",
            gateway: RunningGateway | None = None) -> None:
    gateway = gateway or setup.gateway
    page = browser.get(f"{gateway.url}/login", params={"next": "/echo"})
    consent = submit(browser, page, button=("provider", setup.op_url))
    final = decide(browser, consent, username=username)
    assert final.status_code == 200 and final.url.port == gateway.server.port, final.text[:300]
    if gateway is setup.gateway:
        assert whoami(browser, setup.other)["nickname"] == username  # worker B knows the session too


def refused_within_deadline(browser: httpx.Client, gateway: RunningGateway) -> None:
    deadline = time.monotonic() + DEADLINE
    with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
        while True:
            status = no_follow.get(gateway.url + "/echo").status_code
            if status == 302:
                return
            assert status == 200 and time.monotonic() < deadline, f"still signed in after {DEADLINE}s ({status})"
            time.sleep(0.05)


def test_backchannel_logout_signs_the_browser_out_in_every_worker(oidc: LogoutSetup) -> None:
    with (httpx.Client(follow_redirects=True, timeout=15) as alice,
          httpx.Client(follow_redirects=True, timeout=15) as bob):
        sign_in(alice, oidc, "alice")
        sign_in(bob, oidc, "bob")
        assert oidc.backchannel("alice") == [200]
        refused_within_deadline(alice, oidc.other)
        refused_within_deadline(alice, oidc.gateway)
        assert whoami(bob, oidc.other)["nickname"] == "bob"  # only the person the provider named


def test_a_sub_only_logout_token_ends_every_session_of_that_person(oidc: LogoutSetup) -> None:
    with (httpx.Client(follow_redirects=True, timeout=15) as first,
          httpx.Client(follow_redirects=True, timeout=15) as second):
        sign_in(first, oidc, "carol")
        sign_in(second, oidc, "carol")
        answer = oidc.http.post(oidc.gateway.url + BACKCHANNEL, data={"logout_token": oidc.logout_token("carol")})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        refused_within_deadline(first, oidc.other)
        refused_within_deadline(second, oidc.other)


def test_a_replayed_logout_token_is_refused(oidc: LogoutSetup) -> None:
    token = oidc.logout_token("dave")
    assert oidc.http.post(oidc.gateway.url + BACKCHANNEL, data={"logout_token": token}).status_code == 200
    with httpx.Client(follow_redirects=True, timeout=15) as dave:
        sign_in(dave, oidc, "dave")  # a new session the replay must not end
        for worker in (oidc.gateway, oidc.other):
            replay = oidc.http.post(worker.url + BACKCHANNEL, data={"logout_token": token})
            assert replay.status_code == 400 and replay.json()["reason"] == "replayed"
        assert whoami(dave, oidc.other)["nickname"] == "dave"


@pytest.mark.parametrize("mode", ["logout-unsigned", "logout-garbage", "logout-nonce", "logout-no-event",
                                  "logout-wrong-aud"])
def test_a_broken_logout_token_is_refused_and_signs_nobody_out(oidc: LogoutSetup, mode: str) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as alice:
        sign_in(alice, oidc, "erin")
        oidc.misbehave(mode)
        assert oidc.backchannel("erin") == [400]
        assert whoami(alice, oidc.other)["nickname"] == "erin"
        assert whoami(alice, oidc.gateway)["nickname"] == "erin"


def test_a_logout_token_whose_jti_is_not_a_string_is_refused_and_signs_nobody_out(oidc: LogoutSetup) -> None:
    """Back-Channel Logout §2.4: jti is a string; a number must not be recorded as one (nor fail with a 500)."""
    with httpx.Client(follow_redirects=True, timeout=15) as frank:
        sign_in(frank, oidc, "frank")
        oidc.misbehave("logout-jti-not-string")
        assert oidc.backchannel("frank") == [400]
        assert whoami(frank, oidc.other)["nickname"] == "frank"
        assert whoami(frank, oidc.gateway)["nickname"] == "frank"


@pytest.mark.parametrize("form", [{}, {"logout_token": ""}, {"logout_token": "a.b.c"}, {"other": "x"}])
def test_a_request_without_a_usable_token_is_a_400_with_a_reason_code(oidc: LogoutSetup,
                                                                       form: dict[str, str]) -> None:
    answer = oidc.http.post(oidc.gateway.url + BACKCHANNEL, data=form)
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_request", "reason": "malformed"}


def test_a_logout_token_from_an_unconfigured_issuer_is_refused(oidc: LogoutSetup) -> None:
    token = oidc.logout_token("alice")
    provider = oidc.op_app.state.provider  # type: ignore[attr-defined]
    forged = provider.signer.logout_token("https://elsewhere.invalid", provider.clients.get(CLIENT_ID),
                                          User("alice", "alice", None, False, ()), None)
    assert token != forged
    answer = oidc.http.post(oidc.gateway.url + BACKCHANNEL, data={"logout_token": forged})
    assert answer.status_code == 400 and answer.json()["reason"] == "unknown-issuer"


def provider_sessions(setup: LogoutSetup, username: str) -> list[str]:
    provider = setup.op_app.state.provider  # type: ignore[attr-defined]
    return [sid for sid, session in provider.sessions.values() if session.user.username == username]


def logout_at_once(browser: httpx.Client, gateway: RunningGateway) -> httpx.Response:
    """``/logout`` as the person's own navigation (signs out without a confirmation page); not followed."""
    with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
        return no_follow.get(gateway.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"})


def test_rp_initiated_logout_ends_the_session_here_and_at_the_provider(oidc: LogoutSetup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as frank:
        sign_in(frank, oidc, "frank")
        assert len(provider_sessions(oidc, "frank")) == 1
        leave = logout_at_once(frank, oidc.gateway)
        assert leave.status_code == 303
        location = urlsplit(leave.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == oidc.op_url + "/logout"
        query = dict(parse_qsl(location.query))
        assert query["post_logout_redirect_uri"] == oidc.gateway.url + "/login?m=signed-out"
        assert query["client_id"] == CLIENT_ID
        payload = query["id_token_hint"].split(".")[1]
        hint = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert hint["aud"] in (CLIENT_ID, [CLIENT_ID]) and hint["sid"] and hint["iss"] == oidc.op_url
        assert "id_token" not in " ".join(leave.headers.get_list("set-cookie"))  # server-side only
        refused_within_deadline(frank, oidc.gateway)  # ended here before the browser leaves
        landed = frank.get(leave.headers["location"])
        assert landed.status_code == 200 and landed.url.port == oidc.gateway.server.port
        assert landed.url.path == "/login" and landed.url.params.get("m") == "signed-out"
        assert provider_sessions(oidc, "frank") == []


def test_without_logout_at_provider_logout_stays_here(oidc: LogoutSetup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as grace:
        sign_in(grace, oidc, "grace", oidc.plain)
        leave = logout_at_once(grace, oidc.plain)
        assert leave.status_code == 303 and leave.headers["location"] == "/login?m=signed-out"
        assert len(provider_sessions(oidc, "grace")) == 1
        refused_within_deadline(grace, oidc.plain)


def test_logout_at_provider_is_parsed_and_check_config_prints_the_logout_uris(tmp_path: Path) -> None:
    from tests.cli.test_main import KEYS, config, run
    table = 'providers = [{ type = "oidc", preset = "gitlab", client_id = "gw", client_secret = "hush"%s }]\n'
    result = run("check-config", "--config", config(tmp_path, KEYS + table % ", logout_at_provider = true"))
    assert result.returncode == 0, result.stderr
    assert "back-channel logout URI for OpenID Connect providers: https://a.example/_gateway/backchannel-logout" \
        in result.stdout
    assert "post-logout redirect URI (logout_at_provider): https://a.example/login?m=signed-out" in result.stdout
    result = run("check-config", "--config", config(tmp_path, KEYS + table % ""))
    assert result.returncode == 0 and "post-logout redirect URI" not in result.stdout
    result = run("check-config", "--config", config(tmp_path, KEYS + table % ', logout_at_provider = "maybe"'))
    assert result.returncode != 0 and "logout_at_provider must be true or false" in result.stderr


def claims_for(setup: LogoutSetup, username: str, **changes: object) -> dict[str, object]:
    """A good logout token's claims for ``username`` (no sid), with ``changes`` (None removes a claim)."""
    claims: dict[str, object] = {
        "iss": setup.op_url, "aud": CLIENT_ID, "iat": int(time.time()), "exp": int(time.time()) + 120,
        "jti": f"jti-{time.monotonic_ns()}", "sub": User(username, username, None, False, ()).sub,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def post_signed(setup: LogoutSetup, claims: dict[str, object]) -> httpx.Response:
    token = setup.op_app.state.provider.keys.sign(claims, "RS256", typ="logout+jwt")  # type: ignore[attr-defined]
    return setup.http.post(setup.gateway.url + BACKCHANNEL, data={"logout_token": token})


@pytest.mark.parametrize("changes", [
    {"sub": None},  # neither sid nor sub
    {"jti": None},
    {"jti": 1234567},  # a number: Back-Channel Logout §2.4 makes it a string
    {"jti": ""},  # empty: nothing to tell one token from another
    {"jti": "j" * 256},  # longer than any store key should be
    {"iat": int(time.time()) - 3600},  # an old token: its jti may be forgotten by now
    {"iat": int(time.time()) + 3600},  # issued in the future
    {"exp": int(time.time()) - 3600},  # expired
    {"iss": "https://wrong-issuer.invalid"},  # not configured: no keys to try
    {"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}},  # the event's value is a JSON object
], ids=["no-sid-no-sub", "no-jti", "jti-not-string", "jti-empty", "jti-too-long",
        "old-iat", "future-iat", "expired", "wrong-iss", "event-not-object"])
def test_a_logout_token_with_bad_claims_signs_nobody_out(oidc: LogoutSetup, changes: dict[str, object]) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as heidi:
        sign_in(heidi, oidc, "heidi")
        answer = post_signed(oidc, claims_for(oidc, "heidi", **changes))
        assert answer.status_code == 400 and answer.json()["reason"] in ("bad-claims", "unknown-issuer")
        assert whoami(heidi, oidc.other)["nickname"] == "heidi"
        assert post_signed(oidc, claims_for(oidc, "heidi")).status_code == 200  # the same, unbroken, works
        refused_within_deadline(heidi, oidc.other)


def test_a_logout_token_signed_with_another_key_is_refused(oidc: LogoutSetup) -> None:
    provider = oidc.op_app.state.provider  # type: ignore[attr-defined]
    published = provider.keys.current("RS256")
    impostor = RSAKey.generate_key(2048, parameters={"kid": published.kid, "alg": "RS256"})
    token = jwt.encode({"alg": "RS256", "kid": published.kid, "typ": "logout+jwt"}, claims_for(oidc, "ivan"),
                       impostor)
    answer = oidc.http.post(oidc.gateway.url + BACKCHANNEL, data={"logout_token": token})
    assert answer.status_code == 400 and answer.json()["reason"] == "bad-signature"
    hs256 = jwt.encode({"alg": "HS256", "kid": published.kid}, claims_for(oidc, "ivan"),
                       OctKey.import_key(json.dumps(published.as_dict(private=False)).encode()))
    answer = oidc.http.post(oidc.gateway.url + BACKCHANNEL, data={"logout_token": hs256})
    assert answer.status_code == 400 and answer.json()["reason"] == "bad-signature"


@pytest.mark.nginx
def test_backchannel_logout_through_nginx_in_both_modes(echo_stack: Stack) -> None:
    """The provider reaches ``/_gateway/backchannel-logout`` through nginx (the stack registers it there)."""
    with httpx.Client(follow_redirects=True, timeout=15) as judy, httpx.Client(timeout=10) as http:
        page = judy.get(echo_stack.url + "/echo/me")
        consent = submit(judy, page, button=("provider", echo_stack.oidc_url))
        final = decide(judy, consent, username="judy")
        assert final.status_code == 200 and final.url.path == "/echo/me", (final.url, echo_stack.logs())
        answer = http.post(echo_stack.oidc_url + "/_dev/backchannel-logout", json={"username": "judy"})
        assert [d["status"] for d in answer.json()["deliveries"]] == [200], (answer.text, echo_stack.logs())
        deadline = time.monotonic() + DEADLINE
        while judy.get(echo_stack.url + "/echo/me").url.path != "/login":
            assert time.monotonic() < deadline, "still signed in through nginx"
            time.sleep(0.05)


def test_refused_logout_tokens_are_rate_limited_per_client(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(failure_rate_limit=3)
    with httpx.Client(trust_env=False, timeout=10) as http:
        statuses = [http.post(gateway.url + BACKCHANNEL, data={"logout_token": "garbage"}).status_code
                    for _ in range(6)]
    assert statuses[0] == 400 and statuses[-1] == 429 and set(statuses) == {400, 429}


def test_a_backchannel_sign_out_is_logged_and_emits_an_event(oidc: LogoutSetup,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as kim:
        sign_in(kim, oidc, "kim")
        caplog.set_level(logging.INFO)
        assert post_signed(oidc, claims_for(oidc, "kim")).status_code == 200
        user = f"{oidc.op_url}#{User('kim', 'kim', None, False, ()).sub}"
        assert any("back-channel logout" in r.getMessage() and user in r.getMessage() for r in caplog.records)
        assert any(r.name == "gateway.audit" and "signed_out" in r.getMessage() and user in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]


# -- next through the provider's end-session endpoint (the RP-initiated logout's signed state) -----------


def login_next(page: httpx.Response) -> str:
    """The ``next`` the login page's form carries (``/`` on the plain login page)."""
    return dict(forms(page.text)[0].fields)["next"]


def logout_return(gateway: RunningGateway, clock: Callable[[], float] = time.time) -> LogoutReturn:
    """The gateway's own signer (its secret keys): what only the gateway can make."""
    return LogoutReturn(gateway.settings.secret_key_values(), clock)


def test_next_survives_the_logout_at_the_provider(oidc: LogoutSetup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as lena:
        sign_in(lena, oidc, "lena")
        with httpx.Client(cookies=lena.cookies, timeout=10) as no_follow:
            leave = no_follow.get(oidc.gateway.url + "/logout", params={"next": "/echo/after?x=1&y=%C3%A9"},
                                  headers={"Sec-Fetch-Site": "same-origin"})
        assert leave.status_code == 303 and leave.headers["location"].startswith(oidc.op_url + "/logout?")
        state = dict(parse_qsl(urlsplit(leave.headers["location"]).query))["state"]
        assert logout_return(oidc.gateway).next_of(state) == "/echo/after?x=1&y=%C3%A9"
        lena.cookies.clear()
        landed = lena.get(leave.headers["location"])
        # provider -> /login?m=signed-out&state=... -> the next it carries -> signed out there: the login page
        assert [r.url.path for r in landed.history] == ["/logout", "/login", "/echo/after"], landed.history
        assert landed.history[1].url.params["state"] == state
        assert landed.url.path == "/login" and login_next(landed) == "/echo/after?x=1&y=%C3%A9"
        assert provider_sessions(oidc, "lena") == []


def test_an_off_site_next_given_to_logout_never_reaches_the_state(oidc: LogoutSetup) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as mona:
        sign_in(mona, oidc, "mona")
        with httpx.Client(cookies=mona.cookies, timeout=10) as no_follow:
            leave = no_follow.get(oidc.gateway.url + "/logout", params={"next": "https://evil.example/x"},
                                  headers={"Sec-Fetch-Site": "same-origin"})
        assert leave.status_code == 303 and "evil" not in leave.headers["location"]
        # Refused at /logout, as a local logout refuses it: no state, the provider sends mona to the signed-out page.
        assert "state" not in dict(parse_qsl(urlsplit(leave.headers["location"]).query))
        mona.cookies.clear()
        landed = mona.get(leave.headers["location"])
        assert landed.url.path == "/login" and landed.url.params.get("m") == "signed-out", landed.url
        assert landed.url.port == oidc.gateway.server.port and login_next(landed) == "/"


def altered(state: str) -> str:
    """The same state with the first character of its signature changed.

    Not the last one: the last base64 character of a 20-byte signature carries
    unused bits, so some changes there decode to the very same signature.
    """
    head, _, signature = state.rpartition(".")
    first = "A" if signature[0] != "A" else "Q"
    return f"{head}.{first}{signature[1:]}"


def forged_states(gateway: RunningGateway) -> dict[str, str]:
    good = logout_return(gateway).state("/echo/after")
    return {
        "garbage": "forged",
        "altered-signature": altered(good),
        "altered-payload": logout_return(gateway).state("/echo/other").split(".")[0] + good[good.index("."):],
        "another-key": LogoutReturn(["another-secret-key-" + "x" * 32]).state("/echo/after"),
        "another-purpose": gateway.app.runtime.login_states.codec.encode("/echo/after"),  # a login-state id's signature
        "expired": logout_return(gateway, lambda: time.time() - MAX_AGE - 60).state("/echo/after"),
        "too-long": "a" * 20000,
    }


@pytest.mark.parametrize("kind", ["garbage", "altered-signature", "altered-payload", "another-key",
                                  "another-purpose", "expired", "too-long"])
def test_a_forged_or_altered_logout_state_lands_on_the_plain_login_page(
        oidc: LogoutSetup, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway.login")
    state = forged_states(oidc.gateway)[kind]
    with httpx.Client(timeout=10) as browser:
        page = browser.get(oidc.gateway.url + "/login", params={"m": "signed-out", "state": state})
    assert page.status_code == 200 and "location" not in page.headers, (page.status_code, page.headers)
    assert "You have been signed out." in page.text and login_next(page) == "/"
    assert any(r.getMessage().startswith("return from logout at the provider") and "refused" not in r.getMessage()
               for r in caplog.records), caplog.text  # the state itself refused, not the target it carries


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "/%2F%2Fevil.example"])
def test_an_off_site_next_smuggled_in_a_signed_state_is_refused(oidc: LogoutSetup, target: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Even signed with the gateway's own keys, the target is checked again on the way back."""
    caplog.set_level(logging.WARNING, "gateway.login")
    with httpx.Client(timeout=10) as browser:
        page = browser.get(oidc.gateway.url + "/login",
                           params={"m": "signed-out", "state": logout_return(oidc.gateway).state(target)})
    assert page.status_code == 200 and "location" not in page.headers, (page.status_code, page.headers)
    assert login_next(page) == "/" and "evil" not in page.text
    assert any("return from logout at the provider" in r.getMessage() and "refused" in r.getMessage()
               for r in caplog.records), caplog.text


ADMIN_RULES = {  # /echo/admin is for the OpenID 2.0 provider's "admin" only: anyone else gets the 403 page
    "GATEWAY_RULES": json.dumps([{"name": "admin-area", "paths": ["/echo/admin"], "policy": "allow",
                                  "subjects": ["group:admins"]}]),
    "GATEWAY_GROUPS": json.dumps({"admins": ["{provider}/id/admin"]}),
}


@pytest.fixture(scope="module", params=MODES)
def at_provider_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx + gateway (the echo app behind), the OpenID Connect button set to ``logout_at_provider``."""
    yield from start_stack(tmp_path_factory, request.param, ECHO_APP, ADMIN_RULES, oidc_logout_at_provider=True)


def oidc_sign_in_through(browser: httpx.Client, stack: Stack, username: str, path: str) -> None:
    consent = submit(browser, browser.get(stack.url + path), button=("provider", stack.oidc_url))
    final = decide(browser, consent, username=username)
    assert final.status_code in (200, 403) and final.url.path == urlsplit(path).path, (final.url, stack.logs())


@pytest.mark.nginx
def test_sign_in_as_someone_else_keeps_next_through_the_providers_logout(at_provider_stack: Stack) -> None:
    """The 403 page's button: out here and at the provider, back to the login page for the refused page."""
    stack = at_provider_stack
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        oidc_sign_in_through(browser, stack, "nadia", "/echo/me")
        page = browser.get(stack.url + "/echo/admin?tab=2")
        assert page.status_code == 403 and "Sign in as someone else" in page.text
        after = submit(browser, page)
        went = [f"{r.url.scheme}://{r.url.netloc.decode()}{r.url.path}" for r in after.history]
        assert stack.oidc_url + "/logout" in went, (went, stack.logs())  # the provider's end-session endpoint
        assert after.url.path == "/login" and after.url.params["next"] == "/echo/admin?tab=2", (after.url, went)
        assert not browser.cookies.get("gw_session")
        openid2_sign_in(browser, stack.url, stack.provider_identifier, "admin", next_target=after.url.params["next"])
        assert browser.get(stack.url + "/echo/admin?tab=2").status_code == 200
    with httpx.Client(follow_redirects=True, timeout=15) as browser:  # and /logout?next=... the same way
        oidc_sign_in_through(browser, stack, "nadia", "/echo/me")
        with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
            leave = no_follow.get(stack.url + "/logout", params={"next": "/echo/bye"}, headers=SAME_ORIGIN)
        assert leave.status_code == 303 and leave.headers["location"].startswith(stack.oidc_url + "/logout?")
        browser.cookies.clear()
        landed = browser.get(leave.headers["location"])  # the provider, then back through the login page
        assert landed.url.path == "/login" and landed.url.params.get("next") == "/echo/bye", landed.url


@pytest.mark.nginx
def test_a_forged_or_smuggling_logout_state_through_nginx_lands_on_the_plain_login_page(
        at_provider_stack: Stack) -> None:
    stack = at_provider_stack
    ours = LogoutReturn(stack.secret_keys)
    states = {"forged": "forged.state", "altered": altered(ours.state("/echo/me")),
              "off-site": ours.state("https://evil.example/"), "scheme-relative": ours.state("//evil.example")}
    with httpx.Client(timeout=10) as browser:
        for kind, state in states.items():
            page = browser.get(stack.url + "/login", params={"m": "signed-out", "state": state})
            assert page.status_code == 200 and "location" not in page.headers, (kind, page.status_code)
            assert login_next(page) == "/" and "You have been signed out." in page.text, kind
        good = browser.get(stack.url + "/login", params={"m": "signed-out", "state": ours.state("/echo/me")})
        assert good.status_code == 303 and good.headers["location"] == "/echo/me"  # the unforged one is followed
    log = stack.log("gateway", tail=200)
    assert log.count("return from logout at the provider") >= len(states), log
    assert "'https://evil.example/' refused" in log, log
