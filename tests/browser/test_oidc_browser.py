"""OpenID Connect sign-in in Chromium, through nginx: the "Local OpenID Connect" button of the stack.

The development provider answers with a redirect to the gateway's callback; the login state cookie
(SameSite=Lax) comes back on that top-level navigation, as it does with real providers.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import LOCAL_OIDC_NAME, Stack
from tests.browser.steps import (
    REMEMBER_COOKIE,
    NewContext,
    consent,
    expect_login_page,
    expect_sign_in_asked,
    expect_signed_in,
    persistent_cookies,
    restart,
)

pytestmark = pytest.mark.browser


def oidc_sign_in(page: Page, base_url: str, username: str, *, remember: bool = False, path: str = "/") -> None:
    page.goto(base_url + path)
    expect_login_page(page, base_url)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name=LOCAL_OIDC_NAME).click()
    consent(page, username)
    expect_signed_in(page, username)


def test_sign_in_with_openid_connect_lands_on_the_deep_link(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    oidc_sign_in(page, stack.url, "connie", path="/about")
    assert page.url == stack.url + "/about"


def test_remember_me_survives_a_browser_restart(stack: Stack, new_context: NewContext) -> None:
    context = new_context()
    oidc_sign_in(context.new_page(), stack.url, "remy", remember=True)
    assert [c["name"] for c in persistent_cookies(context)] == [REMEMBER_COOKIE]
    page = restart(new_context, context).new_page()
    page.goto(stack.url + "/")
    expect_signed_in(page, "remy")


def test_deny_at_the_provider_says_so_and_signs_nobody_in(stack: Stack, new_context: NewContext) -> None:
    page = new_context().new_page()
    page.goto(stack.url + "/")
    page.get_by_role("button", name=LOCAL_OIDC_NAME).click()
    page.get_by_role("button", name="Deny").click()
    expect_login_page(page, stack.url)
    expect(page.get_by_text("Sign-in was cancelled at your provider.")).to_be_visible()
    expect_sign_in_asked(page, stack.url)
