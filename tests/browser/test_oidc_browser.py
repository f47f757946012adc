"""OpenID Connect in Chromium, through nginx in both modes: the stack's "Local OpenID Connect" button.

The development provider answers with a redirect to the gateway's callback; the login state cookie
(SameSite=Lax) comes back on that top-level navigation, as it does with real providers.

The stacks of this module set the button to ``logout_at_provider``: ``/logout`` ends the session
here, then sends the browser to the provider's ``end_session_endpoint``, which ends its own session,
posts a logout token back to the gateway and returns the browser to ``/login?m=signed-out``.
The development provider keeps no sign-in cookie of its own: it shows its consent page on every
sign-in, so nothing but the gateway's own cookies can sign a browser back in. A person "signs out at
the provider" through its logout control (``POST /_dev/backchannel-logout``), which posts the logout
token to ``<nginx>/_gateway/backchannel-logout``. The last test uses conftest's default stack (mode 1,
no ``logout_at_provider``): there ``/logout`` never leaves the site.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devtools.stack import LOCAL_OIDC_CLIENT, LOCAL_OIDC_NAME, MODES, NginxNotFound, Stack
from tests.browser.a11y import axe_violations, require_axe
from tests.browser.conftest import GATEWAY_ENV, OUTPUT_DIR, REVOCATION_REFRESH
from tests.browser.steps import (
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    NewContext,
    consent,
    cookie,
    expect_login_page,
    expect_sign_in_asked,
    expect_signed_in,
    oidc_sign_in,
    persistent_cookies,
    requests_to,
    restart,
    visit_from_another_site,
)

pytestmark = pytest.mark.browser

SIGNED_OUT = "/login?m=signed-out"  # the post_logout_redirect_uri the gateway sends and the provider registers
BACKCHANNEL_LOGOUT = "/_gateway/backchannel-logout"
DEADLINE = 10.0  # seconds for a back-channel logout to show; the revocation refresh is 0.2 s


@pytest.fixture(scope="module", params=MODES)
def oidc_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole stack in this mode, its OpenID Connect button set to ``logout_at_provider``.

    Logs go to test-output/logs/browser/test_oidc_browser-<mode>/.
    """
    log_dir = OUTPUT_DIR / "logs" / "browser" / f"{request.module.__name__.rsplit('.', 1)[-1]}-{request.param}"
    shutil.rmtree(log_dir, ignore_errors=True)
    try:
        instance = Stack(request.param, gateway_env=GATEWAY_ENV, log_dir=log_dir, oidc_logout_at_provider=True)
    except NginxNotFound as exc:
        pytest.fail(f"the browser tests need nginx ({exc}); in CI a missing tool is an error, never a skip",
                    pytrace=False)
    with instance:
        yield instance


def end_at_provider(stack: Stack, **who: str) -> dict[str, Any]:
    """The development provider's logout control (``sid`` or ``username``): its answer, checked to be one."""
    answer = httpx.post(stack.oidc_url + "/_dev/backchannel-logout", json=who, timeout=10, trust_env=False)
    assert answer.status_code == 200, (answer.text, stack.logs())
    result: dict[str, Any] = answer.json()
    return result


def token_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified: only to read what the provider is told."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def sign_out(page: Page) -> None:
    page.get_by_role("link", name="Sign out").click()


def test_sign_in_from_a_deep_link_lands_on_it(oidc_stack: Stack, new_context: NewContext) -> None:
    deep_link = "/user/connie?page=2&tag=a%26b&q=caf%C3%A9"
    page = new_context().new_page()

    oidc_sign_in(page, oidc_stack.url, "connie", path=deep_link)

    assert page.url == oidc_stack.url + deep_link
    expect(page.get_by_role("heading", name="connie")).to_be_visible()


