"""The sign-in pages as a person sees them: styled under their Content-Security-Policy, saved as screenshots.

The PNGs go to ``test-output/screenshots/`` at the repository root, for a
person (or a CI artifact) to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from devtools.stack import LOCAL_PROVIDER_NAME, Stack
from tests.browser.steps import NewContext, consent, expect_login_page, expect_signed_in, sign_in

pytestmark = pytest.mark.browser

# Each <link rel="stylesheet"> and whether it applies rules: one blocked by the CSP has no sheet, one
# refused for its MIME type has a sheet whose rules cannot be read.
STYLESHEETS_JS = """() => [...document.querySelectorAll('link[rel="stylesheet"]')].map(link => {
    let rules = 0;
    try { rules = link.sheet === null ? 0 : link.sheet.cssRules.length; } catch (error) { rules = 0; }
    return [link.href, rules > 0];
})"""


def expect_styled(page: Page) -> None:
    page.wait_for_load_state("load")
    sheets = page.evaluate(STYLESHEETS_JS)
    assert sheets, f"{page.url} links no stylesheet"
    assert all(loaded for _, loaded in sheets), f"{page.url}: stylesheets not applied: {sheets}"


def save(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / name, full_page=True)


def test_sign_in_pages_are_styled_without_csp_violations(
    stack: Stack, new_context: NewContext, screenshot_dir: Path
) -> None:
    sign_in(new_context().new_page(), stack.url, "pretty_pat")  # a second session to list on the account page
    page = new_context().new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

    page.goto(stack.url + "/login")
    expect_login_page(page, stack.url)
    expect_styled(page)
    save(page, screenshot_dir, "login.png")

    page.get_by_role("button", name=LOCAL_PROVIDER_NAME).click()
    expect(page.get_by_label("User name")).to_be_editable()
    expect_styled(page)
    save(page, screenshot_dir, "consent.png")

    consent(page, "pretty_pat")
    expect_signed_in(page, "pretty_pat")
    expect_styled(page)
    save(page, screenshot_dir, "microblog.png")

    page.goto(stack.url + "/_gateway/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_role("button", name="End")).to_have_count(1)  # the other browser's session
    expect_styled(page)
    save(page, screenshot_dir, "account.png")

    assert errors == []
