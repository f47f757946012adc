"""OpenID Connect sign-in end to end: the gateway and the development OIDC provider, each under uvicorn.

Every attack the provider can stage (``POST /_dev/misbehave``) is played against the
gateway's callback and must end on the login page with no session.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from starlette.datastructures import Secret

from devtools.oidc_provider import Client, create_app
from gateway.app import GatewayApp
from gateway.settings import Provider
from gateway.signin.oidc.exchange import user_id
from tests.conftest import RunningGateway, make_settings
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import forms, submit
from tests.pages.test_login_callback import cookie_header, history_cookies, whoami
from tests.servers import UvicornThread, free_port

CLIENT_ID = "gateway"
SECRET = "gateway-oidc-secret"
NAME = "Local OpenID Connect"


@dataclasses.dataclass
class OIDCSetup:
    op_url: str
    gateway: RunningGateway
    http: httpx.Client

    def misbehave(self, mode: str) -> None:
        assert self.http.post(f"{self.op_url}/_dev/misbehave", json={"mode": mode}).json()["mode"] == mode


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, upstream: UvicornThread) -> Iterator[OIDCSetup]:
    """A gateway with one oidc provider button, and that provider with the gateway registered as a client."""
    op_port, gateway_port = free_port(), free_port()
    op_url = f"http://127.0.0.1:{op_port}"
    callback = f"http://127.0.0.1:{gateway_port}/_gateway/callback"
    op_app = create_app(op_url, [Client(CLIENT_ID, SECRET, (callback,))])
    provider = Provider(NAME, op_url, "oidc", CLIENT_ID, Secret(SECRET), groups_claim="groups")
    settings = make_settings(tmp_path_factory.mktemp("oidc"), gateway_port, mode="proxy", upstream_url=upstream.url,
                             providers=(provider,), login_rate_limit=1000, failure_rate_limit=1000)
    app = GatewayApp(settings)
    with (UvicornThread(op_app, port=op_port), UvicornThread(app, port=gateway_port) as server,
          httpx.Client(trust_env=False, timeout=10) as http):
        yield OIDCSetup(op_url, RunningGateway(server, app, settings), http)


@pytest.fixture
def oidc(setup: OIDCSetup) -> Iterator[OIDCSetup]:
    setup.misbehave("none")
    yield setup
    setup.misbehave("none")


def to_consent(browser: httpx.Client, setup: OIDCSetup, *, remember: bool = False,
               next_target: str | None = None) -> httpx.Response:
    """The login page's provider button, up to the provider's consent page."""
    page = browser.get(f"{setup.gateway.url}/login", params={"next": next_target} if next_target else None)
    assert page.status_code == 200
    consent = submit(browser, page, button=("provider", setup.op_url), check=("remember",) if remember else ())
    assert consent.status_code == 200 and consent.url.port != setup.gateway.server.port
    return consent


def sign_in(browser: httpx.Client, setup: OIDCSetup, **kwargs: object) -> httpx.Response:
    consent = to_consent(browser, setup, **kwargs)  # type: ignore[arg-type]
    return decide(browser, consent)


def refused(final: httpx.Response, setup: OIDCSetup, message: str = "invalid") -> None:
    """The sign-in ended on the login page with ``message`` and no session."""
    assert final.status_code == 200, final.text[:500]
    assert final.url.path == "/login" and final.url.params.get("m") == message, final.url
    assert history_cookies(final, setup.gateway.settings.session_cookie) == []
    with httpx.Client(cookies=final.cookies, timeout=10) as same_browser:
        assert same_browser.get(setup.gateway.url + "/echo").status_code == 302


# -- the happy paths -------------------------------------------------------------------------


def test_sign_in_gives_the_app_issuer_and_sub_verified_email_and_groups(oidc: OIDCSetup,
                                                                       browser: httpx.Client) -> None:
    final = sign_in(browser, oidc, next_target="/echo/after?x=1")
    assert final.status_code == 200 and final.url.path == "/echo/after" and final.url.query == b"x=1"
    me = whoami(browser, oidc.gateway)
    assert me["user"].startswith(oidc.op_url + "#") and me["user"] == user_id(oidc.op_url, me["user"].split("#", 1)[1])
    assert me["nickname"] == "alice" and me["email"] == "alice@example.test"
    headers = dict(browser.get(oidc.gateway.url + "/echo").json()["headers"])
    assert headers["x-gateway-groups"] == "admins,staff"  # the provider's groups claim, kept in the session


def test_the_same_person_gets_the_same_user_id(oidc: OIDCSetup) -> None:
    users = []
    for _ in range(2):
        with httpx.Client(follow_redirects=True, timeout=15) as browser:
            sign_in(browser, oidc)
            users.append(whoami(browser, oidc.gateway)["user"])
    assert users[0] == users[1]


def test_remember_me_restores_the_oidc_identity(oidc: OIDCSetup, browser: httpx.Client) -> None:
    final = sign_in(browser, oidc, remember=True)
    [remember] = history_cookies(final, oidc.gateway.settings.remember_cookie)
    user = whoami(browser, oidc.gateway)["user"]
    with httpx.Client(follow_redirects=True, timeout=15) as restarted:
        restarted.cookies.set(oidc.gateway.settings.remember_cookie, remember.split(";", 1)[0].split("=", 1)[1])
        assert whoami(restarted, oidc.gateway)["user"] == user


def test_login_page_shows_the_button_and_hides_the_identifier_field_when_every_provider_is_oidc(
        oidc: OIDCSetup) -> None:
    page = oidc.http.get(oidc.gateway.url + "/login")
    assert f'value="{oidc.op_url}"' in page.text and NAME in page.text
    assert 'name="identifier"' not in page.text


def test_the_authorization_request_uses_pkce_s256_state_and_nonce(oidc: OIDCSetup, browser: httpx.Client) -> None:
    page = browser.get(f"{oidc.gateway.url}/login")
    with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
        start = no_follow.post(oidc.gateway.url + "/login",
                               data={**dict(forms(page.text)[0].fields), "provider": oidc.op_url})
    assert start.status_code in (302, 303)
    query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["redirect_uri"] == oidc.gateway.url + "/_gateway/callback"
    assert "gw_state_" + query["state"] in cookie_header(start, "gw_state_" + query["state"])


# -- every attack fails closed --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["wrong-aud", "wrong-iss", "wrong-nonce", "no-nonce", "expired", "issued-in-future",
                                  "alg-none", "unknown-kid", "hs256-public-key", "bad-signature",
                                  "no-iss-param", "wrong-iss-param"])
def test_a_bad_answer_is_refused(oidc: OIDCSetup, browser: httpx.Client, mode: str) -> None:
    consent = to_consent(browser, oidc)
    oidc.misbehave(mode)
    refused(decide(browser, consent), oidc)


@pytest.mark.parametrize("mode", ["several-aud-no-azp", "azp-other"])
def test_an_id_token_whose_azp_is_missing_among_several_audiences_or_names_another_client_is_refused(
        oidc: OIDCSetup, browser: httpx.Client, mode: str) -> None:
    """Core §3.1.3.7 items 4-5: a token issued to (or shared with) another client is that client's, not ours."""
    consent = to_consent(browser, oidc)
    oidc.misbehave(mode)
    refused(decide(browser, consent), oidc)


