"""OpenID Connect sign-in through nginx, in both modes: the stack's "Local OpenID Connect" button.

The stack (devtools/stack.py) runs the development OpenID Connect provider beside the
OpenID 2.0 one, with the gateway registered as its client for ``<nginx URL>/_gateway/callback``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import LOCAL_OIDC_NAME, Stack, local_claimed_id
from gateway.proof import ProofVerifier
from tests.devtools.oidc_relying_party import decide
from tests.htmlforms import submit
from tests.signin_steps import sign_in
from tests.stack_fixtures import ECHO_APP, echo_stack_fixture, start_stack  # noqa: F401

pytestmark = pytest.mark.nginx


def identity(browser: httpx.Client, stack: Stack, path: str = "/echo/me") -> tuple[str, str, str]:
    """(user, nickname, e-mail) the app received, after checking the gateway's proof."""
    response = browser.get(stack.url + path)
    assert response.status_code == 200 and response.url.path == path, (response.url, stack.logs())
    echo = response.json()
    headers = httpx.Headers([tuple(pair) for pair in echo["headers"]])
    uri = echo["raw_path"] + ("?" + echo["query_string"] if echo["query_string"] else "")
    verified = ProofVerifier(stack.proof_key).verify(headers, echo["method"], headers.get("host", ""), uri)
    assert verified is not None
    return verified.user_id, verified.nickname, verified.email


def oidc_sign_in(browser: httpx.Client, stack: Stack, next_target: str, *, remember: bool = False,
                 decision: str = "allow") -> httpx.Response:
    """Be sent to the login page by ``next_target``, press the OpenID Connect button, answer the consent page."""
    page = browser.get(stack.url + next_target)
    assert page.url.path == "/login" and LOCAL_OIDC_NAME in page.text, (page.url, stack.logs())
    consent = submit(browser, page, button=("provider", stack.oidc_url), check=("remember",) if remember else ())
    assert consent.url.port == stack.ports.oidc, (consent.url, stack.logs())
    return decide(browser, consent, decision)


def test_sign_in_lands_on_next_with_issuer_and_sub(echo_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        final = oidc_sign_in(browser, echo_stack, "/echo/after?x=1")
        assert final.url.path == "/echo/after" and final.url.params.get("x") == "1", (final.url, echo_stack.logs())
        user, nickname, email = identity(browser, echo_stack)
        assert user.startswith(echo_stack.oidc_url + "#") and nickname == "alice" and email == "alice@example.test"


def test_remember_me_signs_back_in_after_a_browser_restart(echo_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        oidc_sign_in(browser, echo_stack, "/echo/", remember=True)
        user = identity(browser, echo_stack)[0]
        name = next(c.name for c in browser.cookies.jar if c.expires and c.name.endswith("remember"))
        kept = browser.cookies[name]
    with httpx.Client(follow_redirects=True, timeout=15) as restarted:
        restarted.cookies.set(name, kept)
        assert identity(restarted, echo_stack)[0] == user


def test_cancel_ends_on_the_login_page_signed_out(echo_stack: Stack) -> None:
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        final = oidc_sign_in(browser, echo_stack, "/echo/", decision="deny")
        assert final.url.path == "/login" and final.url.params.get("m") == "cancelled", final.url
        assert "cancelled" in final.text
        assert browser.get(echo_stack.url + "/echo/me").url.path == "/login"


def test_logout_stays_here_and_the_old_cookies_sign_no_one_in(echo_stack: Stack) -> None:
    """The stack's button is not set to ``logout_at_provider``: ``/logout`` ends the session without the provider."""
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        oidc_sign_in(browser, echo_stack, "/echo/", remember=True)
        copied = httpx.Cookies(browser.cookies)
        leave = browser.get(echo_stack.url + "/logout", headers={"Sec-Fetch-Site": "same-origin"},
                            follow_redirects=False)
        assert leave.status_code == 303 and leave.headers["location"] == "/login?m=signed-out", leave.headers
    with httpx.Client(cookies=copied, follow_redirects=True, timeout=15) as replay:  # the login page would restore
        landed = replay.get(echo_stack.url + "/echo/me")  # a live remember-me series and send it back
        assert landed.status_code == 200 and landed.url.path == "/login", (landed.url, echo_stack.logs())


@pytest.fixture(scope="module")
def paired_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo's pairing: the OpenID Connect provider vouches for the OpenID 2.0 provider's identifiers."""
    yield from start_stack(tmp_path_factory, "auth_request", ECHO_APP, oidc_migration=True)


def test_the_demos_paired_providers_reach_one_account_from_either(paired_stack: Stack) -> None:
    """make demo's two local providers, as a site moving to OpenID Connect: the same person, one user id."""
    with httpx.Client(follow_redirects=True, timeout=15) as before:
        sign_in(before, paired_stack.url, paired_stack.provider_identifier, "mia", next_target="/echo/")
        old_user = identity(before, paired_stack)[0]
    assert old_user == local_claimed_id(paired_stack.provider_url, "mia")
    with httpx.Client(follow_redirects=True, timeout=15) as after:
        page = after.get(paired_stack.url + "/echo/")
        consent = submit(after, page, button=("provider", paired_stack.oidc_url))
        decide(after, consent, "allow", username="mia")
        assert identity(after, paired_stack)[0] == old_user, paired_stack.logs()
