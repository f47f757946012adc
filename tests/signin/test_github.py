"""OAuth 2.0 sign-in with ``preset = "github"``: the gateway and the dev provider's GitHub-style fake, under uvicorn.

The providers are given as ``GATEWAY_PROVIDERS`` JSON, with the GitHub
Enterprise endpoint overrides pointing at the fake (``/github/login/oauth/...``
and ``/github/api/v3``). Several buttons reach the same fake; their
authorization URLs differ by a query parameter the fake ignores.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from devtools.oidc_provider import Client, create_app
from devtools.oidc_provider.github import number
from gateway.app import GatewayApp
from gateway.errors import ConfigError
from gateway.observe.events import Event, SignedIn, SignInFailed, SignInStarted
from gateway.settings import Provider, load_settings
from gateway.signin.github import user_id
from tests.conftest import PROOF_KEY, RunningGateway, make_settings
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import forms, submit
from tests.pages.test_login_callback import history_cookies, whoami
from tests.servers import UvicornThread, free_port

CLIENT_ID = "gateway"
SECRET = "gateway-github-secret"
PERSON = {"login": "octocat", "email": "octo@example.test", "verified": "yes", "orgs": "acme",
          "teams": "acme/admins, widgets/devs", "username": None, "groups": None}


def providers_from_env(entries: list[dict[str, object]], tmp: Path) -> tuple[Provider, ...]:
    """The providers the settings loader makes of ``GATEWAY_PROVIDERS``."""
    env = {"GATEWAY_PUBLIC_URL": "http://127.0.0.1:1", "GATEWAY_SECRET_KEYS": secrets.token_urlsafe(32),
           "GATEWAY_PROOF_KEY": PROOF_KEY, "GATEWAY_STATE_DIR": str(tmp), "GATEWAY_PROVIDERS": json.dumps(entries)}
    return load_settings(None, env).providers


@dataclasses.dataclass
class GitHubSetup:
    fake: str  # the fake's base URL (…/github)
    gateway: RunningGateway
    buttons: dict[str, str]  # provider name -> the login button's value
    heard: list[Event]  # the gateway's events (audit log, metrics)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, upstream: UvicornThread) -> Iterator[GitHubSetup]:
    op_port, gateway_port, closed_port = free_port(), free_port(), free_port()
    op_url = f"http://127.0.0.1:{op_port}"
    fake = op_url + "/github"
    callback = f"http://127.0.0.1:{gateway_port}/_gateway/callback"
    op_app = create_app(op_url, [Client(CLIENT_ID, SECRET, (callback,))])

    def github(name: str, flavour: str, **extra: object) -> dict[str, object]:
        return {"type": "oauth2", "preset": "github", "name": name, "client_id": CLIENT_ID, "client_secret": SECRET,
                "authorize_url": f"{fake}/login/oauth/authorize?flavour={flavour}",
                "token_url": f"{fake}/login/oauth/access_token", "api_url": f"{fake}/api/v3"} | extra

    entries = [github("GitHub", "groups", groups_from=["orgs", "teams"]), github("GitHub plain", "plain"),
               github("GitHub orgs", "orgs", groups_from="orgs"),
               github("GitHub wrong secret", "secret", client_secret="not-the-secret"),
               github("GitHub API down", "down", api_url=f"http://127.0.0.1:{closed_port}/api/v3")]
    providers = providers_from_env(entries, tmp_path_factory.mktemp("parse"))
    settings = make_settings(tmp_path_factory.mktemp("github"), gateway_port, mode="proxy",
                             upstream_url=upstream.url, providers=providers, login_rate_limit=1000,
                             failure_rate_limit=1000)
    app = GatewayApp(settings)
    heard: list[Event] = []
    app.runtime.events.subscribe(heard.append)
    with UvicornThread(op_app, port=op_port), UvicornThread(app, port=gateway_port) as server:
        yield GitHubSetup(fake, RunningGateway(server, app, settings), {p.name: p.identifier for p in providers},
                          heard)


def sign_in_events(setup: GitHubSetup) -> list[Event]:
    return [e for e in setup.heard if isinstance(e, SignInStarted | SignedIn | SignInFailed)]


def to_consent(browser: httpx.Client, setup: GitHubSetup, button: str = "GitHub",
               next_target: str | None = None) -> httpx.Response:
    page = browser.get(f"{setup.gateway.url}/login", params={"next": next_target} if next_target else None)
    assert page.status_code == 200 and button in page.text
    consent = submit(browser, page, button=("provider", setup.buttons[button]))
    assert consent.status_code == 200 and consent.url.path == "/github/login/oauth/authorize", consent.text[:300]
    return consent


def sign_in(browser: httpx.Client, setup: GitHubSetup, button: str = "GitHub", next_target: str | None = None,
            **person: str | None) -> httpx.Response:
    return decide(browser, to_consent(browser, setup, button, next_target), **(PERSON | person))


def groups_header(browser: httpx.Client, setup: GitHubSetup) -> str | None:
    headers = dict(browser.get(setup.gateway.url + "/echo").json()["headers"])
    return headers.get("x-gateway-groups")


def refused(final: httpx.Response, setup: GitHubSetup, message: str) -> None:
    """The sign-in ended on the login page with ``message`` and no session."""
    assert final.status_code == 200, final.text[:500]
    assert final.url.path == "/login" and final.url.params.get("m") == message, final.url
    assert history_cookies(final, setup.gateway.settings.session_cookie) == []
    with httpx.Client(cookies=final.cookies, timeout=10) as same_browser:
        assert same_browser.get(setup.gateway.url + "/echo").status_code == 302


# -- sign-in ---------------------------------------------------------------------------------------


def test_sign_in_lands_on_next_with_the_numeric_id_login_verified_email_and_groups(
        setup: GitHubSetup, browser: httpx.Client) -> None:
    setup.heard.clear()
    final = sign_in(browser, setup, next_target="/echo/after?x=1")
    assert final.status_code == 200 and final.url.path == "/echo/after" and final.url.query == b"x=1"
    me = whoami(browser, setup.gateway)
    assert me["user"] == user_id(setup.fake + "/api/v3", number("user", "octocat"))
    assert me["nickname"] == "octocat" and me["email"] == "octo@example.test"
    assert groups_header(browser, setup) == "acme,acme/admins,widgets,widgets/devs"
    assert sign_in_events(setup) == [SignInStarted("GitHub", "127.0.0.1"),
                                     SignedIn("GitHub", me["user"], "127.0.0.1", False)]


def test_the_authorization_request_has_state_pkce_s256_and_asks_read_org_only_for_groups(
        setup: GitHubSetup, browser: httpx.Client) -> None:
    for button, scope in (("GitHub", "read:user user:email read:org"), ("GitHub plain", "read:user user:email")):
        page = browser.get(f"{setup.gateway.url}/login")
        with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
            start = no_follow.post(setup.gateway.url + "/login",
                                   data={**dict(forms(page.text)[0].fields), "provider": setup.buttons[button]})
        assert start.status_code in (302, 303)
        query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["state"] and query["redirect_uri"] == setup.gateway.url + "/_gateway/callback"
        assert query["scope"] == scope


def test_no_groups_are_asked_or_given_unless_configured(setup: GitHubSetup, browser: httpx.Client) -> None:
    sign_in(browser, setup, "GitHub plain")
    assert whoami(browser, setup.gateway)["nickname"] == "octocat"
    assert not groups_header(browser, setup)


def test_groups_from_orgs_gives_the_organisations_only(setup: GitHubSetup, browser: httpx.Client) -> None:
    sign_in(browser, setup, "GitHub orgs")
    assert groups_header(browser, setup) == "acme,widgets"


def test_an_unverified_primary_email_is_not_passed_on(setup: GitHubSetup, browser: httpx.Client) -> None:
    sign_in(browser, setup, verified=None, other_email="other@example.test")
    me = whoami(browser, setup.gateway)
    assert me["user"] == user_id(setup.fake + "/api/v3", number("user", "octocat")) and me["email"] == ""


def test_no_email_at_all_signs_in_without_one(setup: GitHubSetup, browser: httpx.Client) -> None:
    sign_in(browser, setup, email="")
    assert whoami(browser, setup.gateway)["email"] == ""


# -- failures: a clear page, no session ------------------------------------------------------------


def test_denying_at_github_is_cancelled(setup: GitHubSetup, browser: httpx.Client) -> None:
    setup.heard.clear()
    final = decide(browser, to_consent(browser, setup), "deny")
    refused(final, setup, "cancelled")
    assert sign_in_events(setup)[-1] == SignInFailed("GitHub", "cancelled", "127.0.0.1")


def test_more_orgs_and_teams_than_a_session_carries_are_refused(setup: GitHubSetup, browser: httpx.Client) -> None:
    orgs = ", ".join(f"org{n}" for n in range(31))
    refused(sign_in(browser, setup, orgs=orgs, teams=""), setup, "too-many-groups")


def callback_location(browser: httpx.Client, setup: GitHubSetup) -> str:
    """The fake's redirect back to the gateway, not yet followed."""
    consent = to_consent(browser, setup)
    with httpx.Client(cookies=browser.cookies, timeout=10) as no_follow:
        answer = decide(no_follow, consent, **PERSON)
    assert answer.status_code == 302
    return answer.headers["location"]