def test_an_id_token_for_several_audiences_whose_azp_is_us_is_accepted(oidc: OIDCSetup,
                                                                        browser: httpx.Client) -> None:
    consent = to_consent(browser, oidc)
    oidc.misbehave("several-aud")
    final = decide(browser, consent)
    assert final.url.path == "/" and not final.url.params.get("m"), final.url
    assert whoami(browser, oidc.gateway)["nickname"] == "alice"


def test_an_id_token_without_exp_is_refused(oidc: OIDCSetup, browser: httpx.Client) -> None:
    """Core §2: exp is REQUIRED; a token that never expires would be a credential forever."""
    consent = to_consent(browser, oidc)
    oidc.misbehave("no-exp")
    refused(decide(browser, consent), oidc)


def test_an_unknown_kid_is_refused_even_after_the_key_set_is_fetched_again(oidc: OIDCSetup,
                                                                          browser: httpx.Client) -> None:
    metadata = oidc.gateway.app.runtime.oidc.metadata[NAME]
    metadata.refetch_interval = 0  # as if the cached key set were old enough to refetch
    try:
        consent = to_consent(browser, oidc)
        oidc.misbehave("unknown-kid")
        before = metadata.last_key_fetch
        refused(decide(browser, consent), oidc)
        assert metadata.last_key_fetch > before  # it did look again
    finally:
        metadata.refetch_interval = 60


