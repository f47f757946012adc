"""Remember-me, deep links and logout, proven in a real browser against the whole stack behind nginx.

A "browser restart" is a new browser context holding only the persistent
cookies of the old one: the session cookie (no expiry) is gone, the
remember-me cookie (``Max-Age``) survives.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from devtools.stack import Stack
from tests.browser.conftest import REMEMBER_GRACE, REVOCATION_REFRESH
from tests.browser.steps import (
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    NewContext,
    cookie,
    expect_sign_in_asked,
    expect_signed_in,
    persistent_cookies,
    restart,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_remember_me_keeps_the_user_signed_in_across_a_browser_restart(stack: Stack, new_context: NewContext) -> None:
    context = new_context()
    sign_in(context.new_page(), stack.url, "restart_rita", remember=True)
    assert [c["name"] for c in persistent_cookies(context)] == [REMEMBER_COOKIE], context.cookies()

    restarted = restart(new_context, context)
    page = restarted.new_page()
    page.goto(stack.url + "/")

    expect_signed_in(page, "restart_rita")
    assert page.url == stack.url + "/"


def test_without_remember_me_a_browser_restart_asks_for_sign_in(stack: Stack, new_context: NewContext) -> None:
    context = new_context()
    sign_in(context.new_page(), stack.url, "forgetful_fred")
    assert cookie(context, REMEMBER_COOKIE) is None
    assert cookie(context, SESSION_COOKIE) is not None

    restarted = restart(new_context, context)

    expect_sign_in_asked(restarted.new_page(), stack.url)


def test_deep_link_with_a_query_survives_the_round_trip_to_the_provider(stack: Stack, new_context: NewContext) -> None:
    deep_link = "/user/deep_dora?page=2&sort=new%20est&tag=a%26b&q=caf%C3%A9"
    page = new_context().new_page()

    sign_in(page, stack.url, "deep_dora", path=deep_link)

    assert page.url == stack.url + deep_link
    expect(page.get_by_role("heading", name="deep_dora")).to_be_visible()


def test_logout_signs_out_and_the_cookies_copied_before_it_sign_no_one_in(
    stack: Stack, new_context: NewContext
) -> None:
    context = new_context()
    page = context.new_page()
    sign_in(page, stack.url, "leaving_lea", remember=True)
    before_logout = context.cookies()
    assert {SESSION_COOKIE, REMEMBER_COOKIE} <= {c["name"] for c in before_logout}

    page.get_by_role("link", name="Sign out").click()

    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    assert cookie(context, SESSION_COOKIE) is None
    assert cookie(context, REMEMBER_COOKIE) is None
    expect_sign_in_asked(page, stack.url)
    # Both cookies, replayed: the session is revoked and so is the remember-me series.
    replay = new_context(before_logout)
    expect_sign_in_asked(replay.new_page(), stack.url, "/user/leaving_lea")


def test_a_copied_remember_me_cookie_used_after_rotation_signs_out_both_browsers(
    stack: Stack, new_context: NewContext
) -> None:
    browser_a = new_context()
    sign_in(browser_a.new_page(), stack.url, "theft_tom", remember=True)
    stolen = cookie(browser_a, REMEMBER_COOKIE)
    assert stolen is not None
    browser_b = new_context([stolen])  # the thief holds nothing but the copy

    browser_a = restart(new_context, browser_a)  # restoring the session rotates A's token
    page_a = browser_a.new_page()
    page_a.goto(stack.url + "/")
    expect_signed_in(page_a, "theft_tom")
    rotated = cookie(browser_a, REMEMBER_COOKIE)
    assert rotated is not None and rotated["value"] != stolen["value"]

    time.sleep(REMEMBER_GRACE + 0.5)  # past the grace in which the previous token is still accepted
    expect_sign_in_asked(browser_b.new_page(), stack.url)
    assert cookie(browser_b, REMEMBER_COOKIE) is None

    # The revoked sessions reach the auth check's in-memory list within one refresh (0.2 s here);
    # allow a loaded CI machine a few seconds before judging.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(REVOCATION_REFRESH)
        page_a.goto(stack.url + "/")
        if "/login" in page_a.url:
            break
    expect_sign_in_asked(page_a, stack.url)
    assert cookie(browser_a, REMEMBER_COOKIE) is None
    assert "suspected remember-me cookie theft" in stack.logs(tail=400)


def test_sign_out_everywhere_signs_out_every_browser(stack: Stack, new_context: NewContext) -> None:
    laptop, phone = new_context(), new_context()
    page = laptop.new_page()
    sign_in(page, stack.url, "everywhere_eve")
    sign_in(phone.new_page(), stack.url, "everywhere_eve", remember=True)

    page.goto(stack.url + "/_gateway/account")
    sessions = page.get_by_role("table").locator("tbody").get_by_role("row")
    expect(sessions).to_have_count(2)
    page.get_by_role("button", name="Sign out everywhere").click()

    expect(page.get_by_text("You have been signed out on every device.")).to_be_visible()
    expect_sign_in_asked(page, stack.url)
    expect_sign_in_asked(phone.new_page(), stack.url)
    expect_sign_in_asked(restart(new_context, phone).new_page(), stack.url)  # the remember-me series too