def test_a_forged_state_is_refused(setup: GitHubSetup, browser: httpx.Client) -> None:
    location = callback_location(browser, setup)
    query = dict(parse_qsl(urlsplit(location).query)) | {"state": "forged-" + secrets.token_urlsafe(8)}
    refused(browser.get(setup.gateway.url + "/_gateway/callback?" + urlencode(query)), setup, "expired")


def test_a_missing_state_is_refused(setup: GitHubSetup, browser: httpx.Client) -> None:
    location = callback_location(browser, setup)
    query = {k: v for k, v in parse_qsl(urlsplit(location).query) if k != "state"}
    refused(browser.get(setup.gateway.url + "/_gateway/callback?" + urlencode(query)), setup, "expired")


def test_the_callback_works_once(setup: GitHubSetup, browser: httpx.Client) -> None:
    location = callback_location(browser, setup)
    assert browser.get(location).url.path == "/"
    with httpx.Client(cookies=browser.cookies, follow_redirects=True, timeout=10) as replay:
        replay.cookies.delete(setup.gateway.settings.session_cookie)
        refused(replay.get(location), setup, "expired")


def test_another_browser_cannot_finish_the_sign_in(setup: GitHubSetup, browser: httpx.Client) -> None:
    location = callback_location(browser, setup)
    with httpx.Client(follow_redirects=True, timeout=10) as attacker:
        refused(attacker.get(location), setup, "expired")