def test_a_rotated_key_is_fetched_and_accepted(oidc: OIDCSetup, browser: httpx.Client) -> None:
    metadata = oidc.gateway.app.runtime.oidc.metadata[NAME]
    sign_in(browser, oidc)  # the key set is cached
    assert oidc.http.post(oidc.op_url + "/_dev/rotate").status_code == 200
    metadata.refetch_interval = 0
    try:
        with httpx.Client(follow_redirects=True, timeout=15) as other:
            final = sign_in(other, oidc)
            assert final.url.path == "/" and not final.url.params.get("m"), final.url
            assert whoami(other, oidc.gateway)["nickname"] == "alice"
    finally:
        metadata.refetch_interval = 60


def test_unverified_email_is_not_passed_on(oidc: OIDCSetup, browser: httpx.Client) -> None:
    oidc.misbehave("email-unverified")
    sign_in(browser, oidc)
    me = whoami(browser, oidc.gateway)
    assert me["email"] == "" and me["nickname"] == "alice"


def test_cancel_at_the_provider_is_a_clear_message(oidc: OIDCSetup, browser: httpx.Client) -> None:
    refused(decide(browser, to_consent(browser, oidc), "deny"), oidc, "cancelled")


def answer_url(browser: httpx.Client, consent: httpx.Response) -> str:
    """The provider's redirect to our callback, not followed."""
    with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
        values = {**dict(forms(consent.text)[0].fields), "username": "alice", "email": "alice@example.test",
                  "groups": "staff", "decision": "allow"}
        answer = no_follow.post(str(consent.url.join(forms(consent.text)[0].action)), data=values)
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["location"]


def test_a_replayed_answer_is_refused_even_with_the_state_cookie(oidc: OIDCSetup, browser: httpx.Client) -> None:
    oidc.misbehave("replay-code")  # the provider would redeem the code twice: our state must not
    consent = to_consent(browser, oidc)
    location = answer_url(browser, consent)
    state_cookies = {k: v for k, v in browser.cookies.items() if k.startswith("gw_state_")}
    assert browser.get(location).url.path == "/"
    with httpx.Client(cookies=state_cookies, follow_redirects=True, timeout=15) as attacker:
        refused(attacker.get(location), oidc, "expired")


def test_an_answer_opened_in_another_browser_is_refused(oidc: OIDCSetup, browser: httpx.Client) -> None:
    location = answer_url(browser, to_consent(browser, oidc))
    with httpx.Client(follow_redirects=True, timeout=15) as victim:  # login CSRF: no state cookie
        refused(victim.get(location), oidc, "expired")
    assert browser.get(location).url.path == "/"  # the one who started it can still finish


def test_a_state_that_does_not_match_the_cookie_is_refused(oidc: OIDCSetup, browser: httpx.Client) -> None:
    location = answer_url(browser, to_consent(browser, oidc))
    query = dict(parse_qsl(urlsplit(location).query))
    forged = location.split("?", 1)[0] + "?" + urlencode({**query, "state": "x" + query["state"]})
    refused(browser.get(forged), oidc, "expired")


def test_an_openid2_answer_cannot_finish_an_oidc_sign_in(oidc: OIDCSetup, browser: httpx.Client) -> None:
    location = answer_url(browser, to_consent(browser, oidc))
    query = dict(parse_qsl(urlsplit(location).query))
    forged = location.split("?", 1)[0] + "?" + urlencode({"gw_state": query["state"], "openid.mode": "id_res"})
    refused(browser.get(forged), oidc)


def test_provider_down_at_the_start_is_a_clear_page(tmp_path: Path, upstream: UvicornThread) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    provider = Provider("Gone", dead, "oidc", CLIENT_ID, Secret(SECRET))
    settings = make_settings(tmp_path, port, mode="proxy", upstream_url=upstream.url, providers=(provider,))
    with UvicornThread(GatewayApp(settings), port=port) as server, httpx.Client(timeout=15) as browser:
        page = browser.get(server.url + "/login")
        response = submit(browser, page, button=("provider", dead))
        assert response.status_code == 502 and "did not answer" in response.text


