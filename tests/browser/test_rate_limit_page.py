"""The "Too many attempts" (429) page, checked like every other page (see test_accessibility.py).

Its own stack, with a sign-in limit of two a minute: reaching the page uses up
the address's attempts, which would fail any sign-in after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from devtools.stack import Stack
from tests.browser.a11y import check_page, require_axe
from tests.browser.steps import NewContext, expect_login_page

pytestmark = pytest.mark.browser

# An hour's window: the limiter's sliding estimate weighs the previous window down as the new one goes on,
# so three clicks that straddle a window boundary may all pass (with 60 s, a few runs in a hundred did).
GATEWAY_SETTINGS = {"GATEWAY_LOGIN_RATE_LIMIT": "2", "GATEWAY_LOGIN_RATE_WINDOW": "3600"}


def test_rate_limit_page_passes_axe_and_fits_a_small_phone(
    stack: Stack, new_context: NewContext, screenshot_dir: Path
) -> None:
    require_axe()
    page = new_context(bypass_csp=True).new_page()
    page.goto(stack.url + "/login")
    for _ in range(2):
        expect_login_page(page, stack.url)
        page.get_by_role("button", name="Sign in", exact=True).click()  # an empty OpenID: refused, but counted
        expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    expect(page.get_by_text("Please wait")).to_be_visible()
    assert check_page(page, "rate-limited", screenshot_dir) == []