def test_remember_me_signs_back_in_after_a_restart_without_the_provider(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    context = new_context()
    oidc_sign_in(context.new_page(), oidc_stack.url, "remy", remember=True)
    assert [c["name"] for c in persistent_cookies(context)] == [REMEMBER_COOKIE], context.cookies()

    restarted = restart(new_context, context)
    at_provider = requests_to(restarted, oidc_stack.oidc_url)
    page = restarted.new_page()
    page.goto(oidc_stack.url + "/user/remy")

    expect_signed_in(page, "remy")
    assert page.url == oidc_stack.url + "/user/remy"
    assert at_provider == []  # the remember-me cookie alone signed in: the provider never saw this browser


def test_deny_at_the_provider_says_so_and_signs_nobody_in(oidc_stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    page.goto(oidc_stack.url + "/")
    page.get_by_role("button", name=LOCAL_OIDC_NAME).click()
    page.get_by_role("button", name="Deny").click()
    expect_login_page(page, oidc_stack.url)
    expect(page.get_by_text("Sign-in was cancelled at your provider.")).to_be_visible()
    expect_sign_in_asked(page, oidc_stack.url)


def test_logout_ends_the_session_here_and_at_the_provider_and_comes_back_to_the_login_page(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    context = new_context()
    page = context.new_page()
    oidc_sign_in(page, oidc_stack.url, "olga", remember=True)
    before_logout = context.cookies()
    assert {SESSION_COOKIE, REMEMBER_COOKIE} <= {c["name"] for c in before_logout}

    with page.expect_request(lambda r: r.url.startswith(oidc_stack.oidc_url + "/logout?")) as sent:
        sign_out(page)

    # The browser went to the provider's end_session_endpoint with the ID token as hint...
    query = dict(parse_qsl(urlsplit(sent.value.url).query))
    assert query["post_logout_redirect_uri"] == oidc_stack.url + SIGNED_OUT
    assert query["client_id"] == LOCAL_OIDC_CLIENT[0]
    hint = token_claims(query["id_token_hint"])
    assert hint["iss"] == oidc_stack.oidc_url and hint["preferred_username"] == "olga" and hint["sid"]
    # ... and came back to our login page, which says so.
    expect(page).to_have_url(oidc_stack.url + SIGNED_OUT)
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    assert cookie(context, SESSION_COOKIE) is None and cookie(context, REMEMBER_COOKIE) is None

    # The provider's session has ended: nothing of olga's is left there to end, and signing in asks again.
    assert end_at_provider(oidc_stack, username="olga")["sessions_ended"] == []
    page.get_by_role("button", name=LOCAL_OIDC_NAME).click()
    expect(page.get_by_label("User name")).to_be_editable()

    # The cookies copied before the logout, replayed in another browser, sign no one in.
    replay = new_context(before_logout)
    expect_sign_in_asked(replay.new_page(), oidc_stack.url, "/user/olga")


def test_next_given_to_logout_comes_back_from_the_providers_end_session(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    """``/logout?next=``: out here and at the provider, whose redirect brings the signed ``state`` back,
    and on to ``next`` (a protected page: its login page, from which signing in lands on it)."""
    target = "/user/nina?page=2"
    page = new_context().new_page()
    oidc_sign_in(page, oidc_stack.url, "nina")

    with page.expect_request(lambda r: r.url.startswith(oidc_stack.oidc_url + "/logout?")) as sent:
        page.goto(oidc_stack.url + "/logout?" + urlencode({"next": target}))

    assert dict(parse_qsl(urlsplit(sent.value.url).query))["state"]
    expect_login_page(page, oidc_stack.url)
    assert dict(parse_qsl(urlsplit(page.url).query)).get("next") == target, page.url
    page.get_by_role("button", name=LOCAL_OIDC_NAME).click()
    consent(page, "nina")
    expect(page).to_have_url(oidc_stack.url + target)
    expect_signed_in(page, "nina")


def test_logout_after_a_browser_restart_ends_the_session_at_the_provider_too(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    """A session restored by remember-me is still the provider's sign-in: /logout ends it there as well."""
    context = new_context()
    oidc_sign_in(context.new_page(), oidc_stack.url, "rita", remember=True)
    page = restart(new_context, context).new_page()
    page.goto(oidc_stack.url + "/")
    expect_signed_in(page, "rita")

    with page.expect_request(lambda r: r.url.startswith(oidc_stack.oidc_url + "/logout?")) as sent:
        sign_out(page)

    assert token_claims(dict(parse_qsl(urlsplit(sent.value.url).query))["id_token_hint"])["preferred_username"] \
        == "rita"
    expect(page).to_have_url(oidc_stack.url + SIGNED_OUT)
    assert end_at_provider(oidc_stack, username="rita")["sessions_ended"] == []


def test_logout_asked_by_another_site_is_confirmed_then_ends_at_the_provider(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    """The confirmation page's form (a POST) leads to the provider's end-session endpoint too."""
    page = new_context().new_page()
    oidc_sign_in(page, oidc_stack.url, "cora")
    visit_from_another_site(page, oidc_stack, oidc_stack.url + "/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()

    with page.expect_request(lambda r: r.url.startswith(oidc_stack.oidc_url + "/logout?")):
        page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(oidc_stack.url + SIGNED_OUT)
    assert end_at_provider(oidc_stack, username="cora")["sessions_ended"] == []
    expect_sign_in_asked(page, oidc_stack.url)


def signed_out_within_deadline(page: Page, stack: Stack) -> None:
    """Reload a protected page until it sends this browser to the login page (or the deadline passes)."""
    deadline = time.monotonic() + DEADLINE
    page.goto(stack.url + "/")
    while urlsplit(page.url).path != "/login":
        assert time.monotonic() < deadline, f"still signed in {DEADLINE}s after the provider's logout:\n{stack.logs()}"
        time.sleep(REVOCATION_REFRESH)
        page.goto(stack.url + "/")
    expect_sign_in_asked(page, stack.url)


def test_signing_out_at_the_provider_signs_the_browser_out_here(oidc_stack: Stack, new_context: NewContext) -> None:
    context, other = new_context(), new_context()
    page = context.new_page()
    oidc_sign_in(page, oidc_stack.url, "bea", remember=True)
    oidc_sign_in(other.new_page(), oidc_stack.url, "carl")

    # bea signs out at the provider; it tells the gateway, through nginx, with a logout token.
    answer = end_at_provider(oidc_stack, username="bea")
    assert len(answer["sessions_ended"]) == 1
    assert [(d["uri"], d["status"]) for d in answer["deliveries"]] == [(oidc_stack.url + BACKCHANNEL_LOGOUT, 200)]

    signed_out_within_deadline(page, oidc_stack)
    expect_sign_in_asked(restart(new_context, context).new_page(), oidc_stack.url)  # the remember-me series too
    still = other.new_page()
    still.goto(oidc_stack.url + "/")
    expect_signed_in(still, "carl")  # only the person the provider named


def test_signing_out_at_the_provider_ends_a_session_restored_by_remember_me(
    oidc_stack: Stack, new_context: NewContext
) -> None:
    """The restored session is not the one the provider's sid names; it belongs to that sign-in's series."""
    context = new_context()
    oidc_sign_in(context.new_page(), oidc_stack.url, "rhea", remember=True)
    restarted = restart(new_context, context)
    page = restarted.new_page()
    page.goto(oidc_stack.url + "/")
    expect_signed_in(page, "rhea")

    assert [d["status"] for d in end_at_provider(oidc_stack, username="rhea")["deliveries"]] == [200]

    signed_out_within_deadline(page, oidc_stack)
    expect_sign_in_asked(restart(new_context, restarted).new_page(), oidc_stack.url)


def landed_after_logout_at_provider(context: BrowserContext, stack: Stack, username: str) -> Page:
    page = context.new_page()
    oidc_sign_in(page, stack.url, username)
    sign_out(page)
    expect(page).to_have_url(stack.url + SIGNED_OUT)
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    return page


def test_the_login_page_after_logout_at_the_provider_passes_axe(oidc_stack: Stack, new_context: NewContext) -> None:
    require_axe()
    page = landed_after_logout_at_provider(new_context(bypass_csp=True), oidc_stack, "ally")
    assert axe_violations(page) == []


def test_without_logout_at_provider_logout_stays_here(stack: Stack, new_context: NewContext) -> None:
    """The default stack (conftest's, mode 1): the button is not set to ``logout_at_provider``."""
    context = new_context()
    page = context.new_page()
    oidc_sign_in(page, stack.url, "lotte")
    at_provider = requests_to(context, stack.oidc_url)

    sign_out(page)

    expect(page).to_have_url(stack.url + SIGNED_OUT)
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    assert at_provider == []
    expect_sign_in_asked(page, stack.url)