def test_providers_come_from_the_environment_as_json(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    secret_file.chmod(0o600)  # the gateway refuses a secret file other users may read
    providers = [{"name": "Steam", "identifier": "https://steamcommunity.com/openid"},
                 {"type": "oidc", "name": "Keycloak", "issuer": "https://sso.example/realms/x", "client_id": "gw",
                  "client_secret_file": str(secret_file), "groups_claim": "roles"},
                 {"type": "oidc", "preset": "microsoft", "tenant": "contoso.onmicrosoft.com", "client_id": "a",
                  "client_secret": "b"}]
    settings = make_settings(tmp_path, 8080)
    from gateway.settings import load_settings
    env = {"GATEWAY_DEV_MODE": "true", "GATEWAY_PROVIDERS": json.dumps(providers),
           "GATEWAY_STATE_DIR": str(settings.state_dir)}
    loaded = load_settings(None, env).providers
    assert [(p.type, p.name, p.issuer) for p in loaded] == [
        ("openid2", "Steam", "https://steamcommunity.com/openid"),
        ("oidc", "Keycloak", "https://sso.example/realms/x"),
        ("oidc", "Microsoft", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")]
    assert str(loaded[1].client_secret) == "from-a-file" and loaded[1].groups_claim == "roles"


def test_check_config_prints_the_redirect_uri_and_reports_a_bad_oidc_provider_in_one_line(tmp_path: Path) -> None:
    from tests.cli.test_main import KEYS, config, run
    good = KEYS + ('providers = [{ type = "oidc", preset = "gitlab", client_id = "gw", client_secret = "hush" }]\n')
    result = run("check-config", "--config", config(tmp_path, good))
    assert result.returncode == 0, result.stderr
    assert "register with OpenID Connect providers: https://a.example/_gateway/callback" in result.stdout
    bad = KEYS + ('providers = [{ type = "oidc", name = "SSO", issuer = "https://sso.example/#x", client_id = "gw",'
                  ' client_secret = "hush" }]\n')
    result = run("check-config", "--config", config(tmp_path, bad))
    assert result.returncode != 0 and "issuer must be an http(s) URL without query or fragment" in result.stderr
    assert "hush" not in result.stderr + result.stdout


def test_a_form_post_answer_is_accepted(oidc: OIDCSetup, browser: httpx.Client) -> None:
    location = answer_url(browser, to_consent(browser, oidc))
    final = browser.post(location.split("?", 1)[0], data=dict(parse_qsl(urlsplit(location).query)))
    assert final.url.path == "/" and not final.url.params.get("m")
    assert whoami(browser, oidc.gateway)["nickname"] == "alice"


def test_too_many_groups_refuse_the_sign_in_rather_than_drop_some(oidc: OIDCSetup, browser: httpx.Client) -> None:
    consent = to_consent(browser, oidc)
    many = ", ".join(f"group{n}" for n in range(31))
    refused(decide(browser, consent, groups=many), oidc, "too-many-groups")


def test_jwks_refetches_for_an_unknown_kid_are_rate_limited(oidc: OIDCSetup, browser: httpx.Client) -> None:
    metadata = oidc.gateway.app.runtime.oidc.metadata[NAME]
    metadata.refetch_interval = 0
    assert metadata.refetch_keys() is not None  # fetched just now: the next refetch is due only in a minute
    metadata.refetch_interval = 60
    before = metadata.last_key_fetch
    consent = to_consent(browser, oidc)
    oidc.misbehave("unknown-kid")
    refused(decide(browser, consent), oidc)
    assert metadata.last_key_fetch == before


def test_a_discovery_document_naming_another_issuer_is_refused(tmp_path: Path, setup: OIDCSetup,
                                                               upstream: UvicornThread) -> None:
    """The configured issuer with a trailing slash: the provider's document names the issuer without it."""
    port = free_port()
    claimed = setup.op_url + "/"
    provider = Provider("Slash", claimed, "oidc", CLIENT_ID, Secret(SECRET))
    settings = make_settings(tmp_path, port, mode="proxy", upstream_url=upstream.url, providers=(provider,))
    with UvicornThread(GatewayApp(settings), port=port) as server, httpx.Client(timeout=15) as browser:
        page = browser.get(server.url + "/login")
        response = submit(browser, page, button=("provider", claimed))
        assert response.status_code == 502 and "not in a way this site can use" in response.text