def test_a_token_endpoint_error_with_status_200_is_refused(setup: GitHubSetup, browser: httpx.Client) -> None:
    refused(sign_in(browser, setup, "GitHub wrong secret"), setup, "invalid")


def test_the_api_down_is_a_clear_page(setup: GitHubSetup, browser: httpx.Client) -> None:
    refused(sign_in(browser, setup, "GitHub API down"), setup, "unreachable")


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "message"), [
    ({"preset": "gitlab"}, "oauth2 provider 'gitlab': preset must be one of github, got 'gitlab'"),
    ({"groups_from": "members"}, "groups_from must be \"orgs\", \"teams\" or [\"orgs\", \"teams\"]"),
    ({"client_secret": ""}, "client_id and client_secret (or client_secret_file) are required"),
    ({"api_url": "ftp://x"}, "api_url must be an http(s) URL"),
    ({"scopes": "repo"}, "unknown key(s) scopes"),
])
def test_bad_oauth2_providers_are_one_line_errors(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"type": "oauth2", "preset": "github", "client_id": "id",
                               "client_secret": "TOP-SECRET-VALUE"}
    with pytest.raises(ConfigError) as raised:
        providers_from_env([base | entry], tmp_path)
    assert message in str(raised.value) and "\n" not in str(raised.value).strip()
    assert "TOP-SECRET-VALUE" not in str(raised.value)


def test_github_preset_defaults(tmp_path: Path) -> None:
    [provider] = providers_from_env([{"type": "oauth2", "preset": "github", "client_id": "id",
                                      "client_secret": "s"}], tmp_path)
    assert (provider.name, provider.identifier, provider.token_url, provider.api_url, provider.groups_from) == (
        "GitHub", "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
        "https://api.github.com", ())
