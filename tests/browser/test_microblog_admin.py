"""The microblog's /about and /admin pages in Chromium: axe-core (WCAG 2.2 AA), a 320 px phone, the top bar.

The stack runs the demo's access rules, plus a long-named member of ``admins``
so that the top bar carries About, Admin, the name, Sessions and Sign out at
once. Screenshots go to ``test-output/screenshots/`` as in test_accessibility.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import DEMO_ADMIN_USER, Ports, Stack, demo_access_settings, local_claimed_id
from tests.browser.a11y import check_page, require_axe
from tests.browser.conftest import GATEWAY_ENV, OUTPUT_DIR
from tests.browser.steps import NewContext, sign_in

pytestmark = pytest.mark.browser

LONG_ADMIN = "a_very_long_nickname_for_the_bar"  # 32 characters: the most the microblog keeps


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Mode 1 with the demo's rules; ``admins`` also holds LONG_ADMIN."""
    ports = Ports.free()
    provider_url = f"http://127.0.0.1:{ports.provider}"
    admins = [*demo_access_settings(provider_url)["groups"]["admins"], local_claimed_id(provider_url, LONG_ADMIN)]
    log_dir = OUTPUT_DIR / "logs" / "browser" / "test_microblog_admin"
    shutil.rmtree(log_dir, ignore_errors=True)
    env = {**GATEWAY_ENV, "GATEWAY_LOGIN_RATE_LIMIT": "1000", "GATEWAY_GROUPS": json.dumps({"admins": admins})}
    with Stack("auth_request", ports=ports, gateway_env=env, log_dir=log_dir, demo_rules=True) as running:
        yield running


def about(page: Page, stack: Stack) -> None:
    page.goto(stack.url + "/about")
    expect(page.get_by_role("heading", name="About this microblog")).to_be_visible()
    expect(page.get_by_text("You are not signed in")).to_be_visible()


def admin(page: Page, stack: Stack) -> None:
    sign_in(page, stack.url, LONG_ADMIN)  # seen first: the longest user id in the table
    page.context.clear_cookies()
    sign_in(page, stack.url, DEMO_ADMIN_USER)
    page.get_by_role("banner").get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("table", name="Everyone the microblog has seen, first seen first")).to_be_visible()


@pytest.mark.parametrize(("name", "visit"), [("microblog-about", about), ("microblog-admin", admin)])
def test_page_passes_axe_and_fits_a_small_phone(
    name: str, visit: object, stack: Stack, new_context: NewContext, screenshot_dir: Path
) -> None:
    require_axe()
    page = new_context(bypass_csp=True).new_page()
    assert callable(visit)
    visit(page, stack)
    assert check_page(page, name, screenshot_dir) == []


def test_top_bar_of_a_long_named_admin_fits_a_small_phone(stack: Stack, new_context: NewContext) -> None:
    page = new_context(viewport={"width": 320, "height": 568}).new_page()
    sign_in(page, stack.url, LONG_ADMIN)
    bar = page.get_by_role("banner")
    links = [bar.get_by_role("link", name=name, exact=True) for name in
             ("About", "Admin", LONG_ADMIN, "Sessions", "Sign out")]
    for link in links:
        expect(link).to_be_in_viewport(ratio=1)
        box = link.bounding_box()
        assert box is not None and box["height"] >= 24, f"{link} is {box} (WCAG 2.5.8 asks 24 px)"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    page.goto(stack.url + "/admin")
    expect(bar.get_by_role("link", name="Admin", exact=True)).to_have_attribute("aria-current", "page")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
