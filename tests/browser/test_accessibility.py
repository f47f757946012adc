"""Every page a person meets, checked with axe-core (WCAG 2.2 AA) on a desktop and a phone, light and dark.

Each page test fails on any serious or critical axe violation and on a page wider
than a 320 px screen; it saves screenshots as ``test-output/screenshots/<page>-<size>-<scheme>.png``
(and ``<page>-320.png``) for a person to look at. The other tests check what axe
cannot: a login error is announced and focused, sessions are told apart, the
logout page says who and where, sign-in works without JavaScript, control borders
have 3:1 contrast, the microblog's top bar survives a long name on a small phone.
The 429 page has its own module (test_rate_limit_page.py): reaching it uses up the
address's sign-in attempts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import LOCAL_PROVIDER_NAME, Stack
from gateway.paths import DEFAULT as DEFAULT_PATHS
from tests.browser.a11y import SCHEMES, Scheme, border_contrast, check_page, require_axe
from tests.browser.steps import NewContext, expect_login_page, expect_signed_in, sign_in, visit_from_another_site
from tests.browser.steps import consent as steps_consent

pytestmark = pytest.mark.browser

# Every test here signs in, all from 127.0.0.1: more than the default 20 a minute.
# A path no one may see, for the 403 page.
GATEWAY_SETTINGS = {"GATEWAY_LOGIN_RATE_LIMIT": "1000",
                    "GATEWAY_RULES": '[{"name": "closed", "paths": ["/closed"], "policy": "deny"}]'}
LONG_NICKNAME = "a_very_long_nickname_for_the_bar"  # 32 characters: the most the microblog keeps
Visit = Callable[[Page, Stack, NewContext], None]


def axe_page(new_context: NewContext) -> Page:
    """A page in a fresh browser profile that can take axe's script tag (see tests/browser/a11y.py)."""
    require_axe()
    return new_context(bypass_csp=True).new_page()


def sign_in_button(page: Page) -> None:
    page.get_by_role("button", name="Sign in", exact=True).click()


def post_unbound_answer(page: Page, stack: Stack) -> None:
    """POST an OpenID answer to the callback from another site: the gateway re-posts it through its autopost page."""
    action = f"{stack.url}{DEFAULT_PATHS.callback}?gw_state={secrets.token_urlsafe(16)}&next=%2F&remember=0"
    page.route(stack.provider_url + "/answer", lambda route: route.fulfill(content_type="text/html", body=(
        f'<!doctype html><title>Answer</title><form method="post" action="{action}">'
        '<input type="hidden" name="openid.mode" value="id_res"><button>Send</button></form>')))
    page.goto(stack.provider_url + "/answer")
    page.get_by_role("button", name="Send").click()


# The pages, each reached the way a person reaches it.

def login(page: Page, stack: Stack, new_context: NewContext) -> None:
    page.goto(stack.url + "/login")
    expect_login_page(page, stack.url)


def login_error(page: Page, stack: Stack, new_context: NewContext) -> None:
    login(page, stack, new_context)
    sign_in_button(page)  # an empty OpenID
    expect(page.get_by_role("alert")).to_be_visible()


def logout_confirmation(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, "lou")
    visit_from_another_site(page, stack, stack.url + "/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()


def account(page: Page, stack: Stack, new_context: NewContext, user: str = "ada") -> None:
    sign_in(new_context().new_page(), stack.url, user)  # a second session to list
    sign_in(page, stack.url, user, remember=True)
    page.goto(stack.url + "/_gateway/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def gateway_error(page: Page, stack: Stack, new_context: NewContext) -> None:
    page.goto(stack.url + "/_gateway/no-such-page")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def forbidden(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, "fay")
    page.goto(stack.url + "/closed/report")
    expect(page.get_by_role("heading", name="This page is not open to you")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in as someone else")).to_be_visible()


def autopost(page: Page, stack: Stack, new_context: NewContext) -> None:
    page.route("**/_gateway/static/autopost.js", lambda route: route.abort())  # as without JavaScript
    post_unbound_answer(page, stack)
    expect(page.get_by_role("button", name="Continue")).to_be_visible()


def consent(page: Page, stack: Stack, new_context: NewContext) -> None:
    login(page, stack, new_context)
    page.get_by_role("button", name=LOCAL_PROVIDER_NAME).click()
    expect(page.get_by_label("User name")).to_be_editable()


def provider_home(page: Page, stack: Stack, new_context: NewContext) -> None:
    page.goto(stack.provider_url + "/")
    expect(page.get_by_role("heading", name="Imitated providers")).to_be_visible()


def microblog_home(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, "mia")
    page.get_by_label("Say something, mia").fill("Hello from the accessibility tests.")
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Hello from the accessibility tests.").first).to_be_visible()


def microblog_post_error(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, "mia")
    page.get_by_label("Say something, mia").fill("   ")
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Say something, mia")).to_be_focused()
    expect(page.get_by_label("Say something, mia")).to_have_accessible_description(re.compile("^Write something"))


def microblog_user(page: Page, stack: Stack, new_context: NewContext) -> None:
    microblog_home(page, stack, new_context)
    page.get_by_role("link", name="mia", exact=True).first.click()
    expect(page.get_by_role("heading", name="mia")).to_be_visible()


def microblog_not_found(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, "mia")
    page.goto(stack.url + "/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()


def microblog_long_name(page: Page, stack: Stack, new_context: NewContext) -> None:
    sign_in(page, stack.url, LONG_NICKNAME)


PAGES: dict[str, Visit] = {
    "login": login, "login-error": login_error, "logout-confirmation": logout_confirmation, "account": account,
    "gateway-error": gateway_error, "forbidden": forbidden, "autopost": autopost, "consent": consent,
    "provider-home": provider_home,
    "microblog-home": microblog_home, "microblog-post-error": microblog_post_error,
    "microblog-user": microblog_user, "microblog-not-found": microblog_not_found,
    "microblog-long-name": microblog_long_name,
}


@pytest.mark.parametrize("name", PAGES)
def test_page_passes_axe_and_fits_a_small_phone(
    name: str, stack: Stack, new_context: NewContext, screenshot_dir: Path
) -> None:
    page = axe_page(new_context)
    PAGES[name](page, stack, new_context)
    assert check_page(page, name, screenshot_dir) == []


def test_login_error_is_announced_and_focuses_the_field(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    login(page, stack, new_context)
    expect(page).not_to_have_title(re.compile("^Error:"))
    sign_in_button(page)
    message = "Please enter your OpenID or pick a provider."
    expect(page.get_by_role("alert")).to_have_text(message)
    expect(page).to_have_title(re.compile("^Error: Sign in"))
    field = page.get_by_label("Your OpenID")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(message)


def test_account_page_tells_sessions_apart(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    account(page, stack, new_context, user="bea")
    browser = re.compile(r"^[A-Za-z ]+ \d+ on Linux$")  # e.g. "HeadlessChrome 140 on Linux", not "Mozilla/5.0 (X11…"
    rows = page.get_by_role("rowheader")
    expect(rows).to_have_count(2)
    for index in range(2):
        expect(rows.nth(index)).to_have_text(browser)
    expect(page.get_by_role("columnheader", name="Action")).to_have_count(1)
    end = page.get_by_role("button", name=re.compile("^End"))
    expect(end).to_have_count(1)  # the other session's; this browser's says "this browser"
    expect(end).to_have_accessible_name(re.compile(
        r"^End session: [A-Za-z ]+ \d+ on Linux, 127\.0\.0\.1, signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    for width in (375, 320):
        page.set_viewport_size({"width": width, "height": 667})
        box = end.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, f"End is off screen at {width} px: {box}"
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_logout_confirmation_says_where_and_who(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    logout_confirmation(page, stack, new_context)
    expect(page.get_by_text(re.compile(r"^A page that is not part of .+ asked to sign you out\.$"))).to_be_visible()
    expect(page.get_by_text("You are signed in as lou.")).to_be_visible()
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    cancel = page.get_by_role("link", name="Cancel").bounding_box()
    assert sign_out is not None and cancel is not None
    gap = max(cancel["x"] - (sign_out["x"] + sign_out["width"]), cancel["y"] - (sign_out["y"] + sign_out["height"]))
    assert gap >= 8, f"Cancel is {gap} px from Sign out"
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_text("Hi, lou")).to_be_visible()  # still signed in


def test_autopost_page_without_javascript_says_what_to_do(stack: Stack, new_context: NewContext) -> None:
    """With JavaScript off the re-post page waits for the person: it says so and the Enter key continues."""
    page = new_context(java_script_enabled=False).new_page()
    post_unbound_answer(page, stack)
    expect(page.get_by_text("If nothing happens, press Continue.")).to_be_visible()
    expect(page.get_by_role("button", name="Continue")).to_be_focused()
    page.keyboard.press("Enter")
    expect_login_page(page, stack.url)  # the answer had no sign-in behind it: "expired", as with JavaScript


def press_continue_if_asked(page: Page) -> None:
    """A form-post page (the OpenID message is too long for a link) waits for the person without JavaScript."""
    hint = page.get_by_text("If nothing happens, press Continue.")
    if hint.count():
        expect(page.get_by_role("button", name="Continue")).to_be_focused()
        page.keyboard.press("Enter")


def test_sign_in_works_without_javascript(stack: Stack, new_context: NewContext) -> None:
    """The whole round trip with JavaScript off: every page that posts a form on its own says what to press."""
    page = new_context(java_script_enabled=False).new_page()
    login(page, stack, new_context)
    page.get_by_role("button", name=LOCAL_PROVIDER_NAME).click()
    press_continue_if_asked(page)  # the gateway's form post, when the request is too long for a link
    steps_consent(page, "nojs")
    press_continue_if_asked(page)  # the provider's answer, when too long for a link
    expect_signed_in(page, "nojs")


def test_consent_address_box_is_reachable_by_keyboard(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    consent(page, stack, new_context)
    box = page.get_by_role("region", name="Answer goes to")
    expect(box).to_have_attribute("tabindex", "0")
    page.keyboard.press("Shift+Tab")  # from the focused user name back to the address box
    expect(box).to_be_focused()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_control_borders_have_three_to_one_contrast(scheme: Scheme, stack: Stack, new_context: NewContext) -> None:
    page = new_context(color_scheme=scheme).new_page()
    login(page, stack, new_context)
    for selector in ("#identifier", "button.provider"):
        ratio = border_contrast(page, selector)
        assert ratio >= 3, f"{selector} border {ratio:.2f}:1 in {scheme}"


def test_microblog_top_bar_fits_a_small_phone_with_a_long_name(stack: Stack, new_context: NewContext) -> None:
    page = new_context(viewport={"width": 320, "height": 568}).new_page()
    microblog_long_name(page, stack, new_context)
    name_link = page.get_by_role("banner").get_by_role("link", name=LONG_NICKNAME)
    expect(name_link).to_have_attribute("title", LONG_NICKNAME)
    for link in (name_link, page.get_by_role("link", name="Sessions"), page.get_by_role("link", name="Sign out")):
        expect(link).to_be_in_viewport(ratio=1)
        box = link.bounding_box()
        assert box is not None and box["height"] >= 24, f"{link} is {box} (WCAG 2.5.8 asks 24 px)"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320

